"""Web UI of the Sheets app: the workbook list and the grid page (the grid itself is static/)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from townhall.collab.engine import CollabEngine, get_engine
from townhall.core.deps import DbSession, PlatformDep
from townhall.core.errors import AppError
from townhall.modules.sheet.files import SheetData, read_upload
from townhall.modules.sheet.service import SheetService
from townhall.web.pages import PageUser, _with_cookies, same_origin
from townhall.web.templating import render

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
Engine = Annotated[CollabEngine, Depends(get_engine)]
# Cursor colours of collaborators: readable on white, distinct from each other.
COLORS = ("#e11d48", "#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#4f46e5")


def user_color(user_id: object) -> str:
    """A stable colour per user, the same in every tab and on every device."""
    digest = hashlib.sha256(str(user_id).encode()).digest()
    return COLORS[digest[0] % len(COLORS)]


def _login(path: str) -> Response:
    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)


async def _list(
    request: Request,
    response: Response,
    service: SheetService,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    workbooks = await service.workbooks()
    page = render(request, "sheet/index.html", status_code, workbooks=workbooks, error=error)
    return _with_cookies(page, response)


@router.get("/sheets")
async def sheets_home(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
    engine: Engine,
) -> Response:
    if principal is None:
        return _login("/sheets")
    return await _list(request, response, SheetService(session, platform, principal, engine))


@router.post("/sheets/new", dependencies=[Depends(same_origin)])
async def sheets_new(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
    engine: Engine,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The list page's create form (works without JavaScript)."""
    if principal is None:
        return _login("/sheets")
    service = SheetService(session, platform, principal, engine)
    title = " ".join(name.split()) or "Untitled workbook"
    workbook = await service.create(title, [SheetData("Sheet1")])
    return _with_cookies(RedirectResponse(f"/sheets/w/{workbook.id}", status_code=303), response)


@router.post("/sheets/import", dependencies=[Depends(same_origin)])
async def sheets_import(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
    engine: Engine,
    file: Annotated[UploadFile, File()],
) -> Response:
    """The list page's import form: a CSV or XLSX file becomes a new workbook."""
    if principal is None:
        return _login("/sheets")
    service = SheetService(session, platform, principal, engine)
    try:
        data = await read_upload(file, platform.settings.sheet_max_import_bytes)
        imported = await service.import_new(data, file.filename or "import.csv", None)
    except AppError as exc:
        await session.rollback()
        return await _list(request, response, service, exc.status_code, exc.message)
    target = f"/sheets/w/{imported.workbook.id}"
    return _with_cookies(RedirectResponse(target, status_code=303), response)


@router.get("/sheets/w/{workbook_id}")
async def sheets_workbook(
    request: Request,
    response: Response,
    workbook_id: str,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
    engine: Engine,
) -> Response:
    """The grid page: the front end (static/grid.js) loads the document and edits it live."""
    if principal is None:
        return _login(f"/sheets/w/{workbook_id}")
    service = SheetService(session, platform, principal, engine)
    try:
        workbook = await service.get(workbook_id)
    except AppError as exc:
        return await _list(request, response, service, exc.status_code, exc.message)
    page = render(
        request,
        "sheet/workbook.html",
        workbook=workbook,
        can_edit=workbook.role in ("owner", "editor"),
        user_name=principal.user.display_name,
        user_color=user_color(principal.id),
    )
    return _with_cookies(page, response)


def install(app: FastAPI) -> None:
    # The grid front end (grid.js, sheet-doc.js, formula.js, grid.css) lives in static/.
    app.mount("/static/sheet", StaticFiles(directory=STATIC), name="sheet-static")
    # main.py mounts /static before apps install and Starlette takes the first match: put ours
    # in front, or /static would answer 404 for /static/sheet/grid.js.
    app.router.routes.insert(0, app.router.routes.pop())
