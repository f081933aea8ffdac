"""The demo page: a shared kanban board of JSON documents, live over SSE."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from townhall.web.pages import PageUser, _with_cookies

HERE = Path(__file__).parent
templates = Jinja2Templates(
    directory=[str(HERE / "templates"), str(HERE.parent / "web" / "templates")]
)
router = APIRouter(include_in_schema=False)


@router.get("/sync", response_class=HTMLResponse)
async def board(
    request: Request, response: Response, principal: PageUser, board: str = "demo-board"
) -> Response:
    if principal is None:
        return RedirectResponse("/login?next=/sync", status_code=303)
    page = templates.TemplateResponse(
        request,
        "sync/board.html",
        {
            "user": principal.user,
            "apps": getattr(request.app.state, "apps", []),
            "board": board,
        },
    )
    return _with_cookies(page, response)
