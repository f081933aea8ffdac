"""Business rules of the Sheets app: workbooks, members, sheets, ranges, import and export."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pycrdt

from townhall.collab.access import collab_role, invitee, require_role, user_ref
from townhall.collab.engine import build_store
from townhall.collab.protocol import EMPTY_UPDATE
from townhall.collab.repository import CollabRepository
from townhall.core.db import after_commit
from townhall.core.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from townhall.modules.sheet import document, files
from townhall.modules.sheet.formulas import (
    CellError,
    Value,
    Workbook,
    column_name,
    format_number,
    parse_cell,
)
from townhall.modules.sheet.models import SheetMember, SheetWorkbook
from townhall.modules.sheet.repository import SheetRepository
from townhall.modules.sheet.schemas import (
    CellValue,
    ImportOut,
    MemberOut,
    RangeOut,
    RangeWritten,
    SheetOut,
    WorkbookOut,
)

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.collab.engine import CollabEngine
    from townhall.collab.hooks import Role
    from townhall.collab.service import CollabStore
    from townhall.core.auth.models import User
    from townhall.core.deps import Principal
    from townhall.core.platform import Platform

SERVICE = "sheet"
WORKBOOK_ID = re.compile(r"[0-9a-f]{32}")
_RANGE = re.compile(
    r"^\s*(\$?[A-Za-z]{1,3}\$?[0-9]{1,7})(?:\s*:\s*(\$?[A-Za-z]{1,3}\$?[0-9]{1,7}))?\s*$"
)


@dataclass(frozen=True)
class Area:
    """A 0-based rectangle of one sheet."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def cells(self) -> int:
        return (self.bottom - self.top + 1) * (self.right - self.left + 1)

    @property
    def a1(self) -> str:
        first = f"{column_name(self.left)}{self.top + 1}"
        last = f"{column_name(self.right)}{self.bottom + 1}"
        return first if first == last else f"{first}:{last}"


def parse_area(text: str) -> Area:
    """ "A1" or "B2:D10" (corners in any order) -> Area; 422 for anything else."""
    match = _RANGE.match(text)
    if not match:
        raise Unprocessable(f"{text!r} is not a cell or range like A1 or A1:C10")
    first = parse_cell(match.group(1))
    last = parse_cell(match.group(2)) if match.group(2) else first
    if first.row < 0 or last.row < 0:
        raise Unprocessable(f"{text!r}: rows start at 1")
    return Area(
        min(first.row, last.row),
        min(first.col, last.col),
        max(first.row, last.row),
        max(first.col, last.col),
    )


def json_value(value: Value) -> CellValue:
    """A computed value for JSON: errors become their code (#DIV/0!)."""
    if isinstance(value, CellError):
        return value.code
    return value


def raw_text(value: str | float | bool | None) -> str:
    """What a JSON cell of a range write means as typed text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        # Typed TRUE is text to the evaluator (as in the browser); the formula is the boolean.
        return "=TRUE" if value else "=FALSE"
    if isinstance(value, float | int):
        return format_number(float(value))
    return value


def _sheet_out(view: document.SheetView, position: int) -> SheetOut:
    return SheetOut(
        id=view.id,
        name=view.name,
        position=position,
        rows=len(view.row_ids),
        cols=len(view.col_ids),
        cells=len(view.cells),
    )


def _unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted (2)`, `(3)`... when a sheet already has that name."""
    # Imported names may hold characters a sheet name cannot (a crafted XLSX, a CSV file name).
    cleaned = re.sub(r"['!\[\]*?/\\:]", "", wanted).strip()[:90]
    base = document.check_sheet_name(cleaned or "Sheet")
    name, n = base, 2
    while name.lower() in taken:
        name = f"{base} ({n})"
        n += 1
    taken.add(name.lower())
    return name


