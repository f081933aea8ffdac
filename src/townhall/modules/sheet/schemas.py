"""Request and response bodies of the Sheets API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from townhall.collab.schemas import UserRef
from townhall.modules.sheet.document import check_sheet_name

WorkbookRoleName = Literal["owner", "editor", "viewer"]
InviteRole = Literal["editor", "viewer"]
# What a computed cell holds: number, text, boolean, null (empty) or an error code like #DIV/0!.
CellValue = float | str | bool | None

MAX_CELL_CHARS = 32_767  # Excel's limit of one cell's text


def _one_line(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


class WorkbookRename(BaseModel):
    """A workbook's new name."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        return _one_line(value)


class WorkbookCreate(WorkbookRename):
    """A new workbook with one empty sheet; the caller owns it."""

    sheet_name: str = Field(default="Sheet1", min_length=1, max_length=100)

    @field_validator("sheet_name")
    @classmethod
    def _sheet_name(cls, value: str) -> str:
        return check_sheet_name(value)


class WorkbookOut(BaseModel):
    """A workbook and the caller's role in it (its content is the collab document)."""

    id: str = Field(description="Also the document id for /api/v1/sheet/save and collab rooms")
    name: str
    role: WorkbookRoleName
    owner: UserRef
    sheet_count: int = Field(description="As of the last flush")
    cell_count: int = Field(description="Non-empty cells, as of the last flush")
    created_at: datetime
    updated_at: datetime


class MemberIn(BaseModel):
    """Share a workbook with an existing account (inviting again changes the role)."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    role: InviteRole = "editor"


class MemberOut(BaseModel):
    """A workbook member."""

    user: UserRef
    role: WorkbookRoleName


class SheetOut(BaseModel):
    """One sheet (tab) of a workbook."""

    id: str
    name: str
    position: int = Field(description="0-based tab position")
    rows: int
    cols: int
    cells: int = Field(description="Non-empty cells")


class SheetCreate(BaseModel):
    """A new sheet, added after the last tab (1000 rows x 52 columns)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)


class SheetUpdate(BaseModel):
    """Rename and/or move a sheet (fields left out are unchanged)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    position: int | None = Field(default=None, ge=0, description="New 0-based tab position")


class RangeOut(BaseModel):
    """A rectangle of cells: raw texts as typed and the values formulas compute to."""

    sheet: str
    range: str = Field(description="A1 notation, e.g. A1:C10")
    raw: list[list[str]] = Field(description="What was typed; formulas start with =")
    values: list[list[CellValue]] = Field(
        description="Computed: numbers, text, booleans, null for empty, or error codes (#DIV/0!)"
    )


class RangeWrite(BaseModel):
    """Raw texts to write, row by row, with the top-left cell at `a1` ("" clears a cell)."""

    model_config = ConfigDict(extra="forbid")
    a1: str = Field(max_length=32, description="Top-left cell (or a range whose corner it is)")
    values: list[list[str | float | bool | None]] = Field(
        description="Rows of cells; numbers and booleans are written as their text"
    )


class RangeWritten(BaseModel):
    """What a range write changed, and the range as it now computes."""

    written: int
    range: RangeOut


class ImportOut(BaseModel):
    """What an import added."""

    workbook: WorkbookOut
    sheets: list[SheetOut]
    cells: int
