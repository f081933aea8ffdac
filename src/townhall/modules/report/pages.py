"""Web UI: the citizen PWA (/reports) and the staff console (/reports/staff)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from townhall.core.deps import PlatformDep
from townhall.modules.report import auth
from townhall.web.pages import PageUser, _with_cookies
from townhall.web.templating import render

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


def _config(platform: PlatformDep) -> str:
    s = platform.settings
    return json.dumps(
        {
            "tileUrl": s.report_tile_url,
            "center": list(s.report_map_center),
            "bounds": [
                [s.report_area_min_lat, s.report_area_min_lng],
                [s.report_area_max_lat, s.report_area_max_lng],
            ],
            "maxPhotos": s.report_max_photos,
            "minPhotos": s.report_min_photos,
        }
    )


@router.get("/reports")
async def citizen_page(
    request: Request, response: Response, principal: PageUser, platform: PlatformDep
) -> Response:
    page = render(
        request,
        "report/index.html",
        config=_config(platform),
        signed_in=principal is not None,
        staff=auth.is_staff(principal),
    )
    return _with_cookies(page, response)


@router.get("/reports/staff")
async def staff_page(
    request: Request, response: Response, principal: PageUser, platform: PlatformDep
) -> Response:
    if principal is None:
        return RedirectResponse("/login?next=/reports/staff", status_code=303)
    if not auth.is_staff(principal):
        return render(request, "report/forbidden.html", status_code=403)
    page = render(
        request,
        "report/staff.html",
        config=_config(platform),
        can_triage=auth.departments_with(principal, auth.ASSIGN) is None,
        can_stats=auth.departments_with(principal, auth.STATS) != set(),
    )
    return _with_cookies(page, response)


@router.get("/reports/view/{report_id}")
async def detail_page(
    request: Request,
    response: Response,
    report_id: uuid.UUID,
    principal: PageUser,
    platform: PlatformDep,
) -> Response:
    page = render(
        request,
        "report/detail.html",
        config=_config(platform),
        report_id=str(report_id),
        signed_in=principal is not None,
    )
    return _with_cookies(page, response)


@router.get("/reports/manifest.webmanifest")
async def manifest() -> JSONResponse:
    return JSONResponse(
        {
            "name": "townhall Reports",
            "short_name": "Reports",
            "start_url": "/reports",
            "scope": "/reports",
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#1f6feb",
            "icons": [{"src": "/reports/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
        },
        media_type="application/manifest+json",
    )


@router.get("/reports/sw.js")
async def service_worker() -> FileResponse:
    # Served from /reports/ so its scope covers the app's pages.
    return FileResponse(
        STATIC / "sw.js",
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/reports", "Cache-Control": "no-cache"},
    )


def install(app: FastAPI) -> None:
    app.mount("/reports/static", StaticFiles(directory=STATIC), name="report-static")
