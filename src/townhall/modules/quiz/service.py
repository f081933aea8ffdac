"""Business rules of quizzes, the community and stored game results (never commits)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.db import new_id, utcnow
from townhall.core.deps import Principal
from townhall.core.errors import AppError, BadRequest, Forbidden, NotFound, PayloadTooLarge
from townhall.core.storage import BlobNotFound, Storage, resolve_content_type
from townhall.modules.quiz import game as rules
from townhall.modules.quiz.models import Game, Question, Quiz, QuizComment, QuizReport, QuizTag
from townhall.modules.quiz.repository import GameRepository, QuizRepository
from townhall.modules.quiz.schemas import (
    IMAGE_KEY_PATTERN,
    CommentOut,
    GameResults,
    GameSummary,
    PlayerResult,
    QuestionIn,
    QuestionOut,
    QuizIn,
    QuizOut,
    QuizSummary,
    ReportOut,
)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_SNIFF_BYTES = 4096


def is_image_key(key: str | None) -> TypeGuard[str]:
    """True for keys the quiz's image upload hands out; only those are ever signed."""
    return key is not None and re.fullmatch(IMAGE_KEY_PATTERN, key) is not None


def new_image_key(quiz_id: uuid.UUID) -> str:
    return f"quiz/{quiz_id}/{uuid.uuid4().hex}"


def _image_keys(body: QuizIn) -> set[str]:
    keys = {q.image_key for q in body.questions if q.image_key}
    return keys | ({body.cover_image_key} if body.cover_image_key else set())


async def _check_images(
    session: AsyncSession,
    principal: Principal,
    quiz_id: uuid.UUID,
    new_keys: set[str],
    storage: Storage | None,
    max_bytes: int,
) -> None:
    """Newly referenced images: this quiz's own uploads, or images of a quiz the caller sees."""
    sources = {uuid.UUID(key.split("/")[1]) for key in new_keys}
    repo = QuizRepository(session)
    for source in sources - {quiz_id}:
        quiz = await repo.get(source)
        if quiz is None or not can_view(quiz, principal):
            raise BadRequest("image_key names an image of a quiz you cannot see")
    if storage is None:
        return
    for key in sorted(k for k in new_keys if k.split("/")[1] == str(quiz_id)):
        await verify_upload(storage, key, max_bytes)


def check_image_size(size: int | None, max_bytes: int) -> None:
    """Refuse an image over the limit (a size of None is not known yet)."""
    if size is not None and size > max_bytes:
        raise PayloadTooLarge(f"image is larger than the limit of {max_bytes} bytes")


async def verify_upload(storage: Storage, key: str, max_bytes: int) -> None:
    """A direct (presigned PUT) upload must be an image within the limit; else it is deleted."""
    try:
        info = await storage.stat(key)
    except BlobNotFound as exc:
        raise BadRequest("image_key names an image that was never uploaded") from exc
    try:
        check_image_size(info.size, max_bytes)
        _, chunks = await storage.open(key)
        head = b""
        async for chunk in chunks:
            head += chunk
            if len(head) >= _SNIFF_BYTES:
                break
        resolve_content_type(head[:_SNIFF_BYTES], info.content_type, IMAGE_TYPES)
    except AppError:
        # S3 cannot limit a presigned PUT: a rejected upload must not stay behind.
        await storage.delete(key)
        raise


def can_view(quiz: Quiz, principal: Principal | None) -> bool:
    if principal is not None and (quiz.owner_id == principal.id or principal.is_admin):
        return True
    return quiz.is_public and not quiz.is_hidden


async def get_visible(session: AsyncSession, quiz_id: uuid.UUID, who: Principal | None) -> Quiz:
    quiz = await QuizRepository(session).get(quiz_id)
    if quiz is None or not can_view(quiz, who):
        raise NotFound("quiz not found")
    return quiz


async def get_own(session: AsyncSession, quiz_id: uuid.UUID, principal: Principal) -> Quiz:
    quiz = await get_visible(session, quiz_id, principal)
    if quiz.owner_id != principal.id:
        raise Forbidden("only the quiz's owner may change it")
    return quiz


def _question(body: QuestionIn, position: int) -> Question:
    return Question(
        id=new_id(),
        position=position,
        type=body.type,
        text=body.text,
        image_key=body.image_key,
        time_limit=body.time_limit,
        points=body.points,
        spec=body.spec(),
    )


def apply_body(quiz: Quiz, body: QuizIn) -> None:
    quiz.title = body.title
    quiz.description = body.description
    quiz.is_public = body.is_public
    quiz.cover_image_key = body.cover_image_key
    quiz.tags = [QuizTag(tag=t) for t in dict.fromkeys(body.tags)]
    quiz.questions = [_question(q, i) for i, q in enumerate(body.questions)]
    quiz.updated_at = utcnow()


