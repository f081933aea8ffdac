"""All SQL of the jobs package outside the embedded broker: dead letters and schedule ticks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from townhall.core.db import utcnow
from townhall.core.jobs.models import DeadLetter, JobTick


class DeadLetterRepository:
    """Dead letters of one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        task_id: str,
        task: str,
        queue: str,
        kwargs: dict[str, Any],
        error: str,
        attempts: int,
    ) -> DeadLetter:
        letter = DeadLetter(
            task_id=task_id, task=task, queue=queue, kwargs=kwargs, error=error, attempts=attempts
        )
        self.session.add(letter)
        await self.session.flush()
        return letter

    async def get(self, letter_id: uuid.UUID) -> DeadLetter | None:
        return await self.session.get(DeadLetter, letter_id)

    async def list(
        self, *, status: str | None, task: str | None, limit: int, offset: int
    ) -> tuple[Sequence[DeadLetter], int]:
        query = select(DeadLetter)
        if status is not None:
            query = query.where(DeadLetter.status == status)
        if task is not None:
            query = query.where(DeadLetter.task == task)
        total = (
            await self.session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        rows = (
            await self.session.execute(
                query.order_by(DeadLetter.failed_at.desc(), DeadLetter.id)
                .limit(limit)
                .offset(offset)
            )
        ).scalars()
        return rows.all(), total

    async def resolve(
        self,
        letter_id: uuid.UUID,
        *,
        status: str,
        retried_job_id: str | None = None,
        current: str = "dead",
    ) -> bool:
        """Move a letter from `current` to `status`; False when someone else moved it first."""
        values: dict[str, Any] = {"status": status, "resolved_at": utcnow()}
        if retried_job_id is not None:
            values["retried_job_id"] = retried_job_id
        result = await self.session.execute(
            update(DeadLetter)
            .where(DeadLetter.id == letter_id, DeadLetter.status == current)
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def retrying(self, *, older_than: datetime, limit: int = 100) -> Sequence[DeadLetter]:
        """Letters marked 'retrying' before `older_than` whose send was never confirmed."""
        rows = await self.session.execute(
            select(DeadLetter)
            .where(DeadLetter.status == "retrying", DeadLetter.resolved_at <= older_than)
            .order_by(DeadLetter.resolved_at)
            .limit(limit)
        )
        return rows.scalars().all()


async def claim_tick(engine: AsyncEngine, name: str, tick: datetime, owner: str) -> bool:
    """Insert the (name, tick) row; only the one process that succeeds runs the tick."""
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(JobTick).values(name=name, tick=tick, owner=owner))
    except IntegrityError:
        return False
    return True


async def prune_ticks(engine: AsyncEngine, older_than: timedelta) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(JobTick).where(JobTick.claimed_at < utcnow() - older_than))
