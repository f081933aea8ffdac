"""Jobs: the broker chosen by TOWNHALL_BROKER_URL, enqueueing, the worker, schedules, sweepers."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import json
import os
import socket
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Collection
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import AsyncBroker, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from townhall.core.config import Settings
from townhall.core.db import Database, after_commit, utcnow
from townhall.core.jobs.registry import (
    DEFAULT_QUEUE,
    SWEEPERS,
    TASKS,
    JobContext,
    JobError,
    SweeperSpec,
    TaskSpec,
    UnknownTask,
    UnserializablePayload,
    get_task,
)
from townhall.core.jobs.repository import DeadLetterRepository, claim_tick, prune_ticks
from townhall.core.metrics import JOBS, JOBS_RUNNING
from townhall.core.tasks import bounded, stop_tasks

if TYPE_CHECKING:
    from townhall.core.platform import Platform

log = structlog.get_logger(__name__)

_CURRENT: contextvars.ContextVar[TaskiqMessage] = contextvars.ContextVar("townhall_job")
MAX_ERROR_CHARS = 8000
SHUTDOWN_STEP_SECONDS = 10.0


def broker_kind(url: str | None) -> str:
    """'embedded' (unset), 'rabbitmq' (amqp://) or 'redis' (redis://)."""
    if not url:
        return "embedded"
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("amqp", "amqps"):
        return "rabbitmq"
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    raise JobError(f"TOWNHALL_BROKER_URL scheme {scheme!r} is not amqp:// or redis://")


def _json_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json.loads(json.dumps(kwargs, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise UnserializablePayload(
            f"arguments of job {name!r} must be JSON values (pass ids, not objects): {exc}"
        ) from exc
    return value


class _JobsMiddleware(TaskiqMiddleware):
    """Counts, exposes the message to the job, and applies retries and dead letters."""

    def __init__(self, jobs: Jobs) -> None:
        super().__init__()
        self.jobs = jobs

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        _CURRENT.set(message)
        JOBS.labels(message.task_name, "started").inc()
        JOBS_RUNNING.inc()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        JOBS_RUNNING.dec()
        if not result.is_err:
            JOBS.labels(message.task_name, "succeeded").inc()

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        await self.jobs._failed(TASKS.get(message.task_name), message, exception)


class Jobs:
    """The job queue of one process: producer always, worker when started."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.kind = broker_kind(settings.broker_url)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._platform: Platform | None = None
        self._producer: AsyncBroker | None = None
        self._in_process: asyncio.Task[None] | None = None
        self._stop_in_process = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def embedded(self) -> bool:
        return self.kind == "embedded"

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            raise JobError("Jobs is not bound to a Platform yet")
        return self._platform

    def bind(self, platform: Platform) -> None:
        self._platform = platform

    # -- lifecycle -------------------------------------------------------------------------

    def import_task_modules(self) -> None:
        """Import every app's task modules and TOWNHALL_JOB_MODULES so @task has run."""
        from townhall.modules.registry import load_apps

        # The jobs package's own sweeper (re-sending retried dead letters) lives in service.
        names = ["townhall.core.jobs.service"]
        names += [m for app in load_apps() for m in app.task_modules]
        for name in [*names, *self.settings.job_modules]:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                # Its jobs become dead letters ("not declared") instead of blocking startup.
                log.error("task module not found", module=name)

    async def start(self) -> None:
        """Connect the producer."""
        self.import_task_modules()
        self._producer = self.make_broker(None, worker=False)
        await self._producer.startup()

    async def stop(self) -> None:
        await self.stop_in_process()
        if self._producer is not None:
            await _bounded(self._producer.shutdown(), "producer shutdown")
            self._producer = None

    def make_broker(self, queues: Collection[str] | None, *, worker: bool) -> AsyncBroker:
        """A broker for this process; `queues` limits what a worker consumes."""
        settings = self.settings
        known = queues or sorted({DEFAULT_QUEUE, *(spec.queue for spec in TASKS.values())})
        broker: AsyncBroker
        if self.kind == "embedded":
            from townhall.core.jobs.sql_broker import SqlBroker

            broker = SqlBroker(
                self.db,
                queues=queues,
                poll_seconds=settings.job_poll_seconds,
                lease_seconds=settings.job_lease_seconds,
                wake=self._wake,
            )
        elif self.kind == "rabbitmq":
            from townhall.core.jobs.rabbitmq import RabbitBroker

            broker = RabbitBroker(
                str(settings.broker_url),
                prefix=settings.job_queue_prefix,
                queues=known,
                prefetch=settings.job_concurrency,
            )
        else:
            from townhall.core.jobs.redis import RedisBroker

            broker = RedisBroker(
                str(settings.broker_url),
                prefix=settings.job_queue_prefix,
                queues=known,
                lease_seconds=settings.job_lease_seconds,
            )
        broker.is_worker_process = worker
        return broker

    async def check(self, platform: Platform) -> None:
        """Readiness: the broker answers."""
        if self._producer is None:
            raise JobError("job broker is not started")
        ping = getattr(self._producer, "ping", None)
        if ping is not None:
            await ping()

    # -- producing -------------------------------------------------------------------------

    async def enqueue(self, name: str, delay: float = 0, **kwargs: Any) -> str:
        """Send job `name` (after `delay` seconds); returns its id. Arguments must be JSON."""
        spec = get_task(name)
        return await self._send(spec, _json_kwargs(name, kwargs), attempt=1, delay=delay)

    async def _send(
        self,
        spec: TaskSpec,
        kwargs: dict[str, Any],
        *,
        attempt: int,
        delay: float,
        task_id: str | None = None,
        tick: datetime | None = None,
    ) -> str:
        if self._producer is None:
            raise JobError("the job broker is not started (use it inside build_platform)")
        labels: dict[str, Any] = {"queue_name": spec.queue, "attempt": attempt}
        if delay > 0:
            labels["delay"] = round(float(delay), 3)
        if tick is not None:
            labels["tick"] = tick.isoformat()
        if spec.timeout is not None:
            labels["timeout"] = spec.timeout
        message = TaskiqMessage(
            task_id=task_id or uuid.uuid4().hex,
            task_name=spec.name,
            labels=labels,
            args=[],
            kwargs=kwargs,
        )
        await self._producer.kick(self._producer.formatter.dumps(message))
        JOBS.labels(spec.name, "queued").inc()
        return message.task_id

    # -- failures --------------------------------------------------------------------------

    async def _failed(
        self, spec: TaskSpec | None, message: TaskiqMessage, exception: BaseException
    ) -> None:
        attempt = int(message.labels.get("attempt", 1))
        error = "".join(traceback.format_exception(exception))[-MAX_ERROR_CHARS:]
        if spec is None:
            # A job this worker has no code for: keep it as a dead letter, never drop it.
            await self._dead_letter(
                message, str(message.labels.get("queue_name", DEFAULT_QUEUE)), attempt, error
            )
            return
        if attempt < spec.policy.max_attempts:
            delay = spec.policy.delay_before(attempt + 1)
            log.info("job retry", task=spec.name, attempt=attempt, delay=round(delay, 3))
            await self._send(
                spec,
                message.kwargs,
                attempt=attempt + 1,
                delay=delay,
                task_id=message.task_id,
                tick=_tick_of(message),
            )
            JOBS.labels(spec.name, "retried").inc()
            return
        await self._dead_letter(message, spec.queue, attempt, error)
        if spec.on_dead is not None:
            try:
                await spec.on_dead(self._context(spec, message), message.kwargs, error)
            except Exception:
                log.exception("on_dead callback failed", task=spec.name)

    async def _dead_letter(
        self, message: TaskiqMessage, queue: str, attempt: int, error: str
    ) -> None:
        log.warning("job dead", task=message.task_name, attempts=attempt, error=error[-200:])
        async with self.db.session() as session:
            await DeadLetterRepository(session).add(
                task_id=message.task_id,
                task=message.task_name,
                queue=queue,
                kwargs=message.kwargs,
                error=error,
                attempts=attempt,
            )
        JOBS.labels(message.task_name, "dead").inc()

    def _context(self, spec: TaskSpec, message: TaskiqMessage) -> JobContext:
        return JobContext(
            platform=self.platform,
            task=spec.name,
            job_id=message.task_id,
            queue=spec.queue,
            attempt=int(message.labels.get("attempt", 1)),
            max_attempts=spec.policy.max_attempts,
            tick=_tick_of(message),
            labels=dict(message.labels),
        )

    # -- consuming -------------------------------------------------------------------------

    def _runner(self, spec: TaskSpec) -> Any:
        async def run(**kwargs: Any) -> None:
            await spec.fn(self._context(spec, _CURRENT.get()), **kwargs)

        run.__name__ = spec.name.replace(".", "_")
        return run

    def _find_task(self, broker: AsyncBroker) -> Any:
        """broker.find_task that also knows tasks declared after the worker started."""
        find = broker.find_task

        def find_task(name: str) -> Any:
            found = find(name)
            if found is None:
                spec = TASKS.get(name)
                broker.register_task(
                    self._runner(spec) if spec else _undeclared(name), task_name=name
                )
                found = find(name)
            return found

        return find_task

    async def run_worker(
        self,
        stop: asyncio.Event,
        queues: Collection[str] | None = None,
        *,
        schedules: bool = True,
    ) -> None:
        """Consume `queues` (default all) and run cron ticks and sweepers until `stop` is set."""
        self.import_task_modules()
        broker = self.make_broker(queues, worker=True)
        for spec in TASKS.values():
            broker.register_task(self._runner(spec), task_name=spec.name)
        broker.find_task = self._find_task(broker)  # type: ignore[method-assign]
        broker.add_middlewares(_JobsMiddleware(self))
        receiver = Receiver(
            broker,
            validate_params=False,
            max_async_tasks=self.settings.job_concurrency,
            ack_type=AcknowledgeType.WHEN_SAVED,
            wait_tasks_timeout=self.settings.job_shutdown_seconds,
        )
        log.info("job worker started", broker=self.kind, queues=sorted(queues or []) or "all")
        loops = [asyncio.create_task(receiver.listen(stop), name="jobs-receiver")]
        if schedules:
            loops.append(asyncio.create_task(self._schedule_loop(stop), name="jobs-schedules"))
        try:
            await asyncio.gather(*loops)
        finally:
            for loop in loops:
                loop.cancel()
            # Bounded: a broker that hangs while closing must not hang the process's shutdown.
            await asyncio.wait(loops, timeout=SHUTDOWN_STEP_SECONDS)
            await _bounded(broker.shutdown(), "worker broker shutdown")
            log.info("job worker stopped")

    def start_in_process(self) -> None:
        """Run the worker as a task of this process (`townhall serve`, embedded broker)."""
        if self._in_process is not None:
            return
        self._stop_in_process = asyncio.Event()
        self._in_process = asyncio.create_task(
            self.run_worker(self._stop_in_process), name="jobs-in-process"
        )

    async def stop_in_process(self) -> None:
        if self._in_process is None:
            return
        self._stop_in_process.set()
        worker, self._in_process = self._in_process, None
        done, _ = await asyncio.wait({worker}, timeout=self.settings.job_shutdown_seconds + 5)
        if not done:
            await stop_tasks([worker], timeout=SHUTDOWN_STEP_SECONDS, what="in-process job worker")
        elif not worker.cancelled() and (exc := worker.exception()) is not None:
            log.error("in-process job worker failed", error=str(exc)[:200])

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Inside `serve`: run the in-process worker when the broker is embedded."""
        if self.embedded and self.settings.worker_in_process:
            self.start_in_process()
        try:
            yield
        finally:
            await self.stop_in_process()

    # -- schedules and sweepers ------------------------------------------------------------

    async def _schedule_loop(self, stop: asyncio.Event) -> None:
        sweeping: dict[str, asyncio.Task[None]] = {}
        last_prune = datetime.min.replace(tzinfo=UTC)
        while not stop.is_set():
            now = utcnow()
            try:
                await self.run_due_schedules(now, sweeping)
                if now - last_prune > timedelta(minutes=10):
                    await prune_ticks(self.db.engine, timedelta(days=2))
                    last_prune = now
            except Exception as exc:
                log.warning("job schedule loop failed", error=str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.job_schedule_poll_seconds)
        for running in sweeping.values():
            running.cancel()

    async def run_due_schedules(
        self, now: datetime, sweeping: dict[str, asyncio.Task[None]] | None = None
    ) -> list[str]:
        """Send the cron jobs and start the sweepers due at `now` whose tick this process wins."""
        sweeping = {} if sweeping is None else sweeping
        started: list[str] = []
        for spec in [s for s in TASKS.values() if s.scheduled]:
            for tick in due_ticks(spec, now):
                if await claim_tick(self.db.engine, f"task:{spec.name}", tick, self.owner):
                    await self._send(spec, {}, attempt=1, delay=0, tick=tick)
                    started.append(spec.name)
        for sweep in SWEEPERS.values():
            running = sweeping.get(sweep.name)
            if running is not None and not running.done():
                continue
            tick = _interval_tick(sweep.interval, now)
            if await claim_tick(self.db.engine, f"sweeper:{sweep.name}", tick, self.owner):
                sweeping[sweep.name] = asyncio.create_task(self._sweep(sweep))
                started.append(sweep.name)
        return started

    async def _sweep(self, sweep: SweeperSpec) -> None:
        try:
            count = await sweep.fn(self.platform)
        except Exception:
            log.exception("sweeper failed", sweeper=sweep.name)
            return
        if count:
            log.info("sweeper re-enqueued stalled work", sweeper=sweep.name, count=count)
            JOBS.labels(sweep.name, "swept").inc(count)


async def _bounded(step: Awaitable[None], what: str) -> None:
    await bounded(step, timeout=SHUTDOWN_STEP_SECONDS, what=what)


def _undeclared(name: str) -> Any:
    async def run(**kwargs: Any) -> None:
        raise UnknownTask(f"no job named {name!r} is declared in this worker")

    return run


def due_ticks(spec: TaskSpec, now: datetime) -> list[datetime]:
    """Ticks of `spec`'s schedule that are due at `now` (the previous minute too, just after)."""
    if spec.every is not None:
        return [_interval_tick(spec.every, now)]
    import pycron  # type: ignore[import-untyped]

    minute = now.replace(second=0, microsecond=0)
    candidates = [minute]
    if now.second < 10:
        # A loop that slept across the minute boundary still fires the previous tick once.
        candidates.insert(0, minute - timedelta(minutes=1))
    return [tick for tick in candidates if pycron.is_now(str(spec.cron), tick)]


def _interval_tick(every: float, now: datetime) -> datetime:
    seconds = now.timestamp() // every * every
    return datetime.fromtimestamp(seconds, UTC)


def _tick_of(message: TaskiqMessage) -> datetime | None:
    value = message.labels.get("tick")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def enqueue_after_commit(session: AsyncSession, jobs: Jobs, name: str, **kwargs: Any) -> None:
    """Send the job once `session` commits (never for a rolled-back request)."""
    spec = get_task(name)  # fail now, inside the request, on an unknown task
    payload = _json_kwargs(name, kwargs)

    async def send() -> None:
        await jobs._send(spec, payload, attempt=1, delay=0)

    after_commit(session, send)
