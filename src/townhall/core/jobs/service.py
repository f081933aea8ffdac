"""Dead-letter store operations shared by the admin API and `townhall jobs dlq`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.db import after_commit
from townhall.core.errors import Conflict, NotFound
from townhall.core.jobs.models import DeadLetter
from townhall.core.jobs.registry import TASKS
from townhall.core.jobs.repository import DeadLetterRepository
from townhall.core.jobs.runtime import Jobs


async def list_dead_letters(
    session: AsyncSession,
    *,
    status: str | None = "dead",
    task: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[DeadLetter], int]:
    """Newest first; `status=None` lists every letter."""
    return await DeadLetterRepository(session).list(
        status=status, task=task, limit=limit, offset=offset
    )


async def get_dead_letter(session: AsyncSession, letter_id: uuid.UUID) -> DeadLetter:
    letter = await DeadLetterRepository(session).get(letter_id)
    if letter is None:
        raise NotFound(f"dead letter {letter_id} not found")
    return letter


async def retry_dead_letter(
    session: AsyncSession, jobs: Jobs, letter_id: uuid.UUID
) -> tuple[DeadLetter, str]:
    """Mark the letter retried and send its job again (fresh attempts) once this commits."""
    letter = await get_dead_letter(session, letter_id)
    spec = TASKS.get(letter.task)
    if spec is None:
        raise Conflict(f"task {letter.task!r} is no longer declared; discard this letter")
    job_id = uuid.uuid4().hex
    if not await DeadLetterRepository(session).resolve(
        letter_id, status="retried", retried_job_id=job_id
    ):
        raise Conflict(f"dead letter {letter_id} is already {letter.status}")
    kwargs = dict(letter.kwargs)

    async def send() -> None:
        await jobs._send(spec, kwargs, attempt=1, delay=0, task_id=job_id)

    after_commit(session, send)
    await session.refresh(letter)
    return letter, job_id


async def discard_dead_letter(session: AsyncSession, letter_id: uuid.UUID) -> DeadLetter:
    letter = await get_dead_letter(session, letter_id)
    if not await DeadLetterRepository(session).resolve(letter_id, status="discarded"):
        raise Conflict(f"dead letter {letter_id} is already {letter.status}")
    await session.refresh(letter)
    return letter
