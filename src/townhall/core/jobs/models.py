"""Tables of the jobs package: the embedded queue, dead letters and claimed schedule ticks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from townhall.core.db import Base, new_id, utcnow


class Job(Base):
    """A message of the embedded broker; deleted when the worker acknowledges it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "queue", "status", "available_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    task_id: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    # queued: waiting for available_at; running: claimed until locked_until (the lease).
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadLetter(Base):
    """A job that failed its last attempt: listed, inspected, retried or discarded by admins."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_status_failed_at", "status", "failed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    task_id: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # dead: waiting for an admin; retrying: an admin retried it, the send is not confirmed
    # yet (the jobs.dlq_retrying sweeper re-sends it); retried: sent again as a new job;
    # discarded: dropped.
    status: Mapped[str] = mapped_column(String(16), default="dead")
    retried_job_id: Mapped[str | None] = mapped_column(String(64), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class JobTick(Base):
    """One row per (schedule, tick): the process that inserts it runs that tick."""

    __tablename__ = "job_ticks"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    tick: Mapped[datetime] = mapped_column(primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[str] = mapped_column(String(100), default="")
