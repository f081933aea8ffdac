"""Publish/subscribe of JSON announcements: in-process by default, Redis in production."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.config import Settings
from townhall.core.db import after_commit
from townhall.core.pubsub.base import (
    GAP,
    AppPubSub,
    ExactChannel,
    Message,
    PayloadError,
    PubSub,
    PubSubError,
    PubSubUnavailable,
    Subscription,
    check_channel,
    encode_payload,
    exact,
    is_pattern,
)
from townhall.core.pubsub.memory import MemoryPubSub
from townhall.core.pubsub.redis import RedisPubSub, build_redis_client, close_redis_client

__all__ = [
    "GAP",
    "AppPubSub",
    "ExactChannel",
    "MemoryPubSub",
    "Message",
    "PayloadError",
    "PubSub",
    "PubSubError",
    "PubSubUnavailable",
    "RedisPubSub",
    "Subscription",
    "build_pubsub",
    "build_redis_client",
    "close_redis_client",
    "exact",
    "is_pattern",
    "publish_after_commit",
]


def build_pubsub(settings: Settings, *, client: Redis[bytes] | None = None) -> PubSub:
    """Redis pub/sub when TOWNHALL_REDIS_URL is set, in-process otherwise."""
    if settings.redis_url:
        return RedisPubSub(
            settings.redis_url,
            client=client,
            queue_size=settings.pubsub_queue_size,
            max_connections=settings.redis_max_connections,
            channel_prefix=settings.pubsub_channel_prefix,
        )
    return MemoryPubSub(queue_size=settings.pubsub_queue_size)


def publish_after_commit(
    session: AsyncSession, pubsub: PubSub, channel: str, data: dict[str, Any]
) -> None:
    """Publish once the session commits; a bad payload fails now, inside the request."""
    check_channel(channel)
    encode_payload(channel, data)

    async def hook() -> None:
        await pubsub.publish(channel, data)

    after_commit(session, hook)
