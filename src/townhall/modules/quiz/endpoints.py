"""REST API of the quiz app under /api/v1/quizzes (thin: rules live in service.py)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from townhall.core.deps import (
    CurrentPrincipal,
    DbSession,
    OptionalPrincipal,
    PlatformDep,
    ReadSession,
)
from townhall.core.errors import BadRequest, ServiceUnavailable
from townhall.core.platform import Platform
from townhall.core.storage import Storage
from townhall.modules.quiz import service, spreadsheet
from townhall.modules.quiz.models import Quiz
from townhall.modules.quiz.repository import GameRepository, QuizRepository
from townhall.modules.quiz.schemas import (
    CommentEdit,
    CommentIn,
    CommentOut,
    GameResults,
    GameSummary,
    ImageOut,
    LikeOut,
    PlayedGame,
    PlayerResult,
    QuizImport,
    QuizIn,
    QuizOut,
    QuizPage,
    ReorderIn,
    ReportIn,
    ReportOut,
    ResolveIn,
    UploadConfirmIn,
    UploadUrlIn,
    UploadUrlOut,
)

log = structlog.get_logger(__name__)
UPLOAD_URL_TTL = timedelta(minutes=10)
router = APIRouter(prefix="/api/v1/quizzes", tags=["quiz"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _image_urls(platform: Platform, quiz: Quiz) -> dict[str, str]:
    storage = getattr(platform, "storage", None)
    keys = {q.image_key for q in quiz.questions if service.is_image_key(q.image_key)}
    if storage is None or not keys:
        return {}
    urls = {}
    for key in keys:
        try:
            urls[key] = await storage.signed_url(key, expires=timedelta(hours=1))
        except Exception:  # a bad key in imported data must not break the page
            log.warning("quiz image url failed", key=key)
    return urls


async def _out(session: Any, platform: Platform, quiz: Quiz, who: Any) -> QuizOut:
    return await service.quiz_out(session, quiz, who, await _image_urls(platform, quiz))


def _download(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("", response_model=QuizPage)
async def list_quizzes(
    session: ReadSession,
    who: OptionalPrincipal,
    scope: Literal["mine", "public"] = "public",
    q: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=40)] = None,
    sort: Literal["new", "plays", "likes", "title"] = "new",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> QuizPage:
    """My quizzes, or the public library with search, tags and play counts."""
    owner = None
    if scope == "mine":
        if who is None:
            raise BadRequest("sign in to list your quizzes")
        owner = who.id
    rows, total = await QuizRepository(session).search(
        owner_id=owner, q=q, tag=tag, sort=sort, limit=limit, offset=offset
    )
    return QuizPage(items=await service.summaries(session, rows), total=total)


@router.post("", response_model=QuizOut, status_code=201)
async def create_quiz(
    body: QuizIn, session: DbSession, principal: CurrentPrincipal, platform: PlatformDep
) -> QuizOut:
    quiz = await service.create_quiz(session, principal, body)
    return await _out(session, platform, quiz, principal)


@router.post("/import", response_model=QuizOut, status_code=201)
async def import_json(
    body: QuizImport, session: DbSession, principal: CurrentPrincipal, platform: PlatformDep
) -> QuizOut:
    """Create a quiz from the JSON export format."""
    quiz = await service.create_quiz(
        session, principal, QuizIn.model_validate(body.model_dump(exclude={"format"}))
    )
    return await _out(session, platform, quiz, principal)


@router.post("/import/spreadsheet", response_model=QuizOut, status_code=201)
async def import_spreadsheet(
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    file: Annotated[UploadFile, File()],
    title: Annotated[str, Form(min_length=1, max_length=200)] = "Imported quiz",
) -> QuizOut:
    """Create a quiz from a CSV or XLSX file shaped like the template."""
    data = await file.read(2 * 1024 * 1024 + 1)
    if len(data) > 2 * 1024 * 1024:
        raise BadRequest("spreadsheet larger than 2 MB")
    questions = spreadsheet.parse(data, file.filename or "upload.csv")
    quiz = await service.create_quiz(session, principal, QuizIn(title=title, questions=questions))
    return await _out(session, platform, quiz, principal)


@router.get("/template.{fmt}")
async def template(fmt: Literal["csv", "xlsx"]) -> Response:
    """The spreadsheet template with one example row of every question type."""
    questions = spreadsheet.template_questions()
    if fmt == "csv":
        return _download(spreadsheet.to_csv(questions), "text/csv", "quiz-template.csv")
    return _download(spreadsheet.to_xlsx(questions), XLSX, "quiz-template.xlsx")


@router.get("/games", response_model=list[GameSummary])
async def my_games(session: ReadSession, principal: CurrentPrincipal) -> list[GameSummary]:
    """Games I hosted, newest first."""
    games = await GameRepository(session).hosted_by(principal.id)
    return [service.game_summary(g) for g in games]


@router.get("/games/played", response_model=list[PlayedGame])
async def played_games(session: ReadSession, principal: CurrentPrincipal) -> list[PlayedGame]:
    """Games I played while signed in, with my result in each."""
    rows = await GameRepository(session).played_by(principal.id)
    return [
        PlayedGame(
            **service.game_summary(game).model_dump(),
            me=PlayerResult(
                number=p.number,
                nickname=p.nickname,
                score=p.score,
                rank=p.rank,
                correct_count=p.correct_count,
            ),
        )
        for game, p in rows
    ]


@router.get("/games/{game_id}", response_model=GameResults)
async def game_results(
    game_id: uuid.UUID, session: ReadSession, principal: CurrentPrincipal
) -> GameResults:
    return await service.game_results(session, principal, game_id)


@router.get("/games/{game_id}/results.csv")
async def game_results_csv(
    game_id: uuid.UUID, session: ReadSession, principal: CurrentPrincipal
) -> Response:
    """Per player, per question: outcome, points and time (for reports)."""
    game = await service.hosted_game(session, principal, game_id)
    repo = GameRepository(session)
    players = {p.number: p for p in await repo.players(game_id)}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "rank",
            "nickname",
            "total_score",
            "question",
            "outcome",
            "points",
            "bonus",
            "time_ms",
            "answer",
        ]
    )
    for a in await repo.answers(game_id):
        player = players.get(a.player_number)
        writer.writerow(
            [
                player.rank if player else "",
                player.nickname if player else a.player_number,
                player.score if player else "",
                a.question_index + 1,
                a.outcome,
                a.points,
                a.bonus,
                "" if a.elapsed_ms is None else a.elapsed_ms,
                "" if a.answer is None else a.answer,
            ]
        )
    return _download(out.getvalue().encode(), "text/csv", f"game-{game.pin}-results.csv")


@router.get("/reports", response_model=list[ReportOut])
async def list_reports(
    session: ReadSession,
    principal: CurrentPrincipal,
    status: Literal["open", "resolved", "dismissed"] | None = "open",
) -> list[ReportOut]:
    """The moderation queue (admins)."""
    if not principal.is_admin:
        from townhall.core.errors import Forbidden

        raise Forbidden("moderation is for admins")
    return await service.report_outs(session, await QuizRepository(session).reports(status))


@router.post("/reports/{report_id}/resolve", response_model=ReportOut)
async def resolve_report(
    report_id: uuid.UUID, body: ResolveIn, session: DbSession, principal: CurrentPrincipal
) -> ReportOut:
    report = await service.resolve_report(session, principal, report_id, body.action)
    (out,) = await service.report_outs(session, [report])
    return out


@router.patch("/comments/{comment_id}", response_model=CommentOut)
async def edit_comment(
    comment_id: uuid.UUID, body: CommentEdit, session: DbSession, principal: CurrentPrincipal
) -> CommentOut:
    comment = await service.edit_comment(session, principal, comment_id, body.body)
    return CommentOut(
        id=comment.id,
        quiz_id=comment.quiz_id,
        author_id=comment.author_id,
        author_name=principal.user.display_name,
        parent_id=comment.parent_id,
        body=comment.body,
        is_deleted=comment.is_deleted,
        edited=comment.edited,
        created_at=comment.created_at,
    )


@router.delete("/comments/{comment_id}", status_code=204)
async def delete_comment(
    comment_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal
) -> Response:
    await service.delete_comment(session, principal, comment_id)
    return Response(status_code=204)


@router.get("/{quiz_id}", response_model=QuizOut)
async def get_quiz(
    quiz_id: uuid.UUID, session: DbSession, who: OptionalPrincipal, platform: PlatformDep
) -> QuizOut:
    quiz = await service.get_visible(session, quiz_id, who)
    return await _out(session, platform, quiz, who)


@router.put("/{quiz_id}", response_model=QuizOut)
async def update_quiz(
    quiz_id: uuid.UUID,
    body: QuizIn,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> QuizOut:
    """Save the whole quiz (the editor's save: questions in their new order)."""
    quiz = await service.update_quiz(
        session,
        principal,
        quiz_id,
        body,
        getattr(platform, "storage", None),
        platform.settings.quiz_max_image_bytes,
    )
    return await _out(session, platform, quiz, principal)


@router.delete("/{quiz_id}", status_code=204)
async def delete_quiz(
    quiz_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal
) -> Response:
    await service.delete_quiz(session, principal, quiz_id)
    return Response(status_code=204)


@router.post("/{quiz_id}/duplicate", response_model=QuizOut, status_code=201)
async def duplicate_quiz(
    quiz_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal, platform: PlatformDep
) -> QuizOut:
    quiz = await service.duplicate_quiz(session, principal, quiz_id)
    return await _out(session, platform, quiz, principal)


@router.post("/{quiz_id}/reorder", response_model=QuizOut)
async def reorder(
    quiz_id: uuid.UUID,
    body: ReorderIn,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> QuizOut:
    quiz = await service.reorder(session, principal, quiz_id, body.order)
    return await _out(session, platform, quiz, principal)


@router.post("/{quiz_id}/questions/{question_id}/duplicate", response_model=QuizOut)
async def duplicate_question(
    quiz_id: uuid.UUID,
    question_id: uuid.UUID,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> QuizOut:
    quiz = await service.duplicate_question(session, principal, quiz_id, question_id)
    return await _out(session, platform, quiz, principal)


@router.get("/{quiz_id}/export.{fmt}")
async def export_quiz(
    quiz_id: uuid.UUID,
    fmt: Literal["json", "csv", "xlsx"],
    session: ReadSession,
    who: OptionalPrincipal,
) -> Response:
    quiz = await service.get_visible(session, quiz_id, who)
    body = service.export_quiz(quiz)
    if fmt == "json":
        data = QuizImport(**body.model_dump()).model_dump_json(indent=2).encode()
        return _download(data, "application/json", f"quiz-{quiz.id}.json")
    if fmt == "csv":
        return _download(spreadsheet.to_csv(body.questions), "text/csv", f"quiz-{quiz.id}.csv")
    return _download(spreadsheet.to_xlsx(body.questions), XLSX, f"quiz-{quiz.id}.xlsx")


@router.post("/{quiz_id}/images", response_model=ImageOut, status_code=201)
async def upload_image(
    quiz_id: uuid.UUID,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    file: Annotated[UploadFile, File()],
) -> ImageOut:
    """Store a question image; the key goes into the question, the URL is signed."""
    await service.get_own(session, quiz_id, principal)
    storage = _storage(platform)
    key = service.new_image_key(quiz_id)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await file.read(64 * 1024):
            yield chunk

    await storage.put_stream(
        key,
        chunks(),
        max_bytes=platform.settings.quiz_max_image_bytes,
        declared_type=file.content_type,
        allowed_types=service.IMAGE_TYPES,
    )
    return ImageOut(key=key, url=await storage.signed_url(key, expires=timedelta(hours=1)))


@router.post("/{quiz_id}/images/upload-url", response_model=UploadUrlOut, status_code=201)
async def image_upload_url(
    quiz_id: uuid.UUID,
    body: UploadUrlIn,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> UploadUrlOut:
    """A presigned PUT for a direct upload (to S3); saving the quiz with the key checks it."""
    await service.get_own(session, quiz_id, principal)
    storage = _storage(platform)
    max_bytes = platform.settings.quiz_max_image_bytes
    service.check_image_size(body.size, max_bytes)
    key = service.new_image_key(quiz_id)
    url = await storage.signed_url(key, expires=UPLOAD_URL_TTL, method="PUT")
    return UploadUrlOut(
        key=key,
        url=url,
        headers={"Content-Type": body.content_type},
        max_bytes=max_bytes,
        expires_in=int(UPLOAD_URL_TTL.total_seconds()),
    )


@router.post("/{quiz_id}/images/confirm", response_model=ImageOut)
async def confirm_image_upload(
    quiz_id: uuid.UUID,
    body: UploadConfirmIn,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> ImageOut:
    """After a presigned PUT: the object must exist and be an image within the limit."""
    await service.get_own(session, quiz_id, principal)
    if not body.key.startswith(f"quiz/{quiz_id}/"):
        raise BadRequest("key names an image of another quiz")
    storage = _storage(platform)
    await service.verify_upload(storage, body.key, platform.settings.quiz_max_image_bytes)
    return ImageOut(
        key=body.key, url=await storage.signed_url(body.key, expires=timedelta(hours=1))
    )


def _storage(platform: Platform) -> Storage:
    storage: Storage | None = getattr(platform, "storage", None)
    if storage is None:
        raise ServiceUnavailable("object storage is not configured")
    return storage


@router.get("/{quiz_id}/comments", response_model=list[CommentOut])
async def list_comments(
    quiz_id: uuid.UUID, session: ReadSession, who: OptionalPrincipal
) -> list[CommentOut]:
    return await service.list_comments(session, quiz_id, who)


@router.post("/{quiz_id}/comments", response_model=CommentOut, status_code=201)
async def add_comment(
    quiz_id: uuid.UUID, body: CommentIn, session: DbSession, principal: CurrentPrincipal
) -> CommentOut:
    c = await service.add_comment(session, principal, quiz_id, body.body, body.parent_id)
    return CommentOut(
        id=c.id,
        quiz_id=c.quiz_id,
        author_id=c.author_id,
        author_name=principal.user.display_name,
        parent_id=c.parent_id,
        body=c.body,
        is_deleted=False,
        edited=False,
        created_at=c.created_at,
    )


@router.put("/{quiz_id}/like", response_model=LikeOut)
async def like(quiz_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> LikeOut:
    quiz = await service.set_like(session, principal, quiz_id, True)
    return LikeOut(liked=True, like_count=quiz.like_count)


@router.delete("/{quiz_id}/like", response_model=LikeOut)
async def unlike(quiz_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> LikeOut:
    quiz = await service.set_like(session, principal, quiz_id, False)
    return LikeOut(liked=False, like_count=quiz.like_count)


@router.post("/{quiz_id}/reports", response_model=ReportOut, status_code=201)
async def report_abuse(
    quiz_id: uuid.UUID, body: ReportIn, session: DbSession, principal: CurrentPrincipal
) -> ReportOut:
    report = await service.report_abuse(session, principal, quiz_id, body.reason, body.comment_id)
    (out,) = await service.report_outs(session, [report])
    return out
