"""Cache, locks and rate limits on cashews: mem:// embedded, redis:// in production."""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from cashews import Cache
from cashews.backends.interface import Backend
from cashews.backends.memory import Memory
from cashews.commands import Command
from cashews.exceptions import CacheBackendInteractionError

from townhall.core.errors import Conflict, ServiceUnavailable, TooManyRequests

T = TypeVar("T")
_MISS = object()


class CacheUnavailable(ServiceUnavailable):
    """The cache backend (Redis) cannot be reached: 503 + Retry-After if it reaches a handler."""


def _unavailable(what: str, exc: BaseException) -> CacheUnavailable:
    cause = exc.__cause__ or exc
    detail = str(cause) or type(cause).__name__
    return CacheUnavailable(f"cache unavailable (redis {what} failed: {detail})"[:300])


async def _clear_errors(call: Any, cmd: Command, backend: Backend, *args: Any, **kw: Any) -> Any:
    """cashews middleware: its bare CacheBackendInteractionError becomes CacheUnavailable."""
    try:
        return await call(*args, **kw)
    except CacheBackendInteractionError as exc:
        raise _unavailable(cmd.value, exc) from exc


def build_cache(redis_url: str | None) -> Cache:
    """A cashews cache on Redis when configured, in memory otherwise.

    While Redis is down every call raises CacheUnavailable at once (no silent misses: a
    lock or a rate limit that quietly answered "free" would be worse than a 503); the
    connection pool reconnects by itself once Redis is back.
    """
    cache = Cache()
    if redis_url:
        cache.setup(redis_url, client_side=False, suppress=False, socket_connect_timeout=2)
        cache.add_middleware(_clear_errors)
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


IP_LIMIT_FACTOR = 10  # one address may be a whole office behind NAT


async def hit_action_limit(
    cache: Cache, action: str, *, limit: int, window: int, user_id: object | None, ip: str
) -> None:
    """Count `action` per user and per client IP (10x); 429 once over; `limit` 0 is off."""
    if limit <= 0:
        return
    if user_id is not None:
        await hit_rate_limit(cache, f"{action}:user:{user_id}", limit=limit, window=window)
    await hit_rate_limit(cache, f"{action}:ip:{ip}", limit=limit * IP_LIMIT_FACTOR, window=window)


async def reset_rate_limit(cache: Cache, key: str, *, window: int) -> None:
    """Forget the hits of the current window (e.g. after a successful log-in)."""
    bucket = int(time.time()) // window
    await cache.delete(f"ratelimit:{key}:{bucket}")


# -- distributed locks -------------------------------------------------------------------

_EXTEND = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("PEXPIRE", KEYS[1], ARGV[2])
else
    return 0
