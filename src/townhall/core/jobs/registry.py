"""Declaring jobs: @task, @sweeper, the retry policy and the context a job runs with."""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from townhall.core.platform import Platform

TaskFn = Callable[..., Awaitable[Any]]
DeadCallback = Callable[["JobContext", dict[str, Any], str], Awaitable[None]]
SweeperFn = Callable[["Platform"], Awaitable[int]]

NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
QUEUE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
DEFAULT_QUEUE = "default"


class JobError(Exception):
    """A job could not be declared or sent."""


class UnknownTask(JobError, LookupError):
    """No task of that name is declared in this process."""


class UnserializablePayload(JobError, ValueError):
    """Job arguments must be JSON: ids and plain values, never objects."""


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` re-runs after the first failure, waiting delay * backoff**(n-1) (+ jitter)."""

    retries: int = 3
    delay: float = 30.0
    backoff: float = 2.0
    jitter: bool = True
    max_delay: float = 3600.0

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before `attempt` (2 = the first retry)."""
        base = min(self.delay * self.backoff ** max(attempt - 2, 0), self.max_delay)
        # Jitter only lengthens the wait, so a retry never comes earlier than the policy says.
        return base + (random.uniform(0, base * 0.25) if self.jitter else 0.0)


@dataclass(frozen=True)
class TaskSpec:
    """A declared job: its function, queue, retry policy, dead-letter hook and schedule."""

    name: str
    fn: TaskFn
    queue: str
    policy: RetryPolicy
    on_dead: DeadCallback | None = None
    cron: str | None = None
    every: float | None = None
    timeout: float | None = None

    @property
    def scheduled(self) -> bool:
        return self.cron is not None or self.every is not None


@dataclass(frozen=True)
class SweeperSpec:
    """A periodic scan that re-enqueues work the database says has stalled."""

    name: str
    fn: SweeperFn
    interval: float


@dataclass
class JobContext:
    """What a running job gets besides its arguments."""

    platform: Platform
    task: str
    job_id: str
    queue: str
    attempt: int
    max_attempts: int
    # The schedule tick a cron/interval job was started for.
    tick: datetime | None = None
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


TASKS: dict[str, TaskSpec] = {}
SWEEPERS: dict[str, SweeperSpec] = {}


def task(
    name: str,
    *,
    queue: str = DEFAULT_QUEUE,
    retries: int = 3,
    retry_delay: float = 30.0,
    backoff: float = 2.0,
    jitter: bool = True,
    max_delay: float = 3600.0,
    on_dead: DeadCallback | None = None,
    cron: str | None = None,
    every: float | None = None,
    timeout: float | None = None,
) -> Callable[[TaskFn], TaskFn]:
    """Declare `async def fn(ctx: JobContext, **ids)` as job `name` ("<app>.<verb>")."""
    if not NAME.match(name):
        raise JobError(f"task name {name!r} must look like '<app>.<verb>'")
    if not QUEUE.match(queue):
        raise JobError(f"queue name {queue!r} must be lowercase letters, digits, '-' or '_'")
    if retries < 0 or retry_delay < 0 or backoff < 1:
        raise JobError("retries and retry_delay must be >= 0 and backoff >= 1")
    if cron is not None:
        _check_cron(cron)
    if every is not None and every <= 0:
        raise JobError("every must be a positive number of seconds")

    def decorate(fn: TaskFn) -> TaskFn:
        existing = TASKS.get(name)
        if existing is not None and _qualname(existing.fn) != _qualname(fn):
            raise JobError(f"task {name!r} is declared twice")
        TASKS[name] = TaskSpec(
            name=name,
            fn=fn,
            queue=queue,
            policy=RetryPolicy(retries, retry_delay, backoff, jitter, max_delay),
            on_dead=on_dead,
            cron=cron,
            every=every,
            timeout=timeout,
        )
        return fn

    return decorate


def sweeper(name: str, *, interval: float = 60.0) -> Callable[[SweeperFn], SweeperFn]:
    """Declare `async def fn(platform) -> int` run every `interval` s by one worker at a time."""
    if not NAME.match(name):
        raise JobError(f"sweeper name {name!r} must look like '<app>.<what>'")
    if interval <= 0:
        raise JobError("interval must be positive")

    def decorate(fn: SweeperFn) -> SweeperFn:
        SWEEPERS[name] = SweeperSpec(name=name, fn=fn, interval=interval)
        return fn

    return decorate


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTask(
            f"no job named {name!r} is declared (is its task module imported?)"
        ) from None


def _qualname(fn: TaskFn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _check_cron(expr: str) -> None:
    import pycron  # type: ignore[import-untyped]

    if len(expr.split()) != 5:
        raise JobError(f"cron {expr!r} needs five fields: minute hour day month weekday")
    try:
        pycron.is_now(expr)
    except Exception as exc:
        raise JobError(f"cron {expr!r} is not valid: {exc}") from exc
