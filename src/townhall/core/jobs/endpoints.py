"""Admin API of the dead-letter store: /api/v1/admin/jobs/dead-letters."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from townhall.core.deps import AdminPrincipal, DbSession, PlatformDep
from townhall.core.jobs import service
from townhall.core.jobs.schemas import DeadLetterOut, DeadLetterPage

router = APIRouter(prefix="/api/v1/admin/jobs", tags=["admin: jobs"])


@router.get("/dead-letters")
async def list_dead_letters(
    _admin: AdminPrincipal,
    session: DbSession,
    status_: Annotated[
        Literal["dead", "retrying", "retried", "discarded", "all"], Query(alias="status")
    ] = "dead",
    task: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeadLetterPage:
    """Dead letters, newest first (default: only those waiting for a decision)."""
    items, total = await service.list_dead_letters(
        session,
        status=None if status_ == "all" else status_,
        task=task,
        limit=limit,
        offset=offset,
    )
    return DeadLetterPage(
        items=[DeadLetterOut.of(i) for i in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/dead-letters/{letter_id}")
async def get_dead_letter(
    letter_id: uuid.UUID, _admin: AdminPrincipal, session: DbSession
) -> DeadLetterOut:
    """One dead letter with its arguments and the last error's traceback."""
    return DeadLetterOut.of(await service.get_dead_letter(session, letter_id))


@router.post("/dead-letters/{letter_id}/retry", status_code=status.HTTP_202_ACCEPTED)
async def retry_dead_letter(
    letter_id: uuid.UUID, _admin: AdminPrincipal, session: DbSession, platform: PlatformDep
) -> DeadLetterOut:
    """Send the job again with fresh attempts: 'retrying' now, 'retried' once it was sent."""
    letter, _job_id = await service.retry_dead_letter(session, platform.jobs, letter_id)
    return DeadLetterOut.of(letter)


@router.delete("/dead-letters/{letter_id}", status_code=status.HTTP_204_NO_CONTENT)
async def discard_dead_letter(
    letter_id: uuid.UUID, _admin: AdminPrincipal, session: DbSession
) -> Response:
    """Drop the job for good; the letter is kept as 'discarded' for the record."""
    await service.discard_dead_letter(session, letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
