"""In-process pub/sub: one bounded queue per subscriber, fan-out on publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from townhall.core.pubsub.base import (
    DEFAULT_QUEUE_SIZE,
    PUBLISHED,
    AppPubSub,
    LocalHub,
    PubSub,
    PubSubUnavailable,
    Subscription,
    check_channel,
    check_names,
    decode_payload,
    encode_payload,
)


class MemoryPubSub:
    """Pub/sub inside one process (the embedded default)."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._hub = LocalHub()
        self._queue_size = queue_size
        self._closed = False

    async def publish(self, channel: str, data: dict[str, Any]) -> None:
        """Deliver to every local subscriber of the channel or a matching pattern."""
        check_channel(channel)
        # A JSON round trip gives the same contract as Redis: receivers get plain JSON values.
        payload = decode_payload(encode_payload(channel, data))
        if self._closed:
            raise PubSubUnavailable("pub/sub is closed")
        PUBLISHED.inc()
        self._hub.publish_local(channel, payload)

    @asynccontextmanager
    async def subscribe(
        self, *names: str, queue_size: int | None = None
    ) -> AsyncIterator[Subscription]:
        """Receive messages of these channels/patterns while the block runs."""
        if self._closed:
            raise PubSubUnavailable("pub/sub is closed")
        sub = Subscription(check_names(names), queue_size or self._queue_size)
        self._hub.add(sub)
        try:
            yield sub
        finally:
            self._hub.remove(sub)
            sub.end()

    async def ping(self) -> None:
        if self._closed:
            raise PubSubUnavailable("pub/sub is closed")

    async def close(self) -> None:
        self._closed = True
        self._hub.end_all()

    def for_app(self, app: str) -> PubSub:
        """The channels of one app only (`<app>:...`)."""
        return AppPubSub(self, app)