async def create_quiz(session: AsyncSession, principal: Principal, body: QuizIn) -> Quiz:
    quiz = Quiz(id=new_id(), owner_id=principal.id, questions=[], tags=[])
    # A new quiz has no uploads of its own yet: only images of visible quizzes (copies).
    await _check_images(session, principal, quiz.id, _image_keys(body), None, 0)
    apply_body(quiz, body)
    QuizRepository(session).add(quiz)
    await session.flush()
    return quiz


async def update_quiz(
    session: AsyncSession,
    principal: Principal,
    quiz_id: uuid.UUID,
    body: QuizIn,
    storage: Storage | None = None,
    max_image_bytes: int = 0,
) -> Quiz:
    quiz = await get_own(session, quiz_id, principal)
    known = {q.image_key for q in quiz.questions if q.image_key} | {quiz.cover_image_key}
    new_keys = _image_keys(body) - known
    await _check_images(session, principal, quiz.id, new_keys, storage, max_image_bytes)
    apply_body(quiz, body)
    await session.flush()
    return quiz


async def delete_quiz(session: AsyncSession, principal: Principal, quiz_id: uuid.UUID) -> None:
    quiz = await get_visible(session, quiz_id, principal)
    if quiz.owner_id != principal.id and not principal.is_admin:
        raise Forbidden("only the quiz's owner may delete it")
    await QuizRepository(session).delete(quiz)


async def duplicate_quiz(session: AsyncSession, principal: Principal, quiz_id: uuid.UUID) -> Quiz:
    """Copy a quiz (own or public) into the caller's library, private."""
    source = await get_visible(session, quiz_id, principal)
    body = export_quiz(source)
    body.title = f"{source.title} (copy)"[:200]
    body.is_public = False
    return await create_quiz(session, principal, body)


async def reorder(
    session: AsyncSession, principal: Principal, quiz_id: uuid.UUID, order: list[uuid.UUID]
) -> Quiz:
    quiz = await get_own(session, quiz_id, principal)
    current = {q.id: q for q in quiz.questions}
    if sorted(order) != sorted(current) or len(set(order)) != len(order):
        raise BadRequest("order must list every question of the quiz exactly once")
    for position, qid in enumerate(order):
        current[qid].position = position
    quiz.questions.sort(key=lambda q: q.position)
    quiz.updated_at = utcnow()
    await session.flush()
    return quiz


async def duplicate_question(
    session: AsyncSession, principal: Principal, quiz_id: uuid.UUID, question_id: uuid.UUID
) -> Quiz:
    quiz = await get_own(session, quiz_id, principal)
    if len(quiz.questions) >= 100:
        raise BadRequest("a quiz has at most 100 questions")
    index = next((i for i, q in enumerate(quiz.questions) if q.id == question_id), None)
    if index is None:
        raise NotFound("question not found")
    copy = _question(question_in(quiz.questions[index]), index + 1)
    quiz.questions.insert(index + 1, copy)
    for position, question in enumerate(quiz.questions):
        question.position = position
    quiz.updated_at = utcnow()
    await session.flush()
    return quiz


def question_in(question: Question) -> QuestionIn:
    return QuestionIn(
        type=question.type,
        text=question.text,
        # Rows saved before keys were validated may hold other keys: never carried over.
        image_key=question.image_key if is_image_key(question.image_key) else None,
        time_limit=question.time_limit,
        points=question.points,
        **question.spec,
    )


def export_quiz(quiz: Quiz) -> QuizIn:
    return QuizIn(
        title=quiz.title,
        description=quiz.description,
        is_public=quiz.is_public,
        cover_image_key=quiz.cover_image_key if is_image_key(quiz.cover_image_key) else None,
        tags=[t.tag for t in quiz.tags],
        questions=[question_in(q) for q in quiz.questions],
    )


def question_out(question: Question, image_url: str | None = None) -> QuestionOut:
    return QuestionOut(
        id=question.id,
        position=question.position,
        type=question.type,
        text=question.text,
        image_key=question.image_key,
        image_url=image_url,
        time_limit=question.time_limit,
        points=question.points,
        **question.spec,
    )


