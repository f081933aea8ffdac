"""Quiz fixtures: both game stores, a unique Redis key prefix per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from tests.fixtures.services import REDIS_URL, require

from townhall.modules.quiz.store import GameStore, MemoryGameStore, RedisGameStore

SESSION_PREFIX = f"test{os.getpid()}-{uuid.uuid4().hex[:6]}:"


async def _drop_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[GameStore]:
    """Each rule test runs on the in-process store and on the Redis (Lua) store."""
    if request.param == "memory":
        yield MemoryGameStore(ttl_ms=60_000, first_bonus=100)
        return
    require("Redis", REDIS_URL, 6379)
    prefix = f"{SESSION_PREFIX}{uuid.uuid4().hex[:6]}:"
    redis_store = RedisGameStore.from_url(REDIS_URL, prefix, 60_000, 100, pool=300)
    yield redis_store
    await redis_store.close()
    await _drop_prefix(prefix)
