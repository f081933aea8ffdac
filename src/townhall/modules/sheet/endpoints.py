"""The Sheets HTTP API under /api/v1/sheet (thin: rules live in service.py).

`POST /api/v1/sheet/save` belongs to the collab engine (the leader's snapshot save).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status

from townhall.collab.engine import CollabEngine, get_engine
from townhall.core.deps import CurrentPrincipal, DbSession, PlatformDep, ReadSession
from townhall.modules.sheet.files import SheetData, read_upload
from townhall.modules.sheet.schemas import (
    ImportOut,
    MemberIn,
    MemberOut,
    RangeOut,
    RangeWrite,
    RangeWritten,
    SheetCreate,
    SheetOut,
    SheetUpdate,
    WorkbookCreate,
    WorkbookOut,
    WorkbookRename,
)
from townhall.modules.sheet.service import SheetService

router = APIRouter(prefix="/api/v1/sheet", tags=["sheets"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "Not found, or not visible to the caller"}}
WRITE: Responses = {
    403: {"description": "The caller can only read this"},
    404: {"description": "Not found, or not visible to the caller"},
    422: {"description": "Invalid name, range or position"},
}
IMPORT: Responses = {
    400: {"description": "Not a readable CSV or XLSX file"},
    413: {"description": "File, unpacked size, cell count or compression ratio over the limit"},
}


async def get_service(
    session: DbSession,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    engine: Annotated[CollabEngine, Depends(get_engine)],
) -> SheetService:
    return SheetService(session, platform, principal, engine)


Service = Annotated[SheetService, Depends(get_service)]
Engine = Annotated[CollabEngine, Depends(get_engine)]
A1 = Annotated[str, Query(min_length=2, max_length=32, description="A cell or range: B2:D10")]


def _no_content() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _download(body: bytes, media: str, stem: str, ext: str) -> Response:
    filename = quote(f"{stem[:100]}.{ext}")
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )


# Workbooks and members -------------------------------------------------------------------------


@router.get("/workbooks", response_model=list[WorkbookOut])
async def list_workbooks(
    session: ReadSession, platform: PlatformDep, principal: CurrentPrincipal, engine: Engine
) -> list[WorkbookOut]:
    """The workbooks the caller owns or is a member of, recently changed first (replica)."""
    return await SheetService(session, platform, principal, engine).workbooks()


@router.post("/workbooks", response_model=WorkbookOut, status_code=status.HTTP_201_CREATED)
async def create_workbook(body: WorkbookCreate, service: Service) -> WorkbookOut:
    """A new workbook with one empty 1000 x 52 sheet; the caller owns it."""
    return await service.create(body.name, [SheetData(body.sheet_name)])


@router.post(
    "/workbooks/import",
    response_model=ImportOut,
    status_code=status.HTTP_201_CREATED,
    responses=IMPORT,
)
async def import_workbook(
    service: Service,
    file: Annotated[UploadFile, File(description="A .csv (one sheet) or .xlsx (every sheet)")],
    name: Annotated[str | None, Form(max_length=200)] = None,
) -> ImportOut:
    """Create a workbook from a CSV or XLSX file; nothing is kept when the file is refused."""
    data = await read_upload(file, service.settings.sheet_max_import_bytes)
    return await service.import_new(data, file.filename or "import.csv", name)


@router.get("/workbooks/{workbook_id}", response_model=WorkbookOut, responses=NOT_FOUND)
async def get_workbook(workbook_id: str, service: Service) -> WorkbookOut:
    """A workbook and the caller's role in it."""
    return await service.get(workbook_id)


@router.patch("/workbooks/{workbook_id}", response_model=WorkbookOut, responses=WRITE)
async def rename_workbook(workbook_id: str, body: WorkbookRename, service: Service) -> WorkbookOut:
    """Rename a workbook (owner and editors)."""
    return await service.rename(workbook_id, body.name)


@router.delete("/workbooks/{workbook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE)
async def delete_workbook(workbook_id: str, service: Service) -> Response:
    """Delete a workbook and its content (owner only)."""
    await service.delete(workbook_id)
    return _no_content()


@router.get("/workbooks/{workbook_id}/members", response_model=list[MemberOut], responses=NOT_FOUND)
async def list_members(workbook_id: str, service: Service) -> list[MemberOut]:
    """Who can open the workbook, and their roles."""
    return await service.members(workbook_id)


@router.post(
    "/workbooks/{workbook_id}/members",
    response_model=MemberOut,
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE, 409: {"description": "That is the owner"}},
)
async def invite_member(workbook_id: str, body: MemberIn, service: Service) -> MemberOut:
    """Share with an existing account by email as editor or viewer (owner only)."""
    return await service.invite(workbook_id, body.email, body.role)


