"""Redis pub/sub: one subscriber connection per process, local fan-out, reconnect with a gap."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

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
from townhall.core.tasks import stop_tasks

log = structlog.get_logger(__name__)

_Key = tuple[str, str]  # ("c", channel) or ("p", pattern)
_GLOB = set("*?[]\\")


def build_redis_client(url: str, *, max_connections: int = 50) -> Redis[bytes]:
    """A shared client on a BlockingConnectionPool: bursts wait for a connection, never fail."""
    pool: BlockingConnectionPool[Connection] = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        # Generous: a loaded event loop can take seconds to run the connect callback.
        socket_connect_timeout=5,
        socket_timeout=5,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


async def close_redis_client(client: Redis[bytes]) -> None:
    """Close a client and its pool."""
    # types-redis predates aclose() (close() is deprecated in redis-py 5+).
    await client.aclose()  # type: ignore[attr-defined]
    await client.connection_pool.disconnect()


class RedisPubSub:
    """Redis pub/sub; subscriptions survive Redis restarts and then yield a gap message."""

    def __init__(
        self,
        url: str,
        *,
        client: Redis[bytes] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_connections: int = 50,
        subscribe_timeout: float = 5.0,
        health_interval: float = 15.0,
        backoff_base: float = 0.05,
        backoff_cap: float = 2.0,
        channel_prefix: str = "",
    ) -> None:
        if _GLOB & set(channel_prefix) or len(channel_prefix) > 64:
            raise ValueError(
                f"pub/sub channel prefix must be short and glob-free: {channel_prefix!r}"
            )
        # Redis pub/sub ignores the database number: deployments sharing a Redis need this.
        self._prefix = channel_prefix
        self._own_client = client is None
        self._client = client or build_redis_client(url, max_connections=max_connections)
        # The subscriber connection must not retry silently: a hidden reconnect would lose
        # messages without telling anyone, so every drop surfaces here and becomes a gap.
        self._sub_pool: ConnectionPool[Connection] = ConnectionPool.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=5, socket_timeout=5
        )
        self._hub = LocalHub()
        self._queue_size = queue_size
        self._subscribe_timeout = subscribe_timeout
        self._health_interval = health_interval
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._conn: Connection | None = None
        self._confirmed: set[_Key] = set()
        self._pending: dict[_Key, asyncio.Future[None]] = {}
        self._resync: set[_Key] | None = None
        self._connected_once = False
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self.reconnects = 0

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, channel: str, data: dict[str, Any]) -> None:
        """PUBLISH a JSON payload; PubSubUnavailable when Redis cannot be reached."""
        check_channel(channel)
        raw = encode_payload(channel, data)
        if self._closed:
            raise PubSubUnavailable("pub/sub is closed")
        try:
            await self._client.publish(self._prefix + channel, raw)
        except (RedisError, OSError) as exc:
            raise PubSubUnavailable(f"redis pub/sub unavailable: {exc}") from exc
        PUBLISHED.inc()

    async def ping(self) -> None:
        """Redis answers and the subscriber connection is up (when one was started)."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise PubSubUnavailable(f"redis pub/sub unavailable: {exc}") from exc
        if self._reader is not None and self._conn is None:
            raise PubSubUnavailable("redis pub/sub subscriber is reconnecting")

    # -- subscribing --------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, *names: str, queue_size: int | None = None
    ) -> AsyncIterator[Subscription]:
        """Receive messages of these channels/patterns; entered once Redis confirmed them."""
        if self._closed:
            raise PubSubUnavailable("pub/sub is closed")
        sub = Subscription(check_names(names), queue_size or self._queue_size)
        new_channels, new_patterns = self._hub.add(sub)
        try:
            self._ensure_reader()
            waits = [self._waiter(("c", n)) for n in sub.channels]
            waits += [self._waiter(("p", n)) for n in sub.patterns]
            await self._send("SUBSCRIBE", new_channels)
            await self._send("PSUBSCRIBE", new_patterns)
            futures = [f for f in waits if f is not None]
            if futures:
                _, late = await asyncio.wait(futures, timeout=self._subscribe_timeout)
                if late:
                    raise PubSubUnavailable(
                        f"redis did not confirm the subscription within {self._subscribe_timeout} s"
                    )
        except BaseException:
            await self._unsubscribe(sub)
            raise
        try:
            yield sub
        finally:
            await self._unsubscribe(sub)

    def _waiter(self, key: _Key) -> asyncio.Future[None] | None:
        if key in self._confirmed:
            return None
        future = self._pending.get(key)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._pending[key] = future
        return future

    async def _unsubscribe(self, sub: Subscription) -> None:
        gone_channels, gone_patterns = self._hub.remove(sub)
        sub.end()
        for kind, names in (("c", gone_channels), ("p", gone_patterns)):
            for name in names:
                # Forget the confirmation now: a new subscriber must wait for a fresh one.
                self._confirmed.discard((kind, name))
        with suppress(RedisError, OSError):
            await self._send("UNSUBSCRIBE", gone_channels)
            await self._send("PUNSUBSCRIBE", gone_patterns)

    async def _send(self, command: str, names: list[str]) -> None:
        conn = self._conn
        if not names or conn is None:
            return  # the reader subscribes everything the hub holds when it (re)connects
        try:
            await conn.send_command(command, *self._wire(names))
        except (RedisError, OSError) as exc:
            log.warning(
                "pubsub send failed; the reader reconnects", command=command, error=str(exc)
            )

    # -- the reader ---------------------------------------------------------------------

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._run(), name="redis-pubsub-reader")

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            conn = self._sub_pool.make_connection()
            try:
                await conn.connect()
                attempt = 0
                await self._on_connected(conn)
                await self._read_loop(conn)
            except (RedisError, OSError) as exc:
                if not self._closed:
                    log.warning("redis pub/sub connection lost; reconnecting", error=str(exc))
            finally:
                self._conn = None
                self._confirmed.clear()
                self._resync = None
                with suppress(Exception):
                    await conn.disconnect(nowait=True)
            if self._closed:
                return
            delay = min(self._backoff_cap, self._backoff_base * 2**attempt)
            attempt += 1
            await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def _on_connected(self, conn: Connection) -> None:
        channels = list(self._hub.by_channel)
        patterns = list(self._hub.by_pattern)
        if self._connected_once:
            self.reconnects += 1
            keys = {("c", c) for c in channels} | {("p", p) for p in patterns}
            self._resync = keys or None
        self._connected_once = True
        self._conn = conn
        if channels:
            await conn.send_command("SUBSCRIBE", *self._wire(channels))
        if patterns:
            await conn.send_command("PSUBSCRIBE", *self._wire(patterns))

    async def _read_loop(self, conn: Connection) -> None:
        ping_sent = False
        while not self._closed:
            # push_request: RESP push frames (pub/sub) are returned here, not to a push handler.
            response = await conn.read_response(  # type: ignore[call-arg]  # stubs predate it
                timeout=self._health_interval, push_request=True
            )
            if response is None:
                if ping_sent:
                    raise RedisError("redis did not answer PING; dropping the connection")
                await conn.send_command("PING")
                ping_sent = True
                continue
            ping_sent = False
            self._handle(response)

    def _wire(self, names: list[str]) -> list[str]:
        return [self._prefix + n for n in names]

    def _local(self, raw: bytes) -> str:
        """A channel or pattern name as subscribers know it (the deployment prefix removed)."""
        return raw.decode()[len(self._prefix) :]

    def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or not response:
            return  # PONG outside subscribed mode
        kind = response[0]
        if kind == b"message":
            self._hub.to_channel(self._local(response[1]), decode_payload(response[2]))
        elif kind == b"pmessage":
            self._hub.to_pattern(
                self._local(response[1]), self._local(response[2]), decode_payload(response[3])
            )
        elif kind in (b"subscribe", b"psubscribe"):
            key: _Key = ("c" if kind == b"subscribe" else "p", self._local(response[1]))
            self._confirmed.add(key)
            future = self._pending.pop(key, None)
            if future is not None and not future.done():
                future.set_result(None)
            self._resync_confirmed(key)

    def _resync_confirmed(self, key: _Key) -> None:
        if self._resync is None:
            return
        self._resync.discard(key)
        if not self._resync:
            # Every subscription is live again: whatever was published meanwhile is lost.
            self._resync = None
            for sub in self._hub.subscriptions():
                sub.report_gap()
            log.info("redis pub/sub resubscribed after reconnect; gap reported")

    # -- shutdown -----------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the reader, end every subscription and close the connections."""
        self._closed = True
        if self._reader is not None:
            await stop_tasks([self._reader], timeout=5.0, what="pub/sub reader")
        self._hub.end_all()
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        await self._sub_pool.disconnect()
        if self._own_client:
            await close_redis_client(self._client)

    def for_app(self, app: str) -> PubSub:
        """The channels of one app only (`<app>:...`)."""
        return AppPubSub(self, app)

    @property
    def client(self) -> Redis[bytes]:
        """The shared client used for PUBLISH (also offered to apps as platform.redis)."""
        return self._client
