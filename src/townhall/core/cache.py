"""Cache, locks and rate limits on cashews: mem:// embedded, redis:// in production."""

from __future__ import annotations

import time

from cashews import Cache

from townhall.core.errors import TooManyRequests


def build_cache(redis_url: str | None) -> Cache:
    """A cashews cache on Redis when configured, in memory otherwise."""
    cache = Cache()
    if redis_url:
        cache.setup(redis_url, client_side=False, suppress=False, socket_connect_timeout=2)
    else:
        cache.setup("mem://?size=100000")
    return cache


async def hit_rate_limit(cache: Cache, key: str, *, limit: int, window: int) -> int:
    """Count a hit in a fixed window; raise 429 with Retry-After once over `limit`."""
    bucket = int(time.time()) // window
    full_key = f"ratelimit:{key}:{bucket}"
    count = await cache.incr(full_key, expire=window)
    if count > limit:
        retry_after = window - int(time.time()) % window
        raise TooManyRequests(f"too many attempts; try again in {retry_after} s", retry_after)
    return int(count)


async def reset_rate_limit(cache: Cache, key: str, *, window: int) -> None:
    """Forget the hits of the current window (e.g. after a successful log-in)."""
    bucket = int(time.time()) // window
    await cache.delete(f"ratelimit:{key}:{bucket}")