@router.delete(
    "/workbooks/{workbook_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE,
)
async def remove_member(workbook_id: str, user_id: uuid.UUID, service: Service) -> Response:
    """Remove a member (owner), or leave (a member, themselves)."""
    await service.remove_member(workbook_id, user_id)
    return _no_content()


# Sheets ----------------------------------------------------------------------------------------


@router.get("/workbooks/{workbook_id}/sheets", response_model=list[SheetOut], responses=NOT_FOUND)
async def list_sheets(workbook_id: str, service: Service) -> list[SheetOut]:
    """The workbook's sheets in tab order."""
    return await service.sheets(workbook_id)


@router.post(
    "/workbooks/{workbook_id}/sheets",
    response_model=SheetOut,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
)
async def create_sheet(workbook_id: str, body: SheetCreate, service: Service) -> SheetOut:
    """Add a sheet after the last tab."""
    return await service.create_sheet(workbook_id, body.name)


@router.post(
    "/workbooks/{workbook_id}/import",
    response_model=ImportOut,
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE, **IMPORT},
)
async def import_sheets(
    workbook_id: str,
    service: Service,
    file: Annotated[UploadFile, File(description="A .csv (one sheet) or .xlsx (every sheet)")],
) -> ImportOut:
    """Add the file's sheets after the last tab, all in one update."""
    data = await read_upload(file, service.settings.sheet_max_import_bytes)
    return await service.import_into(workbook_id, data, file.filename or "import.csv")


@router.get(
    "/workbooks/{workbook_id}/export",
    responses={200: {"content": {XLSX: {}}, "description": "The workbook"}, **NOT_FOUND},
)
async def export_workbook(workbook_id: str, service: Service) -> Response:
    """Every sheet as XLSX, formulas kept (readers recompute their values on open)."""
    stem, body = await service.export_xlsx(workbook_id)
    return _download(body, XLSX, stem, "xlsx")


@router.get("/workbooks/{workbook_id}/sheets/{sheet}", response_model=SheetOut, responses=NOT_FOUND)
async def get_sheet(workbook_id: str, sheet: str, service: Service) -> SheetOut:
    """One sheet, by id or by name (ignoring case)."""
    return await service.sheet(workbook_id, sheet)


@router.patch("/workbooks/{workbook_id}/sheets/{sheet}", response_model=SheetOut, responses=WRITE)
async def update_sheet(
    workbook_id: str, sheet: str, body: SheetUpdate, service: Service
) -> SheetOut:
    """Rename a sheet and/or move it to another tab position."""
    return await service.update_sheet(workbook_id, sheet, body.name, body.position)


@router.delete(
    "/workbooks/{workbook_id}/sheets/{sheet}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**WRITE, 422: {"description": "The last sheet cannot go"}},
)
async def delete_sheet(workbook_id: str, sheet: str, service: Service) -> Response:
    """Delete a sheet (a workbook keeps at least one)."""
    await service.delete_sheet(workbook_id, sheet)
    return _no_content()


@router.get(
    "/workbooks/{workbook_id}/sheets/{sheet}/range",
    response_model=RangeOut,
    responses={**NOT_FOUND, 413: {"description": "Range larger than the limit"}},
)
async def read_range(workbook_id: str, sheet: str, a1: A1, service: Service) -> RangeOut:
    """Raw texts and computed values of a range (errors as codes like #DIV/0!, #CIRC!)."""
    return await service.read_range(workbook_id, sheet, a1)


@router.put(
    "/workbooks/{workbook_id}/sheets/{sheet}/range",
    response_model=RangeWritten,
    responses={**WRITE, 413: {"description": "Range larger than the limit"}},
)
async def write_range(
    workbook_id: str, sheet: str, body: RangeWrite, service: Service
) -> RangeWritten:
    """Write raw texts (a 2-D array) from the cell `a1`; live collaborators see it at once."""
    return await service.write_range(workbook_id, sheet, body.a1, body.values)


@router.get(
    "/workbooks/{workbook_id}/sheets/{sheet}/export",
    responses={200: {"content": {"text/csv": {}}, "description": "The sheet"}, **NOT_FOUND},
)
async def export_sheet(
    workbook_id: str, sheet: str, service: Service, format: Literal["csv"] = "csv"
) -> Response:
    """One sheet's computed values as CSV."""
    stem, body = await service.export_csv(workbook_id, sheet)
    return _download(body, "text/csv; charset=utf-8", stem, format)
