"""Contract tests of core/pubsub on the in-process and the Redis backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from tests.fixtures.app import make_settings
from tests.fixtures.redis_server import RedisServer, redis_server  # noqa: F401
from tests.fixtures.services import REDIS_URL, require
from townhall.core.db import commit
from townhall.core.platform import build_platform
from townhall.core.pubsub import (
    MemoryPubSub,
    Message,
    PayloadError,
    PubSub,
    PubSubUnavailable,
    RedisPubSub,
    Subscription,
    exact,
    publish_after_commit,
)
from townhall.core.system import readiness

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


def make(kind: str, **kwargs: object) -> PubSub:
    if kind == "memory":
        return MemoryPubSub(**kwargs)  # type: ignore[arg-type]
    require("Redis", REDIS_URL, 6379)
    return RedisPubSub(REDIS_URL, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def pubsub(kind: str) -> AsyncIterator[PubSub]:
    ps = make(kind)
    yield ps
    await ps.close()


@pytest.fixture
def ns() -> str:
    """A channel namespace of this test: the shared Redis is used by other runs too."""
    return f"test{uuid.uuid4().hex[:10]}"


async def take(sub: Subscription, n: int, timeout: float = 5.0) -> list[Message]:
    return [await sub.get(timeout) for _ in range(n)]


def counter(direction: str) -> float:
    value = REGISTRY.get_sample_value("townhall_pubsub_messages_total", {"direction": direction})
    return value or 0.0


async def test_publish_reaches_a_subscriber(pubsub: PubSub, ns: str) -> None:
    async with pubsub.subscribe(f"{ns}:sync:stream:a") as sub:
        await pubsub.publish(f"{ns}:sync:stream:a", {"seq": 1, "text": "héllo"})
        msg = await sub.get(5)
    assert msg == Message(channel=f"{ns}:sync:stream:a", data={"seq": 1, "text": "héllo"})
    assert msg.gap is False


async def test_other_channels_are_not_delivered(pubsub: PubSub, ns: str) -> None:
    async with pubsub.subscribe(f"{ns}:a") as sub_a, pubsub.subscribe(f"{ns}:b") as sub_b:
        await pubsub.publish(f"{ns}:b", {"to": "b"})
        await pubsub.publish(f"{ns}:a", {"to": "a"})
        assert (await sub_a.get(5)).data == {"to": "a"}
        assert (await sub_b.get(5)).data == {"to": "b"}
        with pytest.raises(TimeoutError):
            await sub_a.get(0.2)


async def test_pattern_subscription(pubsub: PubSub, ns: str) -> None:
    async with pubsub.subscribe(f"{ns}:quiz:*") as sub:
        await pubsub.publish(f"{ns}:sync:x", {"n": 0})
        await pubsub.publish(f"{ns}:quiz:room1", {"n": 1})
        await pubsub.publish(f"{ns}:quiz:room2:answers", {"n": 2})
        got = await take(sub, 2)
        with pytest.raises(TimeoutError):
            await sub.get(0.2)
    assert [(m.channel, m.data["n"], m.pattern) for m in got] == [
        (f"{ns}:quiz:room1", 1, f"{ns}:quiz:*"),
        (f"{ns}:quiz:room2:answers", 2, f"{ns}:quiz:*"),
    ]


async def test_exact_names_never_widen_into_patterns(pubsub: PubSub, ns: str) -> None:
    """A topic chosen by a user (y-webrtc rooms) must not become a pattern over other topics."""
    room = exact(f"{ns}:collab:signal:*")
    async with pubsub.subscribe(room) as sub, pubsub.subscribe(f"{ns}:a?c") as literal:
        await pubsub.publish(f"{ns}:collab:signal:other-room", {"leak": True})
        await pubsub.publish(f"{ns}:abc", {"leak": True})
        await pubsub.publish(f"{ns}:collab:signal:*", {"mine": 1})
        await pubsub.publish(f"{ns}:a?c", {"mine": 2})
        assert (await sub.get(5)).data == {"mine": 1}
        assert (await literal.get(5)).data == {"mine": 2}
        with pytest.raises(TimeoutError):
            await sub.get(0.2)
        with pytest.raises(TimeoutError):
            await literal.get(0.1)


async def test_an_app_view_stays_inside_its_namespace(pubsub: PubSub, ns: str) -> None:
    link, quiz = pubsub.for_app(f"{ns}link"), pubsub.for_app(f"{ns}quiz")
    async with (
        link.subscribe("user:1", "*") as mine,
        pubsub.subscribe(f"{ns}link:user:1") as root,
        quiz.subscribe(exact("*")) as literal,
    ):
        await quiz.publish("user:1", {"leak": True})  # another app's channel of the same name
        await pubsub.publish(f"{ns}quiz:user:1", {"leak": True})
        await link.publish("user:1", {"n": 1})
        got = await take(mine, 2)  # once by channel, once by the app-wide pattern
        assert (await root.get(5)).data == {"n": 1}  # the view's names are the full names
        with pytest.raises(TimeoutError):
            await mine.get(0.2)
        with pytest.raises(TimeoutError):
            await literal.get(0.1)  # exact("*") is the literal channel, not every quiz one
    assert sorted((m.channel, m.pattern or "") for m in got) == [
        (f"{ns}link:user:1", ""),
        (f"{ns}link:user:1", f"{ns}link:*"),
    ]
    with pytest.raises(ValueError, match="app name"):
        pubsub.for_app("Link:*")
    await link.close()  # a view closes nothing: the shared backend keeps working
    await pubsub.ping()


@pytest.mark.redis
async def test_a_deployment_prefix_isolates_deployments_on_one_redis(ns: str) -> None:
    require("Redis", REDIS_URL, 6379)
    blue = RedisPubSub(REDIS_URL, channel_prefix=f"{ns}-blue:")
    green = RedisPubSub(REDIS_URL, channel_prefix=f"{ns}-green:")
    plain = RedisPubSub(REDIS_URL)
    try:
        async with (
            blue.subscribe("sync:stream:a", "quiz:*") as sub,
            plain.subscribe(f"{ns}-blue:sync:stream:a") as wire,
        ):
            await green.publish("sync:stream:a", {"from": "green"})
            await green.publish("quiz:1", {"from": "green"})
            await blue.publish("sync:stream:a", {"from": "blue"})
            await blue.publish("quiz:1", {"from": "blue"})
            got = await take(sub, 2)
            with pytest.raises(TimeoutError):
                await sub.get(0.3)
            assert (await wire.get(5)).channel == f"{ns}-blue:sync:stream:a"  # what Redis sees
        # Subscribers see the names they subscribed to, without the deployment prefix.
        assert [(m.channel, m.pattern, m.data) for m in got] == [
            ("sync:stream:a", None, {"from": "blue"}),
            ("quiz:1", "quiz:*", {"from": "blue"}),
        ]
        with pytest.raises(ValueError, match="glob"):
            RedisPubSub(REDIS_URL, channel_prefix="a*")
    finally:
        for ps in (blue, green, plain):
            await ps.close()


async def test_channels_and_patterns_in_one_subscription(pubsub: PubSub, ns: str) -> None:
    async with pubsub.subscribe(f"{ns}:link:1", f"{ns}:report:*") as sub:
        await pubsub.publish(f"{ns}:link:1", {"k": "link"})
        await pubsub.publish(f"{ns}:report:9", {"k": "report"})
        got = {m.data["k"] for m in await take(sub, 2)}
    assert got == {"link", "report"}


async def testSubscribeMany_subscribers_each_get_everything_in_order(
    pubsub: PubSub, ns: str
) -> None:
    channel = f"{ns}:fanout"
    async with SubscribeMany(pubsub, channel, 40) as subs:
        for i in range(25):
            await pubsub.publish(channel, {"i": i})
        for sub in subs:
            assert [m.data["i"] for m in await take(sub, 25)] == list(range(25))


async def test_ordering_per_channel_under_load(pubsub: PubSub, ns: str) -> None:
    async with pubsub.subscribe(f"{ns}:a", f"{ns}:b") as sub:
        for i in range(300):
            await pubsub.publish(f"{ns}:a" if i % 2 else f"{ns}:b", {"i": i})
        got = await take(sub, 300)
    for channel, parity in ((f"{ns}:a", 1), (f"{ns}:b", 0)):
        seq = [m.data["i"] for m in got if m.channel == channel]
        assert seq == [i for i in range(300) if i % 2 == parity]


async def test_leaving_the_block_ends_the_subscription(pubsub: PubSub, ns: str) -> None:
    async with pubsub.subscribe(f"{ns}:c") as stay:
        async with pubsub.subscribe(f"{ns}:c") as leave:
            pass
        await pubsub.publish(f"{ns}:c", {"n": 1})
        assert (await stay.get(5)).data == {"n": 1}
        assert [m async for m in leave] == []


async def test_unserializable_payloads_raise_a_clear_error(pubsub: PubSub, ns: str) -> None:
    with pytest.raises(PayloadError, match="not JSON-serializable"):
        await pubsub.publish(f"{ns}:x", {"when": object()})
    with pytest.raises(PayloadError, match="must be a dict"):
        await pubsub.publish(f"{ns}:x", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(PayloadError):
        await pubsub.publish(f"{ns}:x", {"nan": float("nan")})
    with pytest.raises(PayloadError, match="limit"):
        await pubsub.publish(f"{ns}:x", {"blob": "x" * (600 * 1024)})
    with pytest.raises(ValueError, match="channel"):
        await pubsub.publish("", {})
    with pytest.raises(ValueError, match="at least one"):
        async with pubsub.subscribe():
            pass


async def test_publish_after_commit_waits_for_the_commit(pubsub: PubSub, ns: str) -> None:
    session = AsyncSession()
    async with pubsub.subscribe(f"{ns}:after") as sub:
        publish_after_commit(session, pubsub, f"{ns}:after", {"id": "1"})
        with pytest.raises(PayloadError):
            publish_after_commit(session, pubsub, f"{ns}:after", {"bad": {1, 2}})
        await asyncio.sleep(0.05)
        assert sub.pending() == 0
        await commit(session)
        assert (await sub.get(5)).data == {"id": "1"}
        with pytest.raises(TimeoutError):
            await sub.get(0.2)
    await session.close()


async def test_a_full_subscriber_queue_drops_and_reports_a_gap(kind: str, ns: str) -> None:
    pubsub = make(kind)
    channel = f"{ns}:slow"
    dropped_before = counter("dropped")
    try:
        async with (
            pubsub.subscribe(channel, queue_size=5) as slow,
            pubsub.subscribe(channel) as watcher,
        ):
            for i in range(20):
                await pubsub.publish(channel, {"i": i})
            # Once the watcher saw all 20, the slow one was offered all 20 too.
            assert [m.data["i"] for m in await take(watcher, 20)] == list(range(20))
            got = [await slow.get(5) for _ in range(slow.pending())]
            assert [m.data["i"] for m in got] == list(range(5))
            assert (await slow.get(5)).gap is True  # what was dropped is announced
            await pubsub.publish(channel, {"i": 20})
            assert (await slow.get(5)).data == {"i": 20}
    finally:
        await pubsub.close()
    assert counter("dropped") - dropped_before == 15


async def test_messages_are_counted_in_metrics(pubsub: PubSub, ns: str) -> None:
    published, delivered = counter("published"), counter("delivered")
    async with pubsub.subscribe(f"{ns}:m") as a, pubsub.subscribe(f"{ns}:*") as b:
        await pubsub.publish(f"{ns}:m", {})
        await a.get(5)
        await b.get(5)
    assert counter("published") - published == 1
    assert counter("delivered") - delivered == 2


async def test_close_ends_subscriptions_and_refuses_publish(kind: str, ns: str) -> None:
    pubsub = make(kind)
    await pubsub.ping()
    async with pubsub.subscribe(f"{ns}:z") as sub:
        await pubsub.close()
        assert [m async for m in sub] == []
    with pytest.raises(PubSubUnavailable):
        await pubsub.publish(f"{ns}:z", {})
    with pytest.raises(PubSubUnavailable):
        await pubsub.ping()


@pytest.mark.redis
async def test_foreign_non_json_payloads_do_not_break_the_reader(ns: str) -> None:
    require("Redis", REDIS_URL, 6379)
    pubsub = RedisPubSub(REDIS_URL)
    try:
        async with pubsub.subscribe(f"{ns}:raw") as sub:
            await pubsub.client.publish(f"{ns}:raw", b"not json")
            await pubsub.client.publish(f"{ns}:raw", b"[1, 2]")
            await pubsub.publish(f"{ns}:raw", {"ok": True})
            got = [m.data for m in await take(sub, 3)]
        assert got == [{"raw": "not json"}, {"value": [1, 2]}, {"ok": True}]
    finally:
        await pubsub.close()


@pytest.mark.redis
@pytest.mark.slow
async def test_subscriber_survives_a_redis_restart_and_reports_a_gap(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    pubsub = RedisPubSub(redis_server.url, backoff_base=0.02, backoff_cap=0.3)
    try:
        async with pubsub.subscribe("sync:stream:abc", "quiz:*") as sub:
            await pubsub.publish("sync:stream:abc", {"seq": 1})
            assert (await sub.get(5)).data == {"seq": 1}

            await asyncio.to_thread(redis_server.stop)
            with pytest.raises(PubSubUnavailable):
                await pubsub.publish("sync:stream:abc", {"seq": 2})  # lost: Redis is down
            with pytest.raises(PubSubUnavailable):
                await pubsub.ping()
            await asyncio.to_thread(redis_server.start)

            gap = await sub.get(15)
            assert gap.gap is True
            await pubsub.ping()
            await pubsub.publish("sync:stream:abc", {"seq": 3})
            await pubsub.publish("quiz:room7", {"q": 1})
            after = await take(sub, 2)
            assert [m.data for m in after] == [{"seq": 3}, {"q": 1}]
            assert not any(m.gap for m in after)
        assert pubsub.reconnects >= 1
    finally:
        await pubsub.close()


@pytest.mark.redis
@pytest.mark.slow
async def test_subscribe_while_redis_is_down_fails_clearly(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    pubsub = RedisPubSub(redis_server.url, subscribe_timeout=0.5, backoff_cap=0.2)
    try:
        await asyncio.to_thread(redis_server.stop)
        with pytest.raises(PubSubUnavailable, match="confirm"):
            async with pubsub.subscribe("link:down"):
                pass
        await asyncio.to_thread(redis_server.start)
        for _ in range(50):  # the reader reconnects by itself with backoff
            try:
                async with pubsub.subscribe("link:up") as sub:
                    await pubsub.publish("link:up", {"ok": 1})
                    assert (await sub.get(5)).data == {"ok": 1}
                    break
            except PubSubUnavailable:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("subscription never recovered after Redis came back")
    finally:
        await pubsub.close()


async def test_platform_has_pubsub_and_readiness_reports_it(
    client: httpx.AsyncClient, platform: object
) -> None:
    response = await client.get("/readyz")
    assert response.json()["checks"]["pubsub"] == "ok"
    pubsub = platform.pubsub  # type: ignore[attr-defined]
    async with pubsub.subscribe("test:platform") as sub:
        await pubsub.publish("test:platform", {"up": True})
        assert (await sub.get(5)).data == {"up": True}


class SubscribeMany:
    """Enter `n` subscriptions of one channel at once."""

    def __init__(self, pubsub: PubSub, channel: str, n: int) -> None:
        self._cms = [pubsub.subscribe(channel) for _ in range(n)]

    async def __aenter__(self) -> list[Subscription]:
        return [await cm.__aenter__() for cm in self._cms]

    async def __aexit__(self, *exc: object) -> None:
        for cm in reversed(self._cms):
            await cm.__aexit__(None, None, None)


@pytest.mark.redis
async def test_messages_cross_between_two_processes_through_redis(ns: str) -> None:
    require("Redis", REDIS_URL, 6379)
    publisher, subscriber = RedisPubSub(REDIS_URL), RedisPubSub(REDIS_URL)
    try:
        async with subscriber.subscribe(f"{ns}:quiz:*") as sub:
            for i in range(50):
                await publisher.publish(f"{ns}:quiz:room{i % 3}", {"i": i})
            got = await take(sub, 50)
        assert [m.data["i"] for m in got] == list(range(50))
    finally:
        await publisher.close()
        await subscriber.close()


@pytest.mark.redis
async def test_platform_uses_redis_when_configured(
    tmp_path: Path, sqlite_database_url: str, ns: str
) -> None:
    require("Redis", REDIS_URL, 6379)
    settings = make_settings(tmp_path, database_url=sqlite_database_url, redis_url=REDIS_URL)
    async with build_platform(settings) as platform:
        assert isinstance(platform.pubsub, RedisPubSub)
        assert platform.redis is not None
        assert platform.redis is platform.pubsub.client  # one pool for PUBLISH and apps
        assert await platform.redis.set(f"{ns}:nx", "1", nx=True, ex=10)
        assert not await platform.redis.set(f"{ns}:nx", "2", nx=True, ex=10)
        assert (await readiness(platform))["pubsub"] == "ok"
