"""Stopping background work without trusting a cancellation to end it.

On Python 3.11 a cancel that races a library's own timeout (redis-py's socket timeout) can be
swallowed; `await task` or `asyncio.wait_for` would then wait forever and hang a shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, timeout: float, what: str) -> None:
    """Cancel `tasks` and wait at most `timeout` seconds; the ones still running are logged."""
    running = [task for task in tasks if not task.done()]
    for task in running:
        task.cancel()
    if not running:
        return
    _done, left = await asyncio.wait(running, timeout=timeout)
    if left:
        log.warning("tasks did not stop; left behind", what=what, count=len(left))


async def bounded(step: Awaitable[Any], *, timeout: float, what: str) -> None:
    """Await `step` for at most `timeout` seconds, logging (never raising) a failure."""
    task = asyncio.ensure_future(step)
    done, _pending = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        log.warning("gave up waiting", step=what, seconds=timeout)
    elif not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("shutdown step failed", step=what, error=str(exc)[:200])
