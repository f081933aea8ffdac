"""Dead-letter store operations shared by the admin API and `townhall jobs dlq`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.db import after_commit, utcnow
from townhall.core.errors import Conflict, NotFound
from townhall.core.jobs.models import DeadLetter
from townhall.core.jobs.registry import TASKS, TaskSpec, sweeper
from townhall.core.jobs.repository import DeadLetterRepository
from townhall.core.jobs.runtime import Jobs

if TYPE_CHECKING:
    from townhall.core.platform import Platform

log = structlog.get_logger(__name__)

# A 'retrying' letter younger than this may still have its after-commit send in flight.
RESEND_AFTER = timedelta(seconds=30)


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
    """Mark the letter 'retrying'; once this commits, send its job (fresh attempts) again.

    The letter becomes 'retried' only after the broker took the job. When the send fails
    (broker unreachable) it stays 'retrying' and the jobs.dlq_retrying sweeper sends it.
    """
    letter = await get_dead_letter(session, letter_id)
    spec = TASKS.get(letter.task)
    if spec is None:
        raise Conflict(f"task {letter.task!r} is no longer declared; discard this letter")
    job_id = uuid.uuid4().hex
    if not await DeadLetterRepository(session).resolve(
        letter_id, status="retrying", retried_job_id=job_id
    ):
        raise Conflict(f"dead letter {letter_id} is already {letter.status}")
    kwargs = dict(letter.kwargs)

    async def send() -> None:
        await _send_retry(jobs, letter_id, spec, kwargs, job_id)

    after_commit(session, send)
    await session.refresh(letter)
    return letter, job_id


async def _send_retry(
    jobs: Jobs, letter_id: uuid.UUID, spec: TaskSpec, kwargs: dict[str, Any], job_id: str
) -> None:
    """Send the retried job, then mark its letter 'retried' (a failed send leaves 'retrying')."""
    await jobs._send(spec, kwargs, attempt=1, delay=0, task_id=job_id)
    async with jobs.db.session() as session:
        await DeadLetterRepository(session).resolve(letter_id, status="retried", current="retrying")


async def resend_retrying(platform: Platform, *, older_than: timedelta = RESEND_AFTER) -> int:
    """Send the jobs of letters left 'retrying' for `older_than` (their send failed)."""
    async with platform.db.session() as session:
        letters = await DeadLetterRepository(session).retrying(older_than=utcnow() - older_than)
        pending = [(ltr.id, ltr.task, dict(ltr.kwargs), ltr.retried_job_id) for ltr in letters]
    sent = 0
    for letter_id, task, kwargs, job_id in pending:
        spec = TASKS.get(task)
        if spec is None:
            log.warning("retried dead letter's task is not declared here", task=task)
            continue
        try:
            await _send_retry(platform.jobs, letter_id, spec, kwargs, job_id or uuid.uuid4().hex)
        except Exception as exc:
            # Still unreachable: the letter stays 'retrying' for the next sweep.
            log.warning("dead-letter retry send failed again", error=str(exc)[:200])
            break
        sent += 1
    return sent


@sweeper("jobs.dlq_retrying", interval=60)
async def dlq_retrying(platform: Platform) -> int:
    """Re-send retried dead letters whose first send failed."""
    return await resend_retrying(platform)


async def discard_dead_letter(session: AsyncSession, letter_id: uuid.UUID) -> DeadLetter:
    letter = await get_dead_letter(session, letter_id)
    if not await DeadLetterRepository(session).resolve(letter_id, status="discarded"):
        raise Conflict(f"dead letter {letter_id} is already {letter.status}")
    await session.refresh(letter)
    return letter
