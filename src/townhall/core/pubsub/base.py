"""The pub/sub contract shared by every backend: messages, subscriptions, local fan-out."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol, runtime_checkable

from townhall.core.metrics import PUBSUB_MESSAGES

DEFAULT_QUEUE_SIZE = 1000
MAX_PAYLOAD_BYTES = 512 * 1024
MAX_CHANNEL_LENGTH = 256


class PubSubError(RuntimeError):
    """Base of pub/sub errors."""


class PayloadError(PubSubError, TypeError):
    """A payload that cannot be published (not a dict, not JSON-serializable, too large)."""


class PubSubUnavailable(PubSubError):
    """The pub/sub backend cannot be reached right now."""


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery: `gap=True` means messages may have been lost, so resync from the database."""

    channel: str
    data: dict[str, Any] = field(default_factory=dict)
    gap: bool = False
    pattern: str | None = None


GAP = Message(channel="", data={}, gap=True)


class ExactChannel(str):
    """A channel subscribed literally even if it contains `*`: wrap names built from input."""

    __slots__ = ()


def exact(name: str) -> ExactChannel:
    """Mark a channel name as literal, so a user-chosen `*` can never widen a subscription."""
    return ExactChannel(name)


def is_pattern(name: str) -> bool:
    """Whether a subscription name is a pattern: it has a `*` (then `?` and `[]` glob too, as
    in Redis PSUBSCRIBE) and was not marked with exact()."""
    return "*" in name and not isinstance(name, ExactChannel)


def check_channel(name: str) -> str:
    """Refuse empty, oversized or non-string channel names with a clear error."""
    if not isinstance(name, str) or not name or len(name) > MAX_CHANNEL_LENGTH:
        raise ValueError(
            f"pub/sub channel must be a non-empty string of at most 256 chars: {name!r}"
        )
    return name


def encode_payload(channel: str, data: dict[str, Any]) -> bytes:
    """Serialize a payload to JSON bytes, or raise PayloadError naming the channel."""
    if not isinstance(data, dict):
        raise PayloadError(
            f"pub/sub payload for {channel!r} must be a dict, not {type(data).__name__}"
        )
    try:
        raw = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise PayloadError(
            f"pub/sub payload for {channel!r} is not JSON-serializable: {exc}"
        ) from exc
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            f"pub/sub payload for {channel!r} is {len(raw)} bytes; the limit is "
            f"{MAX_PAYLOAD_BYTES} (publish an announcement, keep state in the database)"
        )
    return raw


def decode_payload(raw: bytes | str) -> dict[str, Any]:
    """Parse a payload; anything that is not a JSON object is wrapped, never raised."""
    try:
        value = json.loads(raw)
    except ValueError:
        return {"raw": raw.decode(errors="replace") if isinstance(raw, bytes) else raw}
    return value if isinstance(value, dict) else {"value": value}


_CLOSED = object()
# Bound once: labels() costs more than the delivery itself on a hot fan-out path.
DELIVERED = PUBSUB_MESSAGES.labels(direction="delivered")
DROPPED = PUBSUB_MESSAGES.labels(direction="dropped")
PUBLISHED = PUBSUB_MESSAGES.labels(direction="published")


