"""A WebSocket with a bounded send queue, heartbeats, pub/sub forwarding and clean closing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketState

from townhall.core.pubsub import Message, PubSub
from townhall.core.realtime.registry import (
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_RESYNC,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    Connections,
)

log = structlog.get_logger(__name__)

Outgoing = dict[str, Any] | list[Any] | str | bytes
Incoming = str | bytes
OnMessage = Callable[[Incoming], Awaitable[None]]
Transform = Callable[[Message], Outgoing | None]

DEFAULT_QUEUE_SIZE = 256
DEFAULT_HEARTBEAT = 20.0
DEFAULT_SEND_TIMEOUT = 10.0
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
HEARTBEAT_MESSAGE: dict[str, Any] = {"type": "ping"}
_STOP = object()


class Connection:
    """One accepted WebSocket. Sends go through a bounded queue; a consumer that cannot keep
    up is closed with 4408 "resync" instead of growing memory, and reconnects to resync."""

    kind = "websocket"

    def __init__(
        self,
        websocket: WebSocket,
        *,
        registry: Connections | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        heartbeat_message: Outgoing | None = None,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.websocket = websocket
        self.registry = registry
        self._queue: asyncio.Queue[Outgoing | object] = asyncio.Queue(maxsize=max(1, queue_size))
        self.heartbeat = heartbeat
        self.heartbeat_message = (
            heartbeat_message if heartbeat_message is not None else HEARTBEAT_MESSAGE
        )
        self.send_timeout = send_timeout
        self.max_message_bytes = max_message_bytes
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finished = asyncio.Event()
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._error: Exception | None = None

    @classmethod
    def for_platform(cls, websocket: WebSocket, platform: Any, **kwargs: Any) -> Connection:
        """A connection with the platform's registry and settings (queue size, heartbeat)."""
        kwargs.setdefault("queue_size", platform.settings.realtime_send_queue)
        kwargs.setdefault("heartbeat", platform.settings.realtime_heartbeat_seconds)
        return cls(websocket, registry=platform.connections, **kwargs)

    # -- sending ------------------------------------------------------------------------

    def send_nowait(self, data: Outgoing) -> bool:
        """Queue a message; on overflow close with 4408 "resync" and return False."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            log.info("slow real-time consumer closed", queued=self._queue.qsize())
            self._close_soon(CLOSE_RESYNC, "resync")
            return False
        return True

    async def send(self, data: Outgoing) -> bool:
        """Like send_nowait, for call sites that are already async."""
        return self.send_nowait(data)

    def pending(self) -> int:
        return self._queue.qsize()

    async def _writer(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            try:
                async with asyncio.timeout(self.send_timeout):
                    await self._send_frame(item)
            except TimeoutError:
                self._close_soon(CLOSE_RESYNC, "resync")
                return
            except Exception:
                # The peer went away mid-send: nothing left to deliver to.
                self._close_soon(CLOSE_NORMAL)
                return

    async def _send_frame(self, item: object) -> None:
        if isinstance(item, bytes):
            await self.websocket.send_bytes(item)
        elif isinstance(item, str):
            await self.websocket.send_text(item)
        else:
            await self.websocket.send_text(json.dumps(item, separators=(",", ":")))

    async def _heartbeat(self) -> None:
        assert self.heartbeat is not None
        while not self.closed:
            await asyncio.sleep(self.heartbeat)
            self.send_nowait(self.heartbeat_message)

    # -- pub/sub fan-out ----------------------------------------------------------------

    def forward(
        self,
        pubsub: PubSub,
        *channels: str,
        transform: Transform | None = None,
        on_gap: Callable[[], Awaitable[None]] | None = None,
    ) -> asyncio.Future[bool]:
        """Relay messages of these channels/patterns to this socket until it closes.

        `transform` maps a Message to what is sent (None skips it); the default sends
        `{"channel": ..., "data": ...}`. A gap closes with 4408 "resync" unless `on_gap`
        handles it (e.g. by sending a fresh snapshot). The returned future becomes True once
        the subscription is live, False if the socket closed first or pub/sub was unavailable
        (then the socket is closed with 1013 "try again later").
        """
        ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def relay() -> None:
            live = False
            try:
                async with pubsub.subscribe(*channels) as sub:
                    live = True
                    ready.set_result(True)
                    async for msg in sub:
                        if msg.gap:
                            if on_gap is not None:
                                await on_gap()
                                continue
                            await self.close(CLOSE_RESYNC, "resync")
                            return
                        out = (
                            transform(msg)
                            if transform
                            else {"channel": msg.channel, "data": msg.data}
                        )
                        if out is not None and not self.send_nowait(out):
                            return
                # The backend closed (process shutdown): send the client elsewhere.
                await self.close(CLOSE_SERVICE_RESTART, "service restart")
            except Exception as exc:
                log.warning("pub/sub relay failed", error=str(exc), live=live)
                if live:
                    await self.close(CLOSE_RESYNC, "resync")
                else:
                    await self.close(CLOSE_TRY_AGAIN, "try again later")
            finally:
                if not ready.done():
                    ready.set_result(False)

        self._spawn(relay())
        return ready

    async def subscribe(
        self,
        pubsub: PubSub,
        *channels: str,
        transform: Transform | None = None,
        on_gap: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """forward() and wait until the subscription is live, so state read from the
        database afterwards misses no announcement; False when the socket is closed instead."""
        return await self.forward(pubsub, *channels, transform=transform, on_gap=on_gap)

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, on_message: OnMessage | None = None) -> None:
        """Pump sends, heartbeats and received messages until either side closes.

        Returns once closed, even if a dead peer never answers the close handshake;
        re-raises what `on_message` raised (after closing with 1011).
        """
        if self.registry is not None:
            self.registry.add(self)
        writer = self._spawn(self._writer())
        reader = self._spawn(self._reader(on_message))
        if self.heartbeat:
            self._spawn(self._heartbeat())
        try:
            await self._finished.wait()
        finally:
            self.closed = True
            tasks = [t for t in self._tasks if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            for task in (writer, reader):
                with suppress(asyncio.CancelledError, Exception):
                    await task
            if self._close_task is not None:  # bounded by send_timeout
                with suppress(asyncio.CancelledError, Exception):
                    await self._close_task
            if self.registry is not None:
                self.registry.discard(self)
        if self._error is not None:
            raise self._error

    async def _reader(self, on_message: OnMessage | None) -> None:
        try:
            while not self.closed:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    self.close_code = self.close_code or message.get("code", CLOSE_NORMAL)
                    break
                data: Incoming | None = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if len(data) > self.max_message_bytes:
                    await self.close(CLOSE_TOO_BIG, "message too big")
                    break
                if on_message is not None:
                    await on_message(data)
        except Exception as exc:
            log.exception("real-time handler failed")
            self._error = exc
            await self.close(CLOSE_INTERNAL, "internal error")
        finally:
            self.closed = True
            if not self._closing:  # a close in progress sets it once its frame is out
                self._finished.set()

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close once with `code`; queued messages not yet sent are dropped."""
        if self._closing:
            return
        self._closing = True
        self.closed = True
        self.close_code = self.close_code or code
        self.close_reason = reason
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        try:
            if self.websocket.application_state is WebSocketState.CONNECTED:
                # A peer that stopped reading never takes the close frame: do not wait forever.
                with suppress(Exception):
                    async with asyncio.timeout(self.send_timeout):
                        await self.websocket.close(code, reason)
        finally:
            self._finished.set()

    def _close_soon(self, code: int, reason: str = "") -> None:
        """Close from sync code; run() waits for it and never cancels it."""
        if self._close_task is None and not self._closing:
            self._close_task = asyncio.ensure_future(self.close(code, reason))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
