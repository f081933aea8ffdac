"""Contract tests of core/cache (locks, cache-aside, prefix invalidation) on mem:// and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from cashews import Cache

from tests.fixtures.redis_server import RedisServer, redis_server  # noqa: F401
from tests.fixtures.services import REDIS_URL, require
from townhall.core.cache import (
    CacheUnavailable,
    Lock,
    LockHeld,
    build_cache,
    cached,
    hit_rate_limit,
    invalidate_prefix,
    invalidate_tag,
    lock,
    try_lock,
)
from townhall.core.errors import Conflict, TooManyRequests

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
async def caches(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Cache, Cache]]:
    """Two clients of one cache: separate connections on Redis, one process store in memory."""
    if request.param == "memory":
        cache = build_cache(None)
        yield cache, cache
        await cache.close()
        return
    require("Redis", REDIS_URL, 6379)
    first, second = build_cache(REDIS_URL), build_cache(REDIS_URL)
    yield first, second
    await first.close()
    await second.close()


@pytest.fixture
def cache(caches: tuple[Cache, Cache]) -> Cache:
    return caches[0]


@pytest.fixture
def ns() -> str:
    """A key namespace of this test: the shared Redis is used by other runs too."""
    return f"test{uuid.uuid4().hex[:10]}"


async def wait_until_free(cache: Cache, key: str) -> None:
    probe = Lock(cache, key, 5)
    for _ in range(200):
        if await probe.acquire():
            await probe.release()
            return
        await asyncio.sleep(0.02)
    pytest.fail("lock never expired")


async def test_lock_is_exclusive_across_clients(caches: tuple[Cache, Cache], ns: str) -> None:
    a, b = caches
    async with lock(a, f"{ns}:job", ttl=10) as held:
        assert await held.owned()
        with pytest.raises(LockHeld, match="locked by another owner"):
            async with lock(b, f"{ns}:job", ttl=10):
                pass
        assert await try_lock(b, f"{ns}:job", ttl=10) is None
    # Released on exit: the other client gets it now.
    again = await try_lock(b, f"{ns}:job", ttl=10)
    assert again is not None
    assert await again.release() is True


async def test_only_the_owner_can_release(caches: tuple[Cache, Cache], ns: str) -> None:
    a, b = caches
    owner = Lock(a, f"{ns}:k", 10)
    intruder = Lock(b, f"{ns}:k", 10)
    assert await owner.acquire()
    assert await intruder.acquire() is False
    assert await intruder.release() is False
    assert await owner.owned()
    assert await intruder.acquire() is False  # still held
    assert await owner.release() is True
    assert await intruder.acquire() is True
    await intruder.release()


async def test_an_expired_owner_never_frees_the_next_owner(
    caches: tuple[Cache, Cache], ns: str
) -> None:
    a, b = caches
    first = Lock(a, f"{ns}:k", 0.2)
    assert await first.acquire()
    await wait_until_free(b, f"{ns}:k")
    second = Lock(b, f"{ns}:k", 10)
    assert await second.acquire()
    assert await first.release() is False
    assert await first.extend(10) is False
    assert await second.owned()
    await second.release()


async def test_extend_keeps_the_lock(cache: Cache, ns: str) -> None:
    held = Lock(cache, f"{ns}:k", 0.3)
    assert await held.acquire()
    assert await held.extend(10) is True
    await asyncio.sleep(0.5)
    assert await held.owned()
    assert await Lock(cache, f"{ns}:k", 1).acquire() is False
    await held.release()


async def test_waiting_acquire_gets_the_lock_when_released(
    caches: tuple[Cache, Cache], ns: str
) -> None:
    a, b = caches
    first = Lock(a, f"{ns}:k", 10)
    assert await first.acquire()

    async def release_soon() -> None:
        await asyncio.sleep(0.1)
        await first.release()

    task = asyncio.create_task(release_soon())
    async with lock(b, f"{ns}:k", ttl=10, wait=5) as held:
        assert await held.owned()
    await task


async def test_mutual_exclusion_under_contention(caches: tuple[Cache, Cache], ns: str) -> None:
    inside = 0
    most = 0
    done = 0

    async def worker(c: Cache) -> None:
        nonlocal inside, most, done
        async with lock(c, f"{ns}:critical", ttl=10, wait=10, poll=0.005):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.005)
            inside -= 1
            done += 1

    await asyncio.gather(*(worker(caches[i % 2]) for i in range(20)))
    assert (most, done) == (1, 20)


async def test_lock_is_released_when_the_block_raises(cache: Cache, ns: str) -> None:
    with pytest.raises(RuntimeError):
        async with lock(cache, f"{ns}:k", ttl=10):
            raise RuntimeError("boom")
    assert await try_lock(cache, f"{ns}:k", ttl=10) is not None


def test_lock_held_is_a_conflict() -> None:
    assert issubclass(LockHeld, Conflict)
    assert LockHeld("x").status_code == 409
    with pytest.raises(ValueError, match="ttl"):
        Lock(build_cache(None), "k", 0)


async def test_cache_aside_loads_once(cache: Cache, ns: str) -> None:
    calls = 0

    async def load() -> dict[str, object]:
        nonlocal calls
        calls += 1
        return {"links": [1, 2], "n": calls}

    key = f"{ns}:cache:links:user:1:page:1"
    first = await cached(cache, key, load, ttl=60)
    second = await cached(cache, key, load, ttl=60)
    assert first == second == {"links": [1, 2], "n": 1}
    assert calls == 1
    await invalidate_prefix(cache, f"{ns}:cache:links:user:1:")
    assert (await cached(cache, key, load, ttl=60))["n"] == 2


async def test_invalidate_prefix_deletes_only_that_prefix(cache: Cache, ns: str) -> None:
    keys = {
        f"{ns}:cache:links:user:1:page:1": True,
        f"{ns}:cache:links:user:1:tags": True,
        f"{ns}:cache:links:user:10:page:1": False,  # a longer id must survive
        f"{ns}:cache:links:user:1x:page:1": False,
        f"{ns}:cache:links:user:2:page:1": False,
    }
    for key in keys:
        await cache.set(key, "v", expire=60)
    assert await invalidate_prefix(cache, f"{ns}:cache:links:user:1:") == 2
    for key, deleted in keys.items():
        assert (await cache.get(key) is None) is deleted, key


async def test_invalidate_prefix_treats_glob_and_regex_characters_literally(
    cache: Cache, ns: str
) -> None:
    await cache.set(f"{ns}:u:[1]:a", "v", expire=60)
    await cache.set(f"{ns}:u:1:a", "v", expire=60)
    await cache.set(f"{ns}:u.*:a", "v", expire=60)
    await cache.set(f"{ns}:uxx:a", "v", expire=60)
    assert await invalidate_prefix(cache, f"{ns}:u:[1]:") == 1
    assert await invalidate_prefix(cache, f"{ns}:u.*") == 1
    assert await cache.get(f"{ns}:u:1:a") == "v"
    assert await cache.get(f"{ns}:uxx:a") == "v"
    with pytest.raises(ValueError, match="empty prefix"):
        await invalidate_prefix(cache, "")


async def test_invalidate_prefix_pages_through_many_keys(cache: Cache, ns: str) -> None:
    await cache.set_many({f"{ns}:many:{i}": i for i in range(1200)}, expire=60)
    await cache.set(f"{ns}:other", 1, expire=60)
    assert await invalidate_prefix(cache, f"{ns}:many:") == 1200
    assert await invalidate_prefix(cache, f"{ns}:many:") == 0
    assert await cache.get(f"{ns}:other") == 1


async def test_invalidate_tag_deletes_every_key_cached_with_it(
    caches: tuple[Cache, Cache], ns: str
) -> None:
    a, b = caches
    loads: list[str] = []

    def loader(name: str) -> Callable[[], Awaitable[str]]:
        async def load() -> str:
            loads.append(name)
            return f"value of {name}"

        return load

    ann, bob = f"{ns}:links:user:1", f"{ns}:links:user:2"
    entries = {  # key -> tags; the keys share no prefix
        f"{ns}:page:1": [ann],
        f"{ns}:search:rust": [ann, bob],
        f"{ns}:home": [bob],
        f"{ns}:untagged": [],
    }
    for key, tags in entries.items():
        await cached(a, key, loader(key), ttl=60, tags=tags)
    assert await invalidate_tag(b, ann) == 2  # from the other client
    assert await a.get(f"{ns}:page:1") is None
    assert await a.get(f"{ns}:search:rust") is None
    assert await a.get(f"{ns}:home") == f"value of {ns}:home"
    assert await a.get(f"{ns}:untagged") == f"value of {ns}:untagged"
    assert await invalidate_tag(b, ann) == 0
    # The next read loads again (and tags again).
    loads.clear()
    await cached(a, f"{ns}:page:1", loader(f"{ns}:page:1"), ttl=60, tags=[ann])
    assert loads == [f"{ns}:page:1"]
    assert await invalidate_tag(a, ann) == 1
    with pytest.raises(ValueError, match="tag"):
        await invalidate_tag(a, "")


async def test_a_short_lived_entry_never_shortens_its_tag(cache: Cache, ns: str) -> None:
    """The tag's set must outlive its longest entry, or invalidate_tag would miss that one."""
    tag = f"{ns}:links:user:1"

    async def load() -> int:
        return 1

    await cached(cache, f"{ns}:long", load, ttl=3600, tags=[tag])
    await cached(cache, f"{ns}:short", load, ttl=1, tags=[tag])
    assert await cache.get_expire(f"tag:{tag}") > 3000
    assert await invalidate_tag(cache, tag) == 2
    assert await cache.get(f"{ns}:long") is None