class Subscription:
    """An async iterator of Messages with a bounded queue; overflow drops and reports a gap."""

    def __init__(self, names: tuple[str, ...], maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.names = names
        self.channels = tuple(n for n in names if not is_pattern(n))
        self.patterns = tuple(n for n in names if is_pattern(n))
        self._queue: asyncio.Queue[Message | object] = asyncio.Queue(maxsize=max(2, maxsize))
        self._lost = False
        self._closed = False

    def deliver(self, message: Message) -> None:
        """Queue a message without blocking the publisher; a full queue turns into a gap."""
        if self._closed:
            return
        queue = self._queue
        if self._lost:
            if queue.qsize() >= queue.maxsize - 1:
                DROPPED.inc()
                return
            queue.put_nowait(GAP)
            self._lost = False
        if queue.full():
            self._lost = True
            DROPPED.inc()
            return
        queue.put_nowait(message)
        DELIVERED.inc()

    def report_gap(self) -> None:
        """Tell the consumer that messages may have been lost (e.g. after a reconnect)."""
        if self._closed:
            return
        if self._queue.full():
            self._lost = True
        else:
            self._queue.put_nowait(GAP)

    def end(self) -> None:
        """End iteration once the queued messages are consumed (the backend closed)."""
        if self._closed:
            return
        self._closed = True
        while self._queue.full():
            self._queue.get_nowait()
            self._lost = True
        self._queue.put_nowait(_CLOSED)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        if self._lost and self._queue.empty():
            self._lost = False
            return GAP
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # later calls end too
            raise StopAsyncIteration
        assert isinstance(item, Message)
        return item

    async def get(self, timeout: float | None = None) -> Message:
        """The next message; TimeoutError after `timeout` s, StopAsyncIteration once closed."""
        if timeout is None:
            return await self.__anext__()
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    def pending(self) -> int:
        """How many messages wait in the queue."""
        return self._queue.qsize()


class LocalHub:
    """Fan-out of one process's messages to its subscriptions, by channel and by pattern."""

    def __init__(self) -> None:
        self.by_channel: dict[str, list[Subscription]] = {}
        self.by_pattern: dict[str, list[Subscription]] = {}

    def add(self, sub: Subscription) -> tuple[list[str], list[str]]:
        """Register; returns the channels and patterns that had no subscriber before."""
        new_channels = _add(self.by_channel, sub.channels, sub)
        new_patterns = _add(self.by_pattern, sub.patterns, sub)
        return new_channels, new_patterns

    def remove(self, sub: Subscription) -> tuple[list[str], list[str]]:
        """Unregister; returns the channels and patterns that have no subscriber left."""
        gone_channels = _remove(self.by_channel, sub.channels, sub)
        gone_patterns = _remove(self.by_pattern, sub.patterns, sub)
        return gone_channels, gone_patterns

    def subscriptions(self) -> set[Subscription]:
        subs: set[Subscription] = set()
        for group in (*self.by_channel.values(), *self.by_pattern.values()):
            subs.update(group)
        return subs

    def to_channel(self, channel: str, data: dict[str, Any]) -> None:
        """Deliver to exact subscribers of `channel`."""
        for sub in self.by_channel.get(channel, ()):
            sub.deliver(Message(channel=channel, data=data))

    def to_pattern(self, pattern: str, channel: str, data: dict[str, Any]) -> None:
        """Deliver to subscribers of `pattern` (a match already decided by the broker)."""
        for sub in self.by_pattern.get(pattern, ()):
            sub.deliver(Message(channel=channel, data=data, pattern=pattern))

    def publish_local(self, channel: str, data: dict[str, Any]) -> None:
        """Deliver to exact and matching-pattern subscribers, as Redis would."""
        self.to_channel(channel, data)
        for pattern in list(self.by_pattern):
            if fnmatchcase(channel, pattern):
                self.to_pattern(pattern, channel, data)

    def end_all(self) -> None:
        for sub in self.subscriptions():
            sub.end()
        self.by_channel.clear()
        self.by_pattern.clear()


def _add(
    index: dict[str, list[Subscription]], names: tuple[str, ...], sub: Subscription
) -> list[str]:
    new = []
    for name in dict.fromkeys(names):
        group = index.setdefault(name, [])
        if not group:
            new.append(name)
        group.append(sub)
    return new


def _remove(
    index: dict[str, list[Subscription]], names: tuple[str, ...], sub: Subscription
) -> list[str]:
    gone = []
    for name in dict.fromkeys(names):
        group = index.get(name)
        if group is None or sub not in group:
            continue
        group.remove(sub)
        if not group:
            del index[name]
            gone.append(name)
    return gone


@runtime_checkable
class PubSub(Protocol):
    """Publish JSON announcements to channels; subscribe to channels or `*` patterns."""

    async def publish(self, channel: str, data: dict[str, Any]) -> None: ...

    def subscribe(
        self, *names: str, queue_size: int | None = None
    ) -> AbstractAsyncContextManager[Subscription]: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    def for_app(self, app: str) -> PubSub: ...


APP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class AppPubSub:
    """A view of a backend confined to one app's channels: `name` is sent as `<app>:<name>`.

    Subscriptions and patterns are prefixed the same way, so an app (or a pattern built in
    it) never reaches another app's channels. Messages carry the full channel name.
    """

    def __init__(self, inner: PubSub, app: str) -> None:
        if not APP_NAME.match(app):
            raise ValueError(f"pub/sub namespace must be an app name like 'link': {app!r}")
        self.inner = inner
        self.app = app
        self.prefix = f"{app}:"

    def channel(self, name: str) -> str:
        """The full channel name of `name` in this namespace (an exact() mark is kept)."""
        full = self.prefix + check_channel(name)
        return exact(full) if isinstance(name, ExactChannel) else full

    async def publish(self, channel: str, data: dict[str, Any]) -> None:
        await self.inner.publish(self.channel(channel), data)

    def subscribe(
        self, *names: str, queue_size: int | None = None
    ) -> AbstractAsyncContextManager[Subscription]:
        return self.inner.subscribe(*(self.channel(n) for n in names), queue_size=queue_size)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        """Nothing to close: the backend is shared and closed by the platform."""

    def for_app(self, app: str) -> PubSub:
        """A narrower view: `<this app>:<app>:...`."""
        return AppPubSub(self, app)


def check_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Validate subscription names; at least one is needed."""
    if not names:
        raise ValueError("subscribe() needs at least one channel or pattern")
    return tuple(check_channel(n) for n in names)