async def summaries(session: AsyncSession, quizzes: Sequence[Quiz]) -> list[QuizSummary]:
    repo = QuizRepository(session)
    names = await repo.user_names({q.owner_id for q in quizzes})
    counts = await repo.question_counts([q.id for q in quizzes])
    return [
        QuizSummary(
            id=q.id,
            owner_id=q.owner_id,
            owner_name=names.get(q.owner_id, ""),
            title=q.title,
            description=q.description,
            is_public=q.is_public,
            is_hidden=q.is_hidden,
            tags=[t.tag for t in q.tags],
            play_count=q.play_count,
            like_count=q.like_count,
            question_count=counts.get(q.id, 0),
            updated_at=q.updated_at,
        )
        for q in quizzes
    ]


async def quiz_out(
    session: AsyncSession,
    quiz: Quiz,
    who: Principal | None,
    image_urls: dict[str, str] | None = None,
) -> QuizOut:
    (summary,) = await summaries(session, [quiz])
    liked = who is not None and await QuizRepository(session).has_like(quiz.id, who.id)
    urls = image_urls or {}
    return QuizOut(
        **summary.model_dump(),
        cover_image_key=quiz.cover_image_key,
        liked=liked,
        questions=[question_out(q, urls.get(q.image_key or "")) for q in quiz.questions],
    )


def runtime_questions(quiz: Quiz, seed: str) -> list[dict[str, Any]]:
    """The quiz's questions as a live game holds them (answer keys included)."""
    return [
        rules.runtime_question(
            str(q.id),
            q.type,
            q.text,
            q.spec,
            time_limit=q.time_limit,
            points=q.points,
            image_key=q.image_key,
            seed=seed,
        )
        for q in quiz.questions
    ]


# Community


async def list_comments(
    session: AsyncSession, quiz_id: uuid.UUID, who: Principal | None
) -> list[CommentOut]:
    await get_visible(session, quiz_id, who)
    repo = QuizRepository(session)
    rows = await repo.comments(quiz_id)
    names = await repo.user_names({c.author_id for c in rows})
    top: dict[uuid.UUID, CommentOut] = {}
    replies: list[CommentOut] = []
    for c in rows:
        out = CommentOut(
            id=c.id,
            quiz_id=c.quiz_id,
            author_id=c.author_id,
            author_name=names.get(c.author_id, ""),
            parent_id=c.parent_id,
            body="" if c.is_deleted else c.body,
            is_deleted=c.is_deleted,
            edited=c.edited,
            created_at=c.created_at,
        )
        if c.parent_id is None:
            top[c.id] = out
        else:
            replies.append(out)
    for reply in replies:
        if reply.parent_id in top:
            top[reply.parent_id].replies.append(reply)
    return list(top.values())


async def add_comment(
    session: AsyncSession,
    principal: Principal,
    quiz_id: uuid.UUID,
    body: str,
    parent_id: uuid.UUID | None,
) -> QuizComment:
    quiz = await get_visible(session, quiz_id, principal)
    if not quiz.is_public:
        raise BadRequest("comments are open on public quizzes only")
    if parent_id is not None:
        parent = await QuizRepository(session).comment(parent_id)
        if parent is None or parent.quiz_id != quiz.id:
            raise NotFound("parent comment not found")
        if parent.parent_id is not None:
            raise BadRequest("replies are one level deep: reply to the top comment")
    comment = QuizComment(
        id=new_id(), quiz_id=quiz.id, author_id=principal.id, parent_id=parent_id, body=body
    )
    session.add(comment)
    await session.flush()
    return comment


async def _own_comment(
    session: AsyncSession, principal: Principal, comment_id: uuid.UUID, *, admin_ok: bool
) -> QuizComment:
    comment = await QuizRepository(session).comment(comment_id)
    if comment is None or comment.is_deleted:
        raise NotFound("comment not found")
    if comment.author_id != principal.id and not (admin_ok and principal.is_admin):
        raise Forbidden("only the author may change this comment")
    return comment


async def edit_comment(
    session: AsyncSession, principal: Principal, comment_id: uuid.UUID, body: str
) -> QuizComment:
    comment = await _own_comment(session, principal, comment_id, admin_ok=False)
    comment.body = body
    comment.edited = True
    await session.flush()
    return comment


async def delete_comment(
    session: AsyncSession, principal: Principal, comment_id: uuid.UUID
) -> None:
    comment = await _own_comment(session, principal, comment_id, admin_ok=True)
    # Soft delete keeps the thread's replies readable.
    comment.is_deleted = True
    await session.flush()


async def set_like(
    session: AsyncSession, principal: Principal, quiz_id: uuid.UUID, liked: bool
) -> Quiz:
    quiz = await get_visible(session, quiz_id, principal)
    await QuizRepository(session).set_like(quiz, principal.id, liked)
    return quiz


