"""All SQL of the quiz app."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.models import User
from townhall.modules.quiz.models import (
    Game,
    GameAnswer,
    GamePlayer,
    Question,
    Quiz,
    QuizComment,
    QuizLike,
    QuizReport,
    QuizTag,
)


class QuizRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, quiz_id: uuid.UUID) -> Quiz | None:
        return await self.session.get(Quiz, quiz_id)

    def add(self, quiz: Quiz) -> None:
        self.session.add(quiz)

    async def delete(self, quiz: Quiz) -> None:
        await self.session.delete(quiz)

    def _filtered(self, stmt: Select[Any], q: str | None, tag: str | None) -> Select[Any]:
        if q:
            pattern = f"%{q.lower().replace('%', '').replace('_', '')}%"
            stmt = stmt.where(
                or_(
                    func.lower(Quiz.title).like(pattern), func.lower(Quiz.description).like(pattern)
                )
            )
        if tag:
            stmt = stmt.where(
                Quiz.id.in_(select(QuizTag.quiz_id).where(QuizTag.tag == tag.strip().lower()))
            )
        return stmt

    async def search(
        self,
        *,
        owner_id: uuid.UUID | None,
        q: str | None,
        tag: str | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Quiz], int]:
        """Mine (owner_id given) or the public, unhidden library."""
        base = select(Quiz)
        if owner_id is not None:
            base = base.where(Quiz.owner_id == owner_id)
        else:
            base = base.where(Quiz.is_public.is_(True), Quiz.is_hidden.is_(False))
        base = self._filtered(base, q, tag)
        total = await self.session.scalar(select(func.count()).select_from(base.subquery()))
        orders: dict[str, Any] = {
            "plays": Quiz.play_count.desc(),
            "likes": Quiz.like_count.desc(),
            "title": Quiz.title.asc(),
        }
        order = orders.get(sort, Quiz.updated_at.desc())
        rows = await self.session.scalars(base.order_by(order, Quiz.id).limit(limit).offset(offset))
        return rows.all(), int(total or 0)

    async def user_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(User.id, User.display_name).where(User.id.in_(ids))
        )
        return {row[0]: row[1] for row in rows}

    async def question_counts(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Question.quiz_id, func.count())
            .where(Question.quiz_id.in_(ids))
            .group_by(Question.quiz_id)
        )
        return {row[0]: int(row[1]) for row in rows}

    async def increment_plays(self, quiz_id: uuid.UUID) -> None:
        await self.session.execute(
            update(Quiz).where(Quiz.id == quiz_id).values(play_count=Quiz.play_count + 1)
        )

    # likes
    async def has_like(self, quiz_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return await self.session.get(QuizLike, (quiz_id, user_id)) is not None

    async def set_like(self, quiz: Quiz, user_id: uuid.UUID, liked: bool) -> None:
        exists = await self.has_like(quiz.id, user_id)
        if liked and not exists:
            self.session.add(QuizLike(quiz_id=quiz.id, user_id=user_id))
            delta = 1
        elif not liked and exists:
            await self.session.execute(
                delete(QuizLike).where(QuizLike.quiz_id == quiz.id, QuizLike.user_id == user_id)
            )
            delta = -1
        else:
            return
        await self.session.execute(
            update(Quiz).where(Quiz.id == quiz.id).values(like_count=Quiz.like_count + delta)
        )
        await self.session.flush()
        await self.session.refresh(quiz, ["like_count"])

    # comments
    async def comments(self, quiz_id: uuid.UUID) -> Sequence[QuizComment]:
        rows = await self.session.scalars(
            select(QuizComment)
            .where(QuizComment.quiz_id == quiz_id)
            .order_by(QuizComment.created_at, QuizComment.id)
        )
        return rows.all()

    async def comment(self, comment_id: uuid.UUID) -> QuizComment | None:
        return await self.session.get(QuizComment, comment_id)

    # reports
    async def reports(self, status: str | None) -> Sequence[QuizReport]:
        stmt = select(QuizReport).order_by(QuizReport.created_at.desc()).limit(200)
        if status:
            stmt = stmt.where(QuizReport.status == status)
        return (await self.session.scalars(stmt)).all()

    async def report(self, report_id: uuid.UUID) -> QuizReport | None:
        return await self.session.get(QuizReport, report_id)


class GameRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, game_id: uuid.UUID) -> Game | None:
        return await self.session.get(Game, game_id)

    def add(self, game: Game) -> None:
        self.session.add(game)

    async def hosted_by(self, host_id: uuid.UUID, limit: int = 50) -> Sequence[Game]:
        rows = await self.session.scalars(
            select(Game)
            .where(Game.host_id == host_id)
            .order_by(Game.created_at.desc())
            .limit(limit)
        )
        return rows.all()

    async def played_by(self, user_id: uuid.UUID, limit: int = 50) -> list[tuple[Game, GamePlayer]]:
        rows = await self.session.execute(
            select(Game, GamePlayer)
            .join(GamePlayer, GamePlayer.game_id == Game.id)
            .where(GamePlayer.user_id == user_id)
            .order_by(Game.created_at.desc())
            .limit(limit)
        )
        return [(row[0], row[1]) for row in rows]

    async def players(self, game_id: uuid.UUID) -> Sequence[GamePlayer]:
        rows = await self.session.scalars(
            select(GamePlayer).where(GamePlayer.game_id == game_id).order_by(GamePlayer.rank)
        )
        return rows.all()

    async def answers(self, game_id: uuid.UUID) -> Sequence[GameAnswer]:
        rows = await self.session.scalars(
            select(GameAnswer)
            .where(GameAnswer.game_id == game_id)
            .order_by(GameAnswer.player_number, GameAnswer.question_index)
        )
        return rows.all()

    async def claim_end(self, game_id: uuid.UUID, ended_at: Any, player_count: int) -> bool:
        """Mark the game ended unless it already is: one conditional UPDATE, so one winner."""
        result = await self.session.execute(
            update(Game)
            .where(Game.id == game_id, Game.status != "ended")
            .values(status="ended", ended_at=ended_at, player_count=player_count)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def abandon_lobby(self, game_id: uuid.UUID, ended_at: Any) -> bool:
        """Mark a game that never left its lobby abandoned (it has no results to store)."""
        result = await self.session.execute(
            update(Game)
            .where(Game.id == game_id, Game.status == "lobby")
            .values(status="abandoned", ended_at=ended_at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def save_results(
        self, players: list[dict[str, Any]], answers: list[dict[str, Any]]
    ) -> None:
        """Bulk insert, in chunks so a 2,000-player game stays within parameter limits."""
        for table, rows in ((GamePlayer, players), (GameAnswer, answers)):
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                if chunk:
                    await self.session.execute(insert(table), chunk)
