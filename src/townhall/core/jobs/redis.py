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


class RedisBroker(RedisStreamBroker):
    """Streams `<prefix><queue>.queue` read by one consumer group; acked entries are deleted.

    taskiq-redis ignores the `delay` label, so delayed messages wait in the sorted set
    `<prefix>delayed` (score = due time) until a worker's mover sends them.
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
        )
        self.delayed_key = f"{prefix}delayed"
        self._mover: asyncio.Task[None] | None = None

    def stream_name(self, queue: str) -> str:
        return f"{self.prefix}{queue}.queue"

    async def startup(self) -> None:
        await super().startup()
        if self.is_worker_process:
            self._mover = asyncio.create_task(self._move_due())

    async def shutdown(self) -> None:
        if self._mover is not None:
            self._mover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._mover
        await super().shutdown()

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
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    moved = await redis.eval(MOVE_DUE, 1, self.delayed_key, time.time(), 100)  # type: ignore[no-untyped-call]
                if moved:
                    continue
            except RedisError as exc:
                log.warning("moving delayed jobs failed", error=str(exc)[:200])
                await asyncio.sleep(1.0)
            await asyncio.sleep(0.1)

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.xack(queue_name, self.consumer_group_name, id)  # type: ignore[no-untyped-call]
                await redis.xdel(queue_name, id)

        return ack

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Keep listening across Redis restarts (recreating the consumer group if it was lost)."""
        while True:
            try:
                async for message in super().listen():
                    yield message
            except (RedisError, OSError) as exc:
                log.warning("redis broker listen failed; retrying", error=str(exc)[:200])
                await asyncio.sleep(1.0)
                with contextlib.suppress(RedisError, OSError):
                    await self._declare_consumer_group()

    async def ping(self) -> None:
        async with Redis(connection_pool=self.connection_pool) as redis:
            await redis.ping()