end
"""


class LockHeld(Conflict):
    """Another owner holds the lock (renders as 409 if it reaches a handler)."""


def _memory_backend(cache: Cache, key: str) -> Memory | None:
    backend = cache._get_backend(key)
    return backend if isinstance(backend, Memory) else None


def _redis_client(cache: Cache, key: str) -> Any:
    """The redis.asyncio client behind a cashews Redis backend (for Lua scripts)."""
    return getattr(cache._get_backend(key), "_client")  # noqa: B009


async def _redis_call(what: str, call: Awaitable[T]) -> T:
    """A direct client call (outside cashews' middlewares) with the same clear error."""
    try:
        return await call
    except CacheBackendInteractionError as exc:
        raise _unavailable(what, exc) from exc


class Lock:
    """A lock owned by a random token: only the owner can release or extend it."""

    def __init__(self, cache: Cache, key: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("lock ttl must be positive")
        self.cache = cache
        self.key = f"lock:{key}"
        self.ttl = ttl
        self.token = secrets.token_urlsafe(16)
        self.acquired = False

    async def acquire(self, *, wait: float = 0.0, poll: float = 0.05) -> bool:
        """SET NX with expiry; retry for up to `wait` seconds; False when still held."""
        deadline = time.monotonic() + wait
        while True:
            if await self.cache.set_lock(self.key, self.token, expire=self.ttl):
                self.acquired = True
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    async def release(self) -> bool:
        """Compare-and-delete: False when the lock expired and someone else owns it now."""
        self.acquired = False
        if _memory_backend(self.cache, self.key) is not None:
            # Memory backend: no await suspends between get and delete, so this is atomic;
            # cashews' own memory unlock deletes without comparing the owner.
            if await self.cache.get(self.key) != self.token:
                return False
            return bool(await self.cache.delete(self.key))
        # Redis backend: cashews runs a GET == token -> DEL Lua script.
        return bool(await self.cache.unlock(self.key, self.token))

    async def extend(self, ttl: float | None = None) -> bool:
        """Reset the expiry to `ttl` (default: the original) if we still own the lock."""
        ttl = ttl or self.ttl
        memory = _memory_backend(self.cache, self.key)
        if memory is not None:
            if await self.cache.get(self.key) != self.token:
                return False
            await self.cache.expire(self.key, ttl)
            return True
        client = _redis_client(self.cache, self.key)
        call = client.eval(_EXTEND, 1, self.key, self.token, int(ttl * 1000))
        return bool(await _redis_call("eval", call))

    async def owned(self) -> bool:
        """Whether this token still holds the lock."""
        if _memory_backend(self.cache, self.key) is not None:
            return bool(await self.cache.get(self.key) == self.token)
        raw = await _redis_call("get", _redis_client(self.cache, self.key).get(self.key))
        return raw is not None and raw.decode() == self.token


@asynccontextmanager
async def lock(
    cache: Cache, key: str, ttl: float, *, wait: float = 0.0, poll: float = 0.05
) -> AsyncIterator[Lock]:
    """Hold `key` exclusively across processes; LockHeld when another owner has it.

    The ttl bounds how long a crashed owner blocks others; work longer than it must
    `extend()`. Release is compare-and-delete, so an expired owner never frees a new one.
    """
    held = Lock(cache, key, ttl)
    if not await held.acquire(wait=wait, poll=poll):
        raise LockHeld(f"{key!r} is locked by another owner; try again later")
    try:
        yield held
    finally:
        await held.release()


async def try_lock(cache: Cache, key: str, ttl: float) -> Lock | None:
    """Take the lock if free (caller releases), or None: for "only one of many does it"."""
    held = Lock(cache, key, ttl)
    return held if await held.acquire() else None


# -- cache-aside and invalidation ---------------------------------------------------------

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


async def cached(
    cache: Cache,
    key: str,
    loader: Callable[[], Awaitable[T]],
    *,
    ttl: float,
    tags: Collection[str] = (),
) -> T:
    """Cache-aside: return the cached value of `key`, or load, store for `ttl` s and return it.

    Name keys by prefix (e.g. `cache:links:user:{id}:page:1`) so one `invalidate_prefix`
    drops every entry derived from the same rows after a write; or list `tags` (e.g.
    `links:user:{id}`) when entries of one source do not share a prefix, and `invalidate_tag`.
    """
    hit = await cache.get(key, default=_MISS)
    if hit is not _MISS:
        return cast(T, hit)
    value = await loader()
    await cache.set(key, value, expire=ttl)
    for tag in tags:
        await _tag_key(cache, tag, key, ttl)
    return value


# SADD, then extend (never shorten) the set's expiry: it must outlive every key it lists.
_TAG_ADD = """
redis.call("SADD", KEYS[1], ARGV[2])
if redis.call("TTL", KEYS[1]) < tonumber(ARGV[1]) then
    redis.call("EXPIRE", KEYS[1], ARGV[1])
end
return 1
"""


def _tag_set(tag: str) -> str:
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"cache tag must be a non-empty string: {tag!r}")
    return f"tag:{tag}"


async def _tag_key(cache: Cache, tag: str, key: str, ttl: float) -> None:
    """Record `key` in the set of `tag` (`tag:<tag>`), kept at least as long as the key."""
    tag_set = _tag_set(tag)
    seconds = math.ceil(ttl) + 1
    if _memory_backend(cache, tag_set) is not None:
        # No await suspends between reading and setting the expiry: atomic on the loop.
        current = await cache.get_expire(tag_set)
        await cache.set_add(tag_set, key, expire=max(seconds, current))
        return
    call = _redis_client(cache, tag_set).eval(_TAG_ADD, 1, tag_set, seconds, key)
    await _redis_call("eval", call)


async def invalidate_tag(cache: Cache, tag: str) -> int:
    """Delete every key cached with `tag`; returns how many were listed under it.

    Keys are popped from the tag's set in batches (SPOP), so a key tagged meanwhile is
    either popped and deleted now or stays listed for the next invalidation.
    """
    tag_set = _tag_set(tag)
    count = 0
    while batch := list(await cache.set_pop(tag_set, 500)):
        await cache.delete_many(*batch)
        count += len(batch)
    return count


async def invalidate_prefix(cache: Cache, prefix: str) -> int:
    """Delete every key starting with `prefix` (Redis: SCAN + UNLINK, never KEYS)."""
    if not prefix:
        raise ValueError("refusing to invalidate an empty prefix (that is every key)")
    memory = _memory_backend(cache, prefix)
    if memory is not None:
        keys = [k for k in list(memory.store) if k.startswith(prefix)]
    else:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        keys = [k async for k in cache.scan(pattern, batch_size=500)]
    for start in range(0, len(keys), 500):
        await cache.delete_many(*keys[start : start + 500])
    return len(keys)
