"""Redis broker (taskiq-redis streams) with delays kept in a sorted set and moved atomically."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AckableMessage, BrokerMessage
from taskiq_redis import RedisStreamBroker

from townhall.core.tasks import stop_tasks

log = structlog.get_logger(__name__)

# Move due delayed messages onto their streams; ZREM first, so exactly one mover sends each.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local item = cjson.decode(member)
    redis.call('XADD', item['stream'], '*', 'data', item['data'])
  end
end
return #due
"""

# Reset the idle time of entries this consumer still owns (XCLAIM ... JUSTID), so no other
# worker's XAUTOCLAIM takes a job that is still running here; entries owned elsewhere are left.
RENEW_OWNED = """
local renewed = 0
for i = 3, #ARGV do
  local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #owned > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""


class RedisBroker(RedisStreamBroker):
    """Streams `<prefix><queue>.queue` read by one consumer group; acked entries are deleted.

    taskiq-redis ignores the `delay` label, so delayed messages wait in the sorted set
    `<prefix>delayed` (score = due time) until a worker's mover sends them. An entry that is
    not acked within the lease is reclaimed by another worker, so the entries this worker
    holds are renewed every lease/3 while they run.
    """

    def __init__(
        self, url: str, *, prefix: str, queues: Collection[str], lease_seconds: float = 60.0
    ) -> None:
        self.prefix = prefix
        streams = [self.stream_name(q) for q in queues]
        super().__init__(
            url,
            queue_name=streams[0],
            consumer_group_name=f"{prefix}townhall",
            consumer_id="0",
            xread_block=1000,
            idle_timeout=int(lease_seconds * 1000),
            unacknowledged_lock_timeout=max(lease_seconds, 5.0),
            additional_streams=dict.fromkeys(streams[1:], ">"),
            # Without socket timeouts a send or read on a connection whose server vanished
            # waits forever; the read timeout must outlast the XREADGROUP block.
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=30,
        )
        self.delayed_key = f"{prefix}delayed"
        self.lease_seconds = lease_seconds
        self._mover: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        # stream -> entry ids delivered to this worker and not acked yet.
        self._inflight: dict[str, set[str]] = {}
        self._readers: set[asyncio.Task[None]] = set()
        self._closing = False

    def stream_name(self, queue: str) -> str:
        return f"{self.prefix}{queue}.queue"

    async def startup(self) -> None:
        await super().startup()
        if self.is_worker_process:
            self._mover = asyncio.create_task(self._move_due())
            self._renewer = asyncio.create_task(self._renew_claims())

    async def shutdown(self) -> None:
        self._closing = True
        loops = [loop for loop in (self._mover, self._renewer) if loop is not None]
        await stop_tasks(loops, timeout=2.0, what="redis broker loops")
        await super().shutdown()  # closes the pool: a reader still in a read fails and ends
        await stop_tasks(self._readers, timeout=2.0, what="redis broker readers")

    async def kick(self, message: BrokerMessage) -> None:
        labels: dict[str, Any] = message.labels
        stream = self.stream_name(str(labels.get("queue_name", "default")))
        delay = float(labels.get("delay") or 0)
        async with Redis(connection_pool=self.connection_pool) as redis:
            if delay <= 0:
                await redis.xadd(stream, {b"data": message.message})
                return
            member = json.dumps(
                {
                    "stream": stream,
                    "id": f"{message.task_id}:{labels.get('attempt', 1)}",
                    "data": message.message.decode(),
                }
            )
            await redis.zadd(self.delayed_key, {member: time.time() + delay})

    async def _move_due(self) -> None:
        while not self._closing:
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    moved = await redis.eval(MOVE_DUE, 1, self.delayed_key, time.time(), 100)  # type: ignore[no-untyped-call]
                if moved:
                    continue
            except RedisError as exc:
                log.warning("moving delayed jobs failed", error=str(exc)[:200])
                await asyncio.sleep(1.0)
            await asyncio.sleep(0.1)

    async def _renew_claims(self) -> None:
        while not self._closing:
            await asyncio.sleep(max(self.lease_seconds / 3, 0.1))
            try:
                await self.renew_claims()
            except RedisError as exc:
                log.warning("job claim renewal failed", error=str(exc)[:200])

    async def renew_claims(self) -> int:
        """Reset the idle time of every unacked entry this worker owns; returns how many."""
        renewed = 0
        async with Redis(connection_pool=self.connection_pool) as redis:
            for stream, ids in list(self._inflight.items()):
                if ids:
                    args = [self.consumer_group_name, self.consumer_name, *sorted(ids)]
                    renewed += await redis.eval(RENEW_OWNED, 1, stream, *args)  # type: ignore[no-untyped-call]
        return renewed

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        # Called once per delivered entry (new or reclaimed): from here on it is renewed.
        self._inflight.setdefault(queue_name, set()).add(id)

        async def ack() -> None:
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.xack(queue_name, self.consumer_group_name, id)  # type: ignore[no-untyped-call]
                await redis.xdel(queue_name, id)
            self._inflight.get(queue_name, set()).discard(id)

        return ack

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield what a background reader fetches, so stopping never cancels a socket read.

        taskiq stops a worker by cancelling the pending read and then waiting for it,
        shielded; on Python 3.11 a cancel racing redis-py's read timeout can be swallowed,
        and the worker then never stops. A cancelled `queue.get()` always ends at once.
        """
        queue: asyncio.Queue[AckableMessage] = asyncio.Queue(maxsize=1)
        reader = asyncio.create_task(self._read_into(queue), name="redis-broker-reader")
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                try:
                    await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not get.done():
                        get.cancel()
                if get.done() and not get.cancelled():
                    yield get.result()
                elif reader.done():
                    reader.result()  # re-raise what ended it
                    return
        finally:
            # Not awaited: a read stuck inside redis-py ends when shutdown() closes the pool.
            reader.cancel()

    async def _read_into(self, queue: asyncio.Queue[AckableMessage]) -> None:
        """Keep reading across Redis restarts (recreating the consumer group if it was lost)."""
        while not self._closing:
            try:
                async for message in super().listen():
                    await queue.put(message)
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                log.warning("redis broker listen failed; retrying", error=str(exc)[:200])
                await asyncio.sleep(1.0)
                with contextlib.suppress(RedisError, OSError):
                    await self._declare_consumer_group()

    async def ping(self) -> None:
        async with Redis(connection_pool=self.connection_pool) as redis:
            await redis.ping()
