"""RabbitMQ broker (taskiq-aio-pika): one durable queue per townhall queue, TTL delay queues."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from aio_pika import DeliveryMode, ExchangeType, Message
from taskiq import BrokerMessage
from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_pika.exchange import Exchange
from taskiq_aio_pika.queue import Queue, QueueType


class RabbitBroker(AioPikaBroker):
    """Queues are named `<prefix><queue>.queue` (the seed's scrape.queue, tag.queue, ...).

    Delays use one classic queue per delay length whose TTL dead-letters messages back to
    their queue: per-queue TTLs expire in order, unlike per-message TTLs in one shared queue.
    Messages RabbitMQ rejects go to `<prefix>dlq.queue`; failed jobs go to `dead_letters`.
    """

    def __init__(
        self, url: str, *, prefix: str, queues: Collection[str], prefetch: int = 10
    ) -> None:
        self.prefix = prefix
        self.exchange_name = f"{prefix}townhall"
        self.dlq_name = f"{prefix}dlq.queue"
        super().__init__(
            url,
            qos=prefetch,
            exchange=Exchange(name=self.exchange_name, type=ExchangeType.DIRECT),
            task_queues=[self._queue(q) for q in queues],
            dead_letter_queue=Queue(name=self.dlq_name, type=QueueType.QUORUM),
        )
        self._declared: set[str] = {self.queue_name(q) for q in queues}

    def queue_name(self, queue: str) -> str:
        return f"{self.prefix}{queue}.queue"

    def _queue(self, queue: str) -> Queue:
        return Queue(name=self.queue_name(queue), type=QueueType.QUORUM)

    async def _ensure_queue(self, name: str) -> None:
        """Declare and bind a queue before the first publish to it (unroutable = lost)."""
        if name in self._declared or self.write_channel is None:
            return
        queue = await self.write_channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dlq_name,
                "x-queue-type": QueueType.QUORUM.value,
            },
        )
        await queue.bind(self.exchange_name, routing_key=name)
        self._declared.add(name)

    async def kick(self, message: BrokerMessage) -> None:
        if self.write_channel is None:
            await super().kick(message)  # raises NoStartupError
            return
        labels: dict[str, Any] = message.labels
        target = self.queue_name(str(labels.get("queue_name", "default")))
        await self._ensure_queue(target)
        body = Message(
            body=message.message,
            headers={
                "task_id": message.task_id,
                "task_name": message.task_name,
                **{k: v for k, v in labels.items() if isinstance(v, str | int | float | bool)},
            },
            delivery_mode=DeliveryMode.PERSISTENT,
        )
        delay = float(labels.get("delay") or 0)
        if delay <= 0:
            exchange = await self.write_channel.get_exchange(self.exchange_name, ensure=False)
            await exchange.publish(body, routing_key=target)
            return
        # Round up so a message never comes back early; coarser buckets for long delays.
        step = 100 if delay < 10 else 1000
        ms = int(math.ceil(delay * 1000 / step) * step)
        delay_queue = f"{target}.delay.{ms}"
        # Declared before every publish: that resets x-expires, so the queue outlives its
        # last message (a queue expiring with messages inside would lose them).
        await self.write_channel.declare_queue(
            delay_queue,
            durable=True,
            arguments={
                "x-queue-type": QueueType.CLASSIC.value,
                "x-message-ttl": ms,
                "x-expires": ms + 60_000,
                "x-dead-letter-exchange": self.exchange_name,
                "x-dead-letter-routing-key": target,
            },
        )
        await self.write_channel.default_exchange.publish(body, routing_key=delay_queue)

    async def ping(self) -> None:
        if self.write_conn is None or self.write_conn.is_closed:
            raise ConnectionError("RabbitMQ connection is closed")
        if self.write_channel is None or self.write_channel.is_closed:
            raise ConnectionError("RabbitMQ channel is closed")
