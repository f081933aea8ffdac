"""Web UI of the Links app: list/grid, detail, import/export, share target and bookmarklet."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from townhall.core.deps import DbSession, PlatformDep
from townhall.core.errors import AppError
from townhall.modules.link.demo import router as demo_router
from townhall.modules.link.schemas import LinkCreate, LinkOut
from townhall.modules.link.service import LinkService
from townhall.web.pages import PageUser, _with_cookies
from townhall.web.templating import render

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
router.include_router(demo_router)


def _login(path: str) -> Response:
    return RedirectResponse(f"/login?next={path}", status_code=303)


@router.get("/links")
async def links_page(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    if principal is None:
        return _login("/links")
    service = LinkService(session, platform)
    items: list[LinkOut]
    if q:
        items = list(await service.search(principal.id, q, 50))
    else:
        items = list(
            (
                await service.list_page(
                    principal.id, page=1, limit=50, tag=tag, status=None, q=None, cursor=None
                )
            ).items
        )
    page = render(
        request,
        "link/index.html",
        links=items,
        tags=await service.tags(principal.id),
        tag=tag,
        q=q or "",
    )
    return _with_cookies(page, response)


@router.get("/links/view/{link_id}")
async def link_detail(
    request: Request,
    response: Response,
    link_id: uuid.UUID,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
) -> Response:
    if principal is None:
        return _login(f"/links/view/{link_id}")
    service = LinkService(session, platform)
    try:
        link = await service.one_out(await service.get(principal.id, link_id))
    except AppError as exc:
        return render(
            request,
            "link/index.html",
            exc.status_code,
            links=[],
            tags=[],
            tag=None,
            q="",
            error=exc.message,
        )
    return _with_cookies(render(request, "link/detail.html", link=link), response)


@router.get("/links/import-export")
async def import_export_page(request: Request, response: Response, principal: PageUser) -> Response:
    if principal is None:
        return _login("/links/import-export")
    base = str(request.base_url).rstrip("/")
    bookmarklet = (
        "javascript:(()=>{window.open('"
        + base
        + "/links/share?url='+encodeURIComponent(location.href)"
        "+'&title='+encodeURIComponent(document.title),'townhall','width=480,height=360')})()"
    )
    return _with_cookies(
        render(request, "link/import_export.html", bookmarklet=bookmarklet), response
    )


@router.get("/links/share")
async def share_target(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    platform: PlatformDep,
    url: Annotated[str, Query(max_length=10_000)] = "",
    text: Annotated[str, Query(max_length=10_000)] = "",
    title: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    """The PWA share target and bookmarklet: save what was shared, then show the list."""
    if principal is None:
        return _login("/links/share?" + request.url.query)
    # Android puts the URL in `text` for many apps; take the first http(s) word.
    candidate = url or next((w for w in text.split() if w.startswith(("http://", "https://"))), "")
    try:
        await LinkService(session, platform).save(
            principal.id, LinkCreate(url=candidate or " ", source="share", title=title or None)
        )
    except (AppError, ValueError) as exc:
        message = getattr(exc, "message", "this is not a URL that can be saved")
        page = render(
            request, "link/index.html", 422, links=[], tags=[], tag=None, q="", error=message
        )
        return _with_cookies(page, response)
    return _with_cookies(RedirectResponse("/links?saved=1", status_code=303), response)


@router.get("/links/manifest.webmanifest")
async def manifest() -> JSONResponse:
    """PWA manifest with a share target, so a phone can share links into townhall."""
    return JSONResponse(
        {
            "name": "townhall Links",
            "short_name": "Links",
            "start_url": "/links",
            "scope": "/links",
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#4f46e5",
            "icons": [{"src": "/links/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
            "share_target": {
                "action": "/links/share",
                "method": "GET",
                "params": {"title": "title", "text": "text", "url": "url"},
            },
        },
        media_type="application/manifest+json",
    )


def install(app: FastAPI) -> None:
    app.mount("/links/static", StaticFiles(directory=STATIC), name="link-static")
