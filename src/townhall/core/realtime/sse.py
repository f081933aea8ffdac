"""Server-Sent Events: framing, heartbeats, Last-Event-ID, no buffering by proxies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import StreamingResponse

from townhall.core.realtime.registry import CLOSE_NORMAL, Connections

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: stream each event as it is written
}
DEFAULT_HEARTBEAT = 15.0
DEFAULT_QUEUE_SIZE = 256  # as TOWNHALL_REALTIME_SEND_QUEUE: events waiting for a slow client
RESYNC_EVENT = "resync"
_END = object()


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One SSE event: `data` is JSON-encoded unless it is a str."""

    data: Any
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None  # reconnection delay hint in ms


def _clean(value: str, field: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"SSE {field} must not contain line breaks")
    return value


def format_event(
    data: Any, *, event: str | None = None, id: str | int | None = None, retry: int | None = None
) -> bytes:
    """Frame one event: `id:`, `event:`, `retry:`, one `data:` line per line, blank line."""
    lines: list[str] = []
    if id is not None:
        lines.append(f"id: {_clean(str(id), 'id')}")
    if event is not None:
        lines.append(f"event: {_clean(event, 'event')}")
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    lines.extend(f"data: {line}" for line in text.replace("\r\n", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def format_comment(text: str = "") -> bytes:
    """A comment line: ignored by EventSource, keeps proxies and idle timers alive."""
    return f": {_clean(text, 'comment')}\n\n".encode()


def last_event_id(conn: HTTPConnection) -> str | None:
    """The id a reconnecting EventSource resumes after (header, or `?lastEventId=`)."""
    value = conn.headers.get("last-event-id") or conn.query_params.get("lastEventId")
    if value is None:
        return None
    value = value.strip()
    return value[:200] or None


class SSEStream:
    """The lifetime of one SSE response: registered for drain, counted as kind "sse"."""

    kind = "sse"

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        self.close_code = code
        self.closed.set()


class EventSourceResponse(StreamingResponse):
    """Stream ServerEvents (or plain dicts) as text/event-stream with heartbeat comments.

    The stream ends when the iterator ends, the client leaves, or the registry drains
    (the client's EventSource then reconnects elsewhere with Last-Event-ID). A client that
    falls `queue_size` events behind gets `event: resync` and the stream ends: it reconnects
    and reloads its state instead of the server buffering without bound.
    """

    def __init__(
        self,
        events: AsyncIterable[ServerEvent | dict[str, Any] | str],
        *,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        retry: int | None = None,
        registry: Connections | None = None,
        headers: dict[str, str] | None = None,
        status_code: int = 200,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.stream = SSEStream()
        self._queue_size = queue_size
        self._events = events
        self._heartbeat = heartbeat
        self._retry = retry
        self._registry = registry
        super().__init__(
            self._body(),
            status_code=status_code,
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **(headers or {})},
        )

    async def _body(self) -> AsyncIterator[bytes]:
        # Unbounded as an asyncio.Queue so _END always fits; the pump enforces the bound.
        queue: asyncio.Queue[object] = asyncio.Queue()
        overflowed = asyncio.Event()

        async def pump() -> None:
            try:
                async for item in self._events:
                    if queue.qsize() >= self._queue_size:
                        overflowed.set()  # never wait for a slow client: it resyncs instead
                        return
                    queue.put_nowait(item)
            finally:
                if not overflowed.is_set():
                    queue.put_nowait(_END)
                # Let go of the source now (e.g. its pub/sub subscription), not at GC.
                aclose = getattr(self._events, "aclose", None)
                if aclose is not None:
                    with suppress(Exception):
                        await aclose()

        if self._registry is not None:
            self._registry.add(self.stream)
        task = asyncio.create_task(pump())
        closed = asyncio.create_task(self.stream.closed.wait())
        overflow = asyncio.create_task(overflowed.wait())
        try:
            if self._retry is not None:
                yield f"retry: {int(self._retry)}\n\n".encode()
            else:
                yield format_comment("open")  # flushes headers at once through proxies
            while True:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {getter, closed, overflow},
                    timeout=self._heartbeat,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if overflow in done:
                    getter.cancel()
                    yield format_event({"reason": "slow consumer"}, event=RESYNC_EVENT)
                    return
                if getter not in done:
                    getter.cancel()
                    if closed in done:
                        return
                    yield format_comment("ping")
                    continue
                item = getter.result()
                if item is _END:
                    await task  # re-raises what broke the event iterator
                    return
                yield _encode(item)
        finally:
            task.cancel()
            closed.cancel()
            overflow.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
            if self._registry is not None:
                self._registry.discard(self.stream)


def _encode(item: object) -> bytes:
    if isinstance(item, ServerEvent):
        return format_event(item.data, event=item.event, id=item.id, retry=item.retry)
    return format_event(item)