class SheetService:
    """Sheets rules for one acting user; writes go through the collab store; never commits."""

    def __init__(
        self,
        session: AsyncSession,
        platform: Platform,
        principal: Principal,
        engine: CollabEngine | None = None,
    ) -> None:
        self.session = session
        self.platform = platform
        self.settings = platform.settings
        self.principal = principal
        self.user_id = principal.id
        self.engine = engine
        self.store: CollabStore = engine.store if engine is not None else build_store(platform)
        self.repo = SheetRepository(session)

    # Workbooks ---------------------------------------------------------------------------------

    async def _out(
        self, workbook: SheetWorkbook, role: str, owner: User | None = None
    ) -> WorkbookOut:
        owner = owner or await self.repo.user(workbook.owner_id)
        assert owner is not None
        return WorkbookOut(
            id=workbook.id,
            name=workbook.name,
            role=role,
            owner=user_ref(owner),
            sheet_count=workbook.sheet_count,
            cell_count=workbook.cell_count,
            created_at=workbook.created_at,
            updated_at=workbook.updated_at,
        )

    async def workbooks(self) -> list[WorkbookOut]:
        return [await self._out(w, r, u) for w, r, u in await self.repo.workbooks_of(self.user_id)]

    async def _workbook(self, workbook_id: str, needs: str = "viewer") -> tuple[SheetWorkbook, str]:
        """The workbook and the caller's role; 404 for non-members, 403 below `needs`."""
        member = await self.repo.member(workbook_id, self.user_id)
        workbook = await self.repo.get_workbook(workbook_id) if member else None
        if member is None or workbook is None:
            raise NotFound("workbook not found")
        require_role(member.role, needs, "workbook")
        return workbook, member.role

    async def get(self, workbook_id: str) -> WorkbookOut:
        workbook, role = await self._workbook(workbook_id)
        return await self._out(workbook, role)

    async def create(self, name: str, sheets: list[files.SheetData] | None = None) -> WorkbookOut:
        """A workbook with the given sheets (default: one empty "Sheet1"), stored at once."""
        workbook = SheetWorkbook(name=name, owner_id=self.user_id)
        await self.repo.add(workbook)
        await self.repo.add(
            SheetMember(workbook_id=workbook.id, user_id=self.user_id, role="owner")
        )
        content = sheets or [files.SheetData("Sheet1")]
        try:
            state, _ = document.change(b"", lambda doc: self._add_sheets(doc, content))
        except ValueError as exc:
            raise Unprocessable(str(exc)) from exc
        self._check_size(len(state))
        # A new document has no buffer and no room yet: its first state goes straight in.
        await CollabRepository(self.session).insert_document(
            SERVICE, workbook.id, state, pycrdt.get_state(state)
        )
        workbook.sheet_count = len(content)
        workbook.cell_count = sum(len(s.cells) for s in content)
        await self.session.flush()
        return await self._out(workbook, "owner")

    async def rename(self, workbook_id: str, name: str) -> WorkbookOut:
        workbook, role = await self._workbook(workbook_id, "editor")
        workbook.name = name
        await self.session.flush()
        return await self._out(workbook, role)

    async def delete(self, workbook_id: str) -> None:
        """Delete a workbook and its document (owner only)."""
        workbook, _ = await self._workbook(workbook_id, "owner")
        stored = await CollabRepository(self.session).get_document(SERVICE, workbook.id)
        if stored is not None:
            await self.session.delete(stored)
        await self.repo.delete(workbook)

    # Members -----------------------------------------------------------------------------------

    async def members(self, workbook_id: str) -> list[MemberOut]:
        await self._workbook(workbook_id)
        return [
            MemberOut(user=user_ref(u), role=m.role)
            for m, u in await self.repo.members(workbook_id)
        ]

    async def invite(self, workbook_id: str, email: str, role: str) -> MemberOut:
        """Share with an existing account as editor or viewer; inviting again changes the role."""
        await self._workbook(workbook_id, "owner")
        user = await invitee(self.session, email)
        member = await self.repo.member(workbook_id, user.id)
        if member is not None and member.role == "owner":
            raise Conflict("the owner's role cannot change")
        if member is None:
            await self.repo.add(SheetMember(workbook_id=workbook_id, user_id=user.id, role=role))
        else:
            member.role = role
            await self.session.flush()
        return MemberOut(user=user_ref(user), role=role)

    async def remove_member(self, workbook_id: str, user_id: uuid.UUID) -> None:
        """Owners remove anyone but themselves; every other member may leave."""
        await self._workbook(workbook_id, "viewer" if user_id == self.user_id else "owner")
        member = await self.repo.member(workbook_id, user_id)
        if member is None:
            raise NotFound("not a member of this workbook")
        if member.role == "owner":
            raise Conflict("the owner cannot leave their workbook; delete it instead")
        await self.repo.delete(member)

    # The document ------------------------------------------------------------------------------

    async def _state(self, workbook_id: str) -> bytes:
        return await self.store.load_state(self.session, SERVICE, workbook_id)

    def _check_size(self, size: int) -> None:
        limit = self.settings.collab_max_document_bytes
        if size > limit:
            raise PayloadTooLarge(f"the workbook would be larger than {limit} bytes")

    async def _edit(self, workbook_id: str, edit: Callable[[pycrdt.Doc[Any]], Any]) -> Any:
        """Apply `edit` to the latest state and save the update it makes as one collab save."""
        await self._workbook(workbook_id, "editor")
        state = await self._state(workbook_id)
        try:
            update, result = document.change(state, edit)
        except ValueError as exc:
            raise Unprocessable(str(exc)) from exc
        if update == EMPTY_UPDATE:
            return result  # nothing changed
        self._check_size(len(state) + len(update))
        await self.store.save(self.session, self.principal, SERVICE, workbook_id, update)
        engine = self.engine
        if engine is not None:

            async def deliver() -> None:
                # Live browsers see API writes; after the commit, as the save endpoint does.
                await engine.rooms.apply_external(SERVICE, workbook_id, update)

            after_commit(self.session, deliver)
        return result

    @staticmethod
    def _add_sheets(doc: pycrdt.Doc[Any], sheets: list[files.SheetData]) -> list[str]:
        taken = {view.name.lower() for view in document.read_workbook(doc)}
        return [
            document.create_sheet(
                doc,
                _unique_name(sheet.name, taken),
                cells=sheet.cells,
                formats=sheet.formats,
                widths=sheet.widths,
            )
            for sheet in sheets
        ]

    async def _views(self, workbook_id: str) -> list[document.SheetView]:
        await self._workbook(workbook_id)
        return document.read_workbook(document.load(await self._state(workbook_id)))

    @staticmethod
    def _find(views: list[document.SheetView], ref: str) -> tuple[int, document.SheetView]:
        for position, view in enumerate(views):
            if view.id == ref:
                return position, view
        for position, view in enumerate(views):
            if view.name.lower() == ref.lower():
                return position, view
        raise NotFound(f"no sheet {ref!r} in this workbook")

    # Sheets ------------------------------------------------------------------------------------

    async def sheets(self, workbook_id: str) -> list[SheetOut]:
        return [_sheet_out(v, n) for n, v in enumerate(await self._views(workbook_id))]

    async def sheet(self, workbook_id: str, ref: str) -> SheetOut:
        position, view = self._find(await self._views(workbook_id), ref)
        return _sheet_out(view, position)

    async def create_sheet(self, workbook_id: str, name: str) -> SheetOut:
        sheet_id: str = await self._edit(workbook_id, lambda doc: document.create_sheet(doc, name))
        return await self.sheet(workbook_id, sheet_id)

    async def update_sheet(
        self, workbook_id: str, ref: str, name: str | None, position: int | None
    ) -> SheetOut:
        _, view = self._find(await self._views(workbook_id), ref)

        def edit(doc: pycrdt.Doc[Any]) -> None:
            if name is not None:
                document.rename_sheet(doc, view.id, name)
            if position is not None:
                document.move_sheet(doc, view.id, position)

        await self._edit(workbook_id, edit)
        return await self.sheet(workbook_id, view.id)

    async def delete_sheet(self, workbook_id: str, ref: str) -> None:
        _, view = self._find(await self._views(workbook_id), ref)
        await self._edit(workbook_id, lambda doc: document.delete_sheet(doc, view.id))

    # Ranges ------------------------------------------------------------------------------------

    def _check_area(self, area: Area) -> None:
        limit = self.settings.sheet_max_range_cells
        if area.cells > limit:
            raise PayloadTooLarge(f"a range may cover at most {limit} cells")
        if area.bottom >= files.MAX_ROWS or area.right >= files.MAX_COLS:
            raise Unprocessable(
                f"a sheet has at most {files.MAX_ROWS} rows and {files.MAX_COLS} columns"
            )

    @staticmethod
    def _range(views: list[document.SheetView], view: document.SheetView, area: Area) -> RangeOut:
        book = Workbook({v.name: v.cells for v in views})
        values = book.range(view.name, area.top, area.left, area.bottom, area.right)
        raw = [
            [view.cells.get((r, c), "") for c in range(area.left, area.right + 1)]
            for r in range(area.top, area.bottom + 1)
        ]
        return RangeOut(
            sheet=view.name,
            range=area.a1,
            raw=raw,
            values=[[json_value(v) for v in row] for row in values],
        )

    async def read_range(self, workbook_id: str, ref: str, a1: str) -> RangeOut:
        """Raw texts and computed values of a rectangle (formulas evaluated across sheets)."""
        area = parse_area(a1)
        self._check_area(area)
        views = await self._views(workbook_id)
        _, view = self._find(views, ref)
        return self._range(views, view, area)

    async def write_range(
        self, workbook_id: str, ref: str, a1: str, values: list[list[str | float | bool | None]]
    ) -> RangeWritten:
        """Write raw texts with their top-left corner at `a1`; "" or null clears a cell."""
        corner = parse_area(a1)
        grid = [[raw_text(v) for v in row] for row in values]
        width = max((len(row) for row in grid), default=0)
        if not grid or width == 0:
            raise Unprocessable("values must hold at least one row with one cell")
        area = Area(corner.top, corner.left, corner.top + len(grid) - 1, corner.left + width - 1)
        self._check_area(area)
        for row in grid:
            for raw in row:
                if len(raw) > files.MAX_CELL_CHARS:
                    raise Unprocessable(f"a cell holds at most {files.MAX_CELL_CHARS} characters")
        _, view = self._find(await self._views(workbook_id), ref)
        written: int = await self._edit(
            workbook_id,
            lambda doc: document.write_range(doc, view.id, area.top, area.left, grid),
        )
        views = await self._views_after_write(workbook_id)
        _, view = self._find(views, view.id)
        return RangeWritten(written=written, range=self._range(views, view, area))

    async def _views_after_write(self, workbook_id: str) -> list[document.SheetView]:
        return document.read_workbook(document.load(await self._state(workbook_id)))

    # Import and export -------------------------------------------------------------------------

    def _limits(self) -> files.Limits:
        s = self.settings
        return files.Limits(
            max_bytes=s.sheet_max_import_bytes,
            max_unzipped_bytes=s.sheet_max_import_unzipped_bytes,
            max_zip_ratio=s.sheet_max_import_zip_ratio,
            max_cells=s.sheet_max_import_cells,
        )

    def parse_file(self, data: bytes, filename: str) -> list[files.SheetData]:
        """The sheets of an uploaded .csv or .xlsx (by extension, else by content)."""
        if len(data) > self.settings.sheet_max_import_bytes:
            raise PayloadTooLarge(
                f"the file is larger than {self.settings.sheet_max_import_bytes} bytes"
            )
        stem, _, ext = filename.rpartition(".")
        is_xlsx = ext.lower() in ("xlsx", "xlsm") or (not stem and data[:4] == b"PK\x03\x04")
        if is_xlsx:
            return files.read_xlsx(data, self._limits())
        name = re.sub(r"[^\w \-().,]", "", stem or filename).strip()[:90] or "Sheet1"
        return [files.read_csv(data, name, self._limits())]

    async def import_new(self, data: bytes, filename: str, name: str | None) -> ImportOut:
        """A new workbook holding the file's sheets."""
        sheets = self.parse_file(data, filename)
        title = name or filename.rpartition(".")[0] or filename or "Imported workbook"
        workbook = await self.create(" ".join(title.split())[:200] or "Imported workbook", sheets)
        return await self._import_out(workbook.id, sheets)

    async def import_into(self, workbook_id: str, data: bytes, filename: str) -> ImportOut:
        """The file's sheets added after the last tab, in one update (names made unique)."""
        await self._workbook(workbook_id, "editor")
        sheets = self.parse_file(data, filename)
        await self._edit(workbook_id, lambda doc: self._add_sheets(doc, sheets))
        return await self._import_out(workbook_id, sheets)

    async def _import_out(self, workbook_id: str, sheets: list[files.SheetData]) -> ImportOut:
        views = await self._views(workbook_id)
        return ImportOut(
            workbook=await self.get(workbook_id),
            sheets=[_sheet_out(v, n) for n, v in enumerate(views)][-len(sheets) :],
            cells=sum(len(s.cells) for s in sheets),
        )

    async def export_csv(self, workbook_id: str, ref: str) -> tuple[str, bytes]:
        """(file name stem, CSV of computed values) of one sheet's used area."""
        workbook, _ = await self._workbook(workbook_id)
        views = await self._views(workbook_id)
        _, view = self._find(views, ref)
        if not view.cells:
            return f"{workbook.name} - {view.name}", b"\xef\xbb\xbf"
        bottom = max(r for r, _ in view.cells)
        right = max(c for _, c in view.cells)
        values = Workbook({v.name: v.cells for v in views}).range(view.name, 0, 0, bottom, right)
        return f"{workbook.name} - {view.name}", files.write_csv(values)

    async def export_xlsx(self, workbook_id: str) -> tuple[str, bytes]:
        """(file name stem, XLSX) of every sheet: formulas, values, formats, widths."""
        workbook, _ = await self._workbook(workbook_id)
        return workbook.name, files.write_xlsx(await self._views(workbook_id))


# Collab hooks ----------------------------------------------------------------------------------


async def workbook_role(
    session: AsyncSession, user_id: uuid.UUID | None, doc_id: str
) -> Role | None:
    """ "editor", "viewer" or None: the collab engine's view of a workbook membership."""
    if user_id is None or not WORKBOOK_ID.fullmatch(doc_id):
        return None
    member = await SheetRepository(session).member(doc_id, user_id)
    return collab_role(member.role) if member is not None else None


async def store_counts(session: AsyncSession, doc_id: str, state: bytes) -> None:
    """Refresh the list page's sheet and cell counts after a flush (same transaction)."""
    if not WORKBOOK_ID.fullmatch(doc_id):
        return
    views = document.read_workbook(document.load(state))
    await SheetRepository(session).set_counts(doc_id, len(views), sum(len(v.cells) for v in views))
