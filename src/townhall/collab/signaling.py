"""The y-webrtc signaling relay, with auth, per-topic ACLs, limits and cross-process topics.

Topics name documents: `townhall:<service>:<doc id>` (e.g. `townhall:doc:3f2a...`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger(__name__)

TOPIC_PREFIX = "townhall:"

SendJson = Callable[[dict[str, Any]], Awaitable[None]]


def parse_topic(topic: object) -> tuple[str, str] | None:
    """`townhall:<service>:<doc id>` -> (service, doc id); anything else -> None."""
    if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIX):
        return None
    service, sep, doc_id = topic[len(TOPIC_PREFIX) :].partition(":")
    if not sep or not service or not doc_id:
        return None
    return service, doc_id


def parse_message(raw: str) -> dict[str, Any] | None:
    """A signaling frame as a JSON object; None for anything else (ignored, as y-webrtc does)."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        return None
    return message if isinstance(message, dict) else None


class RateLimiter:
    """A token bucket: `rate` messages per second, bursts up to twice that."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = 2 * rate
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(eq=False)
class SignalingConn:
    """One signaling WebSocket."""

    send: SendJson
    topics: set[str] = field(default_factory=set)


class SignalingHub:
    """Topic -> local subscribers; topics with local subscribers listen on pub/sub."""

    def __init__(self, pubsub: Any | None) -> None:
        self.pubsub = pubsub
        self.origin = uuid.uuid4().hex
        self.topics: dict[str, set[SignalingConn]] = {}
        # topic -> other process -> its subscriber count, so `clients` counts every process.
        self.remote: dict[str, dict[str, int]] = {}
        self._relays: dict[str, asyncio.Task[None]] = {}

    @staticmethod
    def channel(topic: str) -> str:
        return f"collab:signal:{topic}"

    async def subscribe(self, conn: SignalingConn, topic: str) -> None:
        conn.topics.add(topic)
        receivers = self.topics.setdefault(topic, set())
        receivers.add(conn)
        if self.pubsub is None:
            return
        first = topic not in self._relays
        if first:
            ready = asyncio.Event()
            self._relays[topic] = asyncio.create_task(self._relay(topic, ready))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 5)
        await self._send_count(topic, ask=first)  # a new listener asks the others for theirs

    async def unsubscribe(self, conn: SignalingConn, topic: str) -> None:
        conn.topics.discard(topic)
        receivers = self.topics.get(topic)
        if receivers is not None and conn in receivers:
            receivers.discard(conn)
            if self.pubsub is not None:
                await self._send_count(topic)
            if not receivers:
                await self._drop(topic)

    async def remove(self, conn: SignalingConn) -> None:
        for topic in list(conn.topics):
            await self.unsubscribe(conn, topic)

    async def _drop(self, topic: str) -> None:
        self.topics.pop(topic, None)
        self.remote.pop(topic, None)
        task = self._relays.pop(topic, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Relay verbatim to every local subscriber (sender included) and other processes."""
        await self._deliver(topic, message)
        if self.pubsub is not None:
            try:
                await self.pubsub.publish(self.channel(topic), {"o": self.origin, "m": message})
            except Exception:
                log.warning("signaling relay publish failed", topic=topic)

    async def _deliver(self, topic: str, message: dict[str, Any]) -> None:
        receivers = self.topics.get(topic)
        if not receivers:
            return
        out = dict(message)
        out["clients"] = len(receivers) + sum(self.remote.get(topic, {}).values())
        for conn in list(receivers):
            try:
                await conn.send(out)
            except Exception:
                receivers.discard(conn)

    async def _relay(self, topic: str, ready: asyncio.Event) -> None:
        assert self.pubsub is not None
        try:
            async with self.pubsub.subscribe(self.channel(topic)) as sub:
                ready.set()
                async for msg in sub:
                    data = msg.data
                    if msg.gap or data.get("o") == self.origin:
                        continue  # signaling is ephemeral: peers re-announce on reconnect
                    if isinstance(data.get("m"), dict):
                        await self._deliver(topic, data["m"])
                    elif isinstance(data.get("n"), int):
                        self._count(topic, str(data.get("o")), data["n"])
                        if data.get("ask"):
                            await self._send_count(topic)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("signaling relay stopped", topic=topic)
        finally:
            ready.set()

    def _count(self, topic: str, origin: str, count: int) -> None:
        counts = self.remote.setdefault(topic, {})
        if count > 0:
            counts[origin] = count
        else:
            counts.pop(origin, None)

    async def _send_count(self, topic: str, *, ask: bool = False) -> None:
        """Tell the other processes how many subscribers this one has on `topic`."""
        assert self.pubsub is not None
        data: dict[str, Any] = {"o": self.origin, "n": len(self.topics.get(topic, ()))}
        if ask:
            data["ask"] = True
        try:
            await self.pubsub.publish(self.channel(topic), data)
        except Exception:
            log.warning("signaling count publish failed", topic=topic)

    async def close(self) -> None:
        for topic in list(self._relays):
            await self._drop(topic)
        self.topics.clear()
