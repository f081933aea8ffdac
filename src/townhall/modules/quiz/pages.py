"""Web pages of the quiz: library, quiz page, editor, host screen, player screen."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from townhall.core.deps import DbSession, PlatformDep
from townhall.core.platform import Platform
from townhall.modules.quiz import service
from townhall.web.pages import PageUser, _with_cookies
from townhall.web.templating import render

router = APIRouter(prefix="/quiz", include_in_schema=False)


def _login(path: str) -> Response:
    return RedirectResponse(f"/login?next={path}", status_code=303)


@router.get("", response_class=HTMLResponse)
async def library(request: Request, response: Response, user: PageUser) -> Response:
    return _with_cookies(render(request, "quiz/library.html"), response)


@router.get("/play", response_class=HTMLResponse)
async def play(request: Request, response: Response, user: PageUser, pin: str = "") -> Response:
    """The player screen: works without an account, on a phone."""
    pin = pin if pin.isdigit() and len(pin) == 6 else ""
    return _with_cookies(render(request, "quiz/play.html", pin=pin), response)


def _direct(platform: Platform) -> bool:
    """Whether the editor uploads images with a presigned PUT (S3) or through the app."""
    storage = getattr(platform, "storage", None)
    return storage is not None and storage.backend == "s3"


@router.get("/new", response_class=HTMLResponse)
async def new_quiz(
    request: Request, response: Response, user: PageUser, platform: PlatformDep
) -> Response:
    if user is None:
        return _login("/quiz/new")
    page = render(request, "quiz/editor.html", quiz_id="", direct_upload=_direct(platform))
    return _with_cookies(page, response)


@router.get("/{quiz_id}/edit", response_class=HTMLResponse)
async def edit_quiz(
    quiz_id: uuid.UUID,
    request: Request,
    response: Response,
    user: PageUser,
    session: DbSession,
    platform: PlatformDep,
) -> Response:
    if user is None:
        return _login(f"/quiz/{quiz_id}/edit")
    await service.get_own(session, quiz_id, user)
    page = render(
        request, "quiz/editor.html", quiz_id=str(quiz_id), direct_upload=_direct(platform)
    )
    return _with_cookies(page, response)


@router.get("/{quiz_id}/host", response_class=HTMLResponse)
async def host(
    quiz_id: uuid.UUID, request: Request, response: Response, user: PageUser, session: DbSession
) -> Response:
    if user is None:
        return _login(f"/quiz/{quiz_id}/host")
    quiz = await service.get_visible(session, quiz_id, user)
    return _with_cookies(render(request, "quiz/host.html", quiz=quiz), response)


@router.get("/{quiz_id}", response_class=HTMLResponse)
async def quiz_page(
    quiz_id: uuid.UUID, request: Request, response: Response, user: PageUser, session: DbSession
) -> Response:
    quiz = await service.get_visible(session, quiz_id, user)
    return _with_cookies(render(request, "quiz/quiz.html", quiz=quiz), response)