async def test_rate_limit_counts_across_clients(caches: tuple[Cache, Cache], ns: str) -> None:
    a, b = caches
    assert await hit_rate_limit(a, f"{ns}:ip", limit=3, window=60) == 1
    assert await hit_rate_limit(b, f"{ns}:ip", limit=3, window=60) == 2
    assert await hit_rate_limit(a, f"{ns}:ip", limit=3, window=60) == 3
    with pytest.raises(TooManyRequests) as info:
        await hit_rate_limit(b, f"{ns}:ip", limit=3, window=60)
    assert 0 < int(info.value.headers["Retry-After"]) <= 60


@pytest.mark.redis
async def test_a_redis_outage_is_a_clear_error_and_work_resumes_after_it(
    redis_server: RedisServer,  # noqa: F811
    ns: str,
) -> None:
    cache = build_cache(redis_server.url)
    tag = f"{ns}:links:user:1"

    async def load() -> str:
        return "page"

    async def cache_aside() -> None:
        assert await cached(cache, f"{ns}:page", load, ttl=60, tags=[tag]) == "page"

    async def locking() -> None:
        async with lock(cache, f"{ns}:job", ttl=10) as held:
            assert await held.extend()

    async def rate_limit() -> None:
        assert await hit_rate_limit(cache, f"{ns}:ip", limit=100, window=60) >= 1

    async def invalidation() -> None:
        await invalidate_tag(cache, tag)
        await invalidate_prefix(cache, f"{ns}:")

    work = [cache_aside, locking, rate_limit, invalidation, cache.ping]
    try:
        for step in work:
            await step()
        held = Lock(cache, f"{ns}:held", 30)
        assert await held.acquire()

        await asyncio.to_thread(redis_server.stop)
        for step in [*work, held.extend, held.owned]:
            with pytest.raises(CacheUnavailable, match="cache unavailable") as info:
                await step()
            assert info.value.status_code == 503
            assert "Retry-After" in info.value.headers

        await asyncio.to_thread(redis_server.start)  # an empty Redis: nothing was persisted
        for step in work:
            await step()
        assert await invalidate_tag(cache, tag) == 0
        await cache_aside()
        assert await invalidate_tag(cache, tag) == 1
    finally:
        await cache.close()
