"""Web UI of the Docs app: the workspace home, the page editor and public read-only pages."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from townhall.core.deps import DbSession, PlatformDep
from townhall.core.errors import AppError
from townhall.modules.doc.service import DocService
from townhall.web.pages import PageUser, _with_cookies
from townhall.web.templating import render

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


def _login(path: str) -> Response:
    return RedirectResponse(f"/login?next={path}", status_code=303)


async def _sidebar(
    service: DocService, workspace_id: uuid.UUID | None, q: str = ""
) -> dict[str, Any]:
    """What every Docs page shows on the left: workspaces, tree, favorites, shared, trash."""
    workspaces = await service.workspaces()
    current = next((w for w in workspaces if w.id == workspace_id), None)
    if current is None and workspace_id is None and workspaces:
        current = workspaces[0]
    return {
        "workspaces": workspaces,
        "workspace": current,
        "tree": await service.tree(current.id) if current else [],
        "trash": await service.trash(current.id) if current else [],
        "favorites": await service.favorites(),
        "shared": await service.shared_with_me(),
        "q": q,
    }


@router.get("/docs")
async def docs_home(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
    ws: Annotated[uuid.UUID | None, Query()] = None,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    if principal is None:
        return _login("/docs")
    service = DocService(session, platform, principal.id)
    await service.ensure_workspace(f"{principal.user.display_name}'s workspace")
    context = await _sidebar(service, ws, q)
    if ws is not None and context["workspace"] is None:
        page = render(request, "doc/index.html", 404, error="workspace not found", **context)
        return _with_cookies(page, response)
    results = await service.search(q) if q.strip() else None
    page = render(request, "doc/index.html", results=results, **context)
    return _with_cookies(page, response)


@router.get("/docs/p/{page_id}")
async def docs_page(
    request: Request,
    response: Response,
    page_id: uuid.UUID,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
) -> Response:
    if principal is None:
        return _login(f"/docs/p/{page_id}")
    service = DocService(session, platform, principal.id)
    try:
        page = await service.get(page_id)
    except AppError as exc:
        context = await _sidebar(service, None)
        out = render(request, "doc/index.html", exc.status_code, error=exc.message, **context)
        return _with_cookies(out, response)
    context = await _sidebar(service, page.workspace_id)
    can_edit = page.role != "viewer" and page.trashed_at is None
    out = render(
        request,
        "doc/page.html",
        page=page,
        can_edit=can_edit,
        breadcrumbs=await _breadcrumbs(service, page.parent_id),
        **context,
    )
    return _with_cookies(out, response)


async def _breadcrumbs(service: DocService, parent_id: uuid.UUID | None) -> list[Any]:
    crumbs: list[Any] = []
    seen: set[uuid.UUID] = set()
    while parent_id is not None and parent_id not in seen and len(crumbs) < 20:
        seen.add(parent_id)
        try:
            parent = await service.get(parent_id)
        except AppError:
            break
        crumbs.insert(0, parent)
        parent_id = parent.parent_id
    return crumbs


@router.get("/p/{token}")
async def public_page(
    request: Request, response: Response, token: str, session: DbSession, platform: PlatformDep
) -> Response:
    """A page through its public link: read-only, no sign-in."""
    try:
        page = await DocService(session, platform, None).public_page(token)
    except AppError as exc:
        return render(request, "doc/public.html", exc.status_code, page=None, error=exc.message)
    out = render(request, "doc/public.html", page=page)
    out.headers["X-Robots-Tag"] = "noindex"
    out.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak to linked sites
    return out


def install(app: FastAPI) -> None:
    app.mount("/docs/static", StaticFiles(directory=STATIC), name="doc-static")
