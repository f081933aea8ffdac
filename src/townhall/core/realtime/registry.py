"""The open real-time connections of one process, so shutdown can drain them."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import Counter
from collections.abc import Callable, MutableMapping
from types import FrameType
from typing import Any, Protocol

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from townhall.core.metrics import OPEN_CONNECTIONS

log = structlog.get_logger(__name__)

# Close codes shared by every real-time endpoint (4xxx are application codes).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RESYNC = 4408  # the client fell behind or missed messages: reconnect and resync

CLAIMS_KEY = "townhall.connection_claims"  # the users a scope holds a connection slot for


class Closable(Protocol):
    kind: str

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None: ...


class Connections:
    """Registry of open WebSocket/SSE connections; counts them in OPEN_CONNECTIONS."""

    def __init__(self) -> None:
        self._open: set[Closable] = set()
        self._empty = asyncio.Event()
        self._empty.set()
        self.draining = False
        self._drain_task: asyncio.Task[None] | None = None
        self._per_user: Counter[str] = Counter()

    def add(self, conn: Closable) -> None:
        if conn in self._open:
            return
        self._open.add(conn)
        self._empty.clear()
        OPEN_CONNECTIONS.labels(kind=conn.kind).inc()

    def discard(self, conn: Closable) -> None:
        if conn not in self._open:
            return
        self._open.discard(conn)
        OPEN_CONNECTIONS.labels(kind=conn.kind).dec()
        if not self._open:
            self._empty.set()

    def claim(self, scope: MutableMapping[str, Any], user_id: object, limit: int) -> bool:
        """Hold one of `user_id`'s `limit` slots until the scope ends; False when all are taken."""
        key = str(user_id)
        if limit > 0 and self._per_user[key] >= limit:
            return False
        self._per_user[key] += 1
        scope.setdefault(CLAIMS_KEY, []).append((self, key))
        return True

    def release_slot(self, key: str) -> None:
        self._per_user[key] -= 1
        if self._per_user[key] <= 0:
            del self._per_user[key]

    def held_by(self, user_id: object) -> int:
        return self._per_user[str(user_id)]

    def __len__(self) -> int:
        return len(self._open)

    def count(self, kind: str) -> int:
        return sum(1 for c in self._open if c.kind == kind)

    async def drain(self, timeout: float = 5.0) -> None:
        """Refuse new connections and close open ones with 1012 so clients reconnect elsewhere."""
        self.draining = True
        if not self._open:
            return
        log.info("draining real-time connections", open=len(self._open))
        closes = [
            asyncio.ensure_future(c.close(CLOSE_SERVICE_RESTART, "service restart"))
            for c in list(self._open)
        ]
        try:
            # Bounded as a whole: a peer that never takes its close frame cannot stall shutdown.
            await asyncio.wait_for(self._empty.wait(), timeout)
        except TimeoutError:
            log.warning("real-time connections still open after drain", open=len(self._open))
            for conn in list(self._open):
                self.discard(conn)
        finally:
            for task in closes:
                task.cancel()
            await asyncio.gather(*closes, return_exceptions=True)

    def install_signal_drain(self) -> Callable[[], None]:
        """Start draining on SIGTERM/SIGINT, then call the previous handler; returns an undo.

        uvicorn waits for open connections *before* the lifespan shutdown runs, so an SSE
        stream would hold shutdown until the graceful timeout cancels it; draining on the
        signal ends streams and closes sockets (1012) while uvicorn waits.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {}

        def start_drain() -> None:
            if self._drain_task is None and not self.draining:
                self._drain_task = loop.create_task(self.drain())

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(start_drain)
            prev = previous.get(signum)
            if callable(prev):
                prev(signum, frame)
            elif prev == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)

        def undo() -> None:
            for sig, prev in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, prev)

        return undo


class ConnectionSlotsMiddleware:
    """Releases the per-user connection slots a WebSocket or SSE call claimed, however it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            for registry, key in scope.pop(CLAIMS_KEY, []):
                registry.release_slot(key)