async def report_abuse(
    session: AsyncSession,
    principal: Principal,
    quiz_id: uuid.UUID,
    reason: str,
    comment_id: uuid.UUID | None,
) -> QuizReport:
    quiz = await get_visible(session, quiz_id, principal)
    if comment_id is not None:
        comment = await QuizRepository(session).comment(comment_id)
        if comment is None or comment.quiz_id != quiz.id:
            raise NotFound("comment not found")
    report = QuizReport(
        id=new_id(), quiz_id=quiz.id, comment_id=comment_id, reporter_id=principal.id, reason=reason
    )
    session.add(report)
    await session.flush()
    return report


async def report_outs(session: AsyncSession, rows: Sequence[QuizReport]) -> list[ReportOut]:
    repo = QuizRepository(session)
    result = []
    for r in rows:
        quiz = await repo.get(r.quiz_id)
        comment = await repo.comment(r.comment_id) if r.comment_id else None
        result.append(
            ReportOut(
                id=r.id,
                quiz_id=r.quiz_id,
                quiz_title=quiz.title if quiz else "",
                comment_id=r.comment_id,
                comment_body=comment.body if comment else None,
                reporter_id=r.reporter_id,
                reason=r.reason,
                status=r.status,
                resolution=r.resolution,
                created_at=r.created_at,
            )
        )
    return result


async def resolve_report(
    session: AsyncSession, principal: Principal, report_id: uuid.UUID, action: str
) -> QuizReport:
    if not principal.is_admin:
        raise Forbidden("moderation is for admins")
    repo = QuizRepository(session)
    report = await repo.report(report_id)
    if report is None:
        raise NotFound("report not found")
    if action == "hide_quiz":
        quiz = await repo.get(report.quiz_id)
        if quiz is not None:
            quiz.is_hidden = True
    elif action == "delete_comment":
        comment = await repo.comment(report.comment_id) if report.comment_id else None
        if comment is None:
            raise BadRequest("this report is not about a comment")
        comment.is_deleted = True
    report.status = "dismissed" if action == "dismiss" else "resolved"
    report.resolution = action
    report.resolved_by = principal.id
    report.resolved_at = utcnow()
    await session.flush()
    return report


# Games


async def start_game(
    session: AsyncSession, host_id: uuid.UUID, quiz: Quiz, pin: str, game_id: uuid.UUID
) -> Game:
    game = Game(
        id=game_id,
        quiz_id=quiz.id,
        host_id=host_id,
        pin=pin,
        quiz_title=quiz.title,
        question_count=len(quiz.questions),
    )
    GameRepository(session).add(game)
    await session.flush()
    return game


async def store_results(
    session: AsyncSession,
    game_id: uuid.UUID,
    players: list[dict[str, Any]],
    answers: list[dict[str, Any]],
) -> bool:
    """Write a finished game's players and per-question answers (exactly once per game)."""
    repo = GameRepository(session)
    # The claim comes first: concurrent writers (workers, a retry, the host's finish) wait on
    # the row lock and then see "ended", so only the first one inserts rows.
    if not await repo.claim_end(game_id, utcnow(), len(players)):
        return False
    game = await repo.get(game_id)
    if game is None:
        return False
    await repo.save_results(
        [dict(p, id=new_id(), game_id=game_id) for p in players],
        [dict(a, id=new_id(), game_id=game_id) for a in answers],
    )
    await QuizRepository(session).increment_plays(game.quiz_id)
    await session.flush()
    return True


async def abandon_game(session: AsyncSession, game_id: uuid.UUID) -> bool:
    """Close a game whose host left before the first question."""
    return await GameRepository(session).abandon_lobby(game_id, utcnow())


def game_summary(game: Game) -> GameSummary:
    return GameSummary(
        id=game.id,
        quiz_id=game.quiz_id,
        quiz_title=game.quiz_title,
        pin=game.pin,
        status=game.status,
        player_count=game.player_count,
        question_count=game.question_count,
        created_at=game.created_at,
        ended_at=game.ended_at,
    )


async def hosted_game(session: AsyncSession, principal: Principal, game_id: uuid.UUID) -> Game:
    game = await GameRepository(session).get(game_id)
    if game is None or (game.host_id != principal.id and not principal.is_admin):
        raise NotFound("game not found")
    return game


async def game_results(
    session: AsyncSession, principal: Principal, game_id: uuid.UUID
) -> GameResults:
    game = await hosted_game(session, principal, game_id)
    players = await GameRepository(session).players(game_id)
    return GameResults(
        **game_summary(game).model_dump(),
        players=[
            PlayerResult(
                number=p.number,
                nickname=p.nickname,
                score=p.score,
                rank=p.rank,
                correct_count=p.correct_count,
            )
            for p in players
        ],
    )
