"""The embedded broker: a taskiq AsyncBroker storing messages in the `jobs` table (durable)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, Collection
from datetime import timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, and_, delete, insert, or_, select, update
from taskiq import AckableMessage, AsyncBroker, BrokerMessage
from taskiq.message import TaskiqMessage

from townhall.core.db import Database, utcnow
from townhall.core.jobs.models import Job

log = structlog.get_logger(__name__)

JOBS = cast(Table, Job.__table__)


class SqlBroker(AsyncBroker):
    """Claims with one atomic UPDATE (FOR UPDATE SKIP LOCKED on PostgreSQL); leases expire."""

    def __init__(
        self,
        db: Database,
        *,
        queues: Collection[str] | None = None,
        poll_seconds: float = 0.2,
        lease_seconds: float = 60.0,
        wake: asyncio.Event | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.queues = sorted(queues) if queues else None
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self._inflight: set[uuid.UUID] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        # Shared by the brokers of one process: a local enqueue wakes the local poller at once.
        self._wake = wake or asyncio.Event()

    async def startup(self) -> None:
        await super().startup()
        if self.is_worker_process:
            self._heartbeat = asyncio.create_task(self._renew_leases())

    async def shutdown(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._inflight:
            # Hand unfinished claims back at once instead of waiting for their lease to expire.
            with contextlib.suppress(Exception):
                async with self.db.engine.begin() as conn:
                    await conn.execute(
                        update(JOBS)
                        .where(JOBS.c.id.in_(list(self._inflight)))
                        .values(status="queued", locked_until=None)
                    )
            self._inflight.clear()
        await super().shutdown()

    async def kick(self, message: BrokerMessage) -> None:
        payload = json.loads(message.message)
        labels: dict[str, Any] = payload.get("labels") or {}
        delay = float(labels.get("delay") or 0)
        async with self.db.engine.begin() as conn:
            await conn.execute(
                insert(JOBS).values(
                    id=uuid.uuid4(),
                    task_id=message.task_id,
                    task=message.task_name,
                    queue=str(labels.get("queue_name", "default")),
                    kwargs=payload.get("kwargs") or {},
                    labels=labels,
                    status="queued",
                    attempts=0,
                    available_at=utcnow() + timedelta(seconds=delay),
                    created_at=utcnow(),
                )
            )
        self._wake.set()

    async def listen(self) -> AsyncGenerator[bytes | AckableMessage, None]:
        failures = 0
        while True:
            try:
                row = await self._claim()
                failures = 0
            except Exception as exc:
                # The database went away: keep polling with a capped backoff until it is back.
                failures += 1
                log.warning("job claim failed", error=str(exc)[:200], failures=failures)
                await asyncio.sleep(min(0.5 * failures, 5.0))
                continue
            if row is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                continue
            job_id = row["id"]
            self._inflight.add(job_id)
            message = TaskiqMessage(
                task_id=row["task_id"],
                task_name=row["task"],
                labels={**(row["labels"] or {}), "delivery": row["attempts"]},
                args=[],
                kwargs=row["kwargs"] or {},
            )
            yield AckableMessage(
                data=self.formatter.dumps(message).message, ack=self._acker(job_id)
            )

    def _claimable(self, now: Any) -> Any:
        ready = or_(
            and_(JOBS.c.status == "queued", JOBS.c.available_at <= now),
            and_(JOBS.c.status == "running", JOBS.c.locked_until < now),
        )
        if self.queues is not None:
            ready = and_(JOBS.c.queue.in_(self.queues), ready)
        return ready

    async def _claim(self) -> dict[str, Any] | None:
        now = utcnow()
        pick = (
            select(JOBS.c.id)
            .where(self._claimable(now))
            .order_by(JOBS.c.available_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(JOBS)
            .values(
                status="running",
                locked_until=now + timedelta(seconds=self.lease_seconds),
                attempts=JOBS.c.attempts + 1,
            )
            .returning(
                JOBS.c.id,
                JOBS.c.task_id,
                JOBS.c.task,
                JOBS.c.kwargs,
                JOBS.c.labels,
                JOBS.c.attempts,
            )
        )
        if self.db.is_sqlite:
            # Read without a write lock; the UPDATE re-checks the condition, so it stays atomic.
            async with self.db.engine.connect() as conn:
                job_id = (await conn.execute(pick)).scalar_one_or_none()
            if job_id is None:
                return None
            async with self.db.engine.begin() as conn:
                result = await conn.execute(claim.where(JOBS.c.id == job_id, self._claimable(now)))
                found = result.mappings().first()
        else:
            async with self.db.engine.begin() as conn:
                result = await conn.execute(claim.where(JOBS.c.id.in_(pick.scalar_subquery())))
                found = result.mappings().first()
        return dict(found) if found is not None else None

    def _acker(self, job_id: uuid.UUID) -> Any:
        async def ack() -> None:
            async with self.db.engine.begin() as conn:
                await conn.execute(delete(JOBS).where(JOBS.c.id == job_id))
            self._inflight.discard(job_id)

        return ack

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(max(self.lease_seconds / 3, 0.1))
            if not self._inflight:
                continue
            try:
                async with self.db.engine.begin() as conn:
                    await conn.execute(
                        update(JOBS)
                        .where(JOBS.c.id.in_(list(self._inflight)), JOBS.c.status == "running")
                        .values(locked_until=utcnow() + timedelta(seconds=self.lease_seconds))
                    )
            except Exception as exc:
                log.warning("job lease renewal failed", error=str(exc)[:200])

    async def ping(self) -> None:
        async with self.db.engine.connect() as conn:
            await conn.execute(select(JOBS.c.id).limit(1))
