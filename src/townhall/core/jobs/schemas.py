"""Admin API shapes of the dead-letter store."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from townhall.core.jobs.models import DeadLetter

DeadLetterStatus = Literal["dead", "retrying", "retried", "discarded"]


class DeadLetterOut(BaseModel):
    """A job that failed every attempt."""

    id: uuid.UUID
    task_id: str
    task: str
    queue: str
    # The job's keyword arguments (its `kwargs`).
    arguments: dict[str, Any]
    error: str
    attempts: int
    failed_at: datetime
    status: DeadLetterStatus
    retried_job_id: str | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        return cls(
            id=letter.id,
            task_id=letter.task_id,
            task=letter.task,
            queue=letter.queue,
            arguments=letter.kwargs,
            error=letter.error,
            attempts=letter.attempts,
            failed_at=letter.failed_at,
            status=letter.status,
            retried_job_id=letter.retried_job_id,
            resolved_at=letter.resolved_at,
        )


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    total: int
    limit: int
    offset: int
