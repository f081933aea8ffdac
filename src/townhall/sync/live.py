"""Live fan-out: one feed per stream per process reads new events once and hands them out.

Pub/sub messages are only wake-ups; the event table is the truth. A feed always reads
`seq > last_seq` from the database, so a lost announcement (pub/sub gap, another process's
write) delays an event but never drops it. Each follower tracks its own position, fills any
hole from the database and, when it fell behind its queue (slow consumer), catches up from
the database as well (a snapshot reset when too far behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog

from townhall.core.deps import Principal
from townhall.core.platform import Platform
from townhall.sync.service import Access, SyncService, channel_of, event_dict

log = structlog.get_logger(__name__)

FEED_BATCH = 500
FEED_RETRY_MIN_SECONDS = 0.05
FEED_RETRY_MAX_SECONDS = 5.0
_HUBS: weakref.WeakSet[SyncHub] = weakref.WeakSet()


def poke_local(slug: str, seq: int) -> None:
    """Wake this process's feed of `slug` (called after a local commit)."""
    for hub in list(_HUBS):
        hub.poke(slug, seq)


@dataclass(frozen=True)
class WireEvent:
    """An event encoded once for every subscriber."""

    seq: int
    data: dict[str, Any]
    text: str


@dataclass(frozen=True)
class Item:
    """What a follower yields: a snapshot reset, an event, or a heartbeat."""

    kind: str  # "snapshot" | "event" | "ping"
    seq: int = 0
    text: str = ""
    data: dict[str, Any] | None = None


class Follower:
    """One subscriber's bounded queue of event batches; overflow marks it lagging."""

    def __init__(self, feed: StreamFeed, maxsize: int) -> None:
        self.feed = feed
        self.queue: asyncio.Queue[list[WireEvent]] = asyncio.Queue(maxsize=max(1, maxsize))
        self.lagging = False

    def deliver(self, batch: list[WireEvent]) -> None:
        if self.lagging:
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            # A slow consumer: drop its queue; it re-reads the event table when it wakes.
            self.lagging = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait([])


class StreamFeed:
    """Reads a stream's new events once per process and fans them out to followers."""

    def __init__(self, hub: SyncHub, slug: str, stream_id: Any) -> None:
        self.hub = hub
        self.slug = slug
        self.stream_id = stream_id
        self.followers: set[Follower] = set()
        self.last_seq: int | None = None
        self.known_head = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.healthy = False

    def poke(self, seq: int) -> None:
        if self.last_seq is None or seq > self.last_seq:
            self.known_head = max(self.known_head, seq)
            self.wake.set()

    async def run(self) -> None:
        """Serve until cancelled; a failed read (database restart, pub/sub drop) is retried."""
        delay = FEED_RETRY_MIN_SECONDS
        while True:
            try:
                await self._serve()
            except Exception:
                log.warning("sync feed read failed; retrying", stream=self.slug, exc_info=True)
            if self.healthy:
                delay = FEED_RETRY_MIN_SECONDS  # it ran fine before this failure
            self.healthy = False
            await asyncio.sleep(delay)
            delay = min(FEED_RETRY_MAX_SECONDS, delay * 2)

    async def _serve(self) -> None:
        platform = self.hub.platform
        pubsub = platform.pubsub
        async with contextlib.AsyncExitStack() as stack:
            listener = None
            if pubsub is not None:
                sub = await stack.enter_async_context(pubsub.subscribe(channel_of(self.slug)))
                listener = asyncio.create_task(self._listen(sub))
            try:
                if self.last_seq is None:  # a restart keeps its position: nothing is skipped
                    async with platform.db.read_sessionmaker() as session:
                        self.last_seq = await SyncService(session, platform.settings).repo.head(
                            self.stream_id
                        )
                    # Events up to this head are not delivered by the feed: wake the followers
                    # so any that are behind it read them from the event table.
                    for follower in list(self.followers):
                        follower.deliver([])
                self.wake.set()
                while True:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(platform.settings.sync_poll_seconds):
                            await self.wake.wait()
                    self.wake.clear()
                    await self._drain()
                    self.healthy = True
            finally:
                if listener is not None:
                    listener.cancel()

    async def _listen(self, sub: Any) -> None:
        async for message in sub:
            if message.gap:
                self.wake.set()
            else:
                seq = message.data.get("seq")
                self.poke(seq if isinstance(seq, int) else (self.last_seq or 0) + 1)

    async def _drain(self) -> None:
        platform = self.hub.platform
        while self.followers:
            async with platform.db.read_sessionmaker() as session:
                repo = SyncService(session, platform.settings).repo
                rows = await repo.events_after(self.stream_id, self.last_seq or 0, FEED_BATCH)
            if not rows:
                return
            batch = []
            for row in rows:
                data = event_dict(row, self.slug)
                batch.append(WireEvent(row.seq, data, json.dumps({"type": "event", **data})))
            self.last_seq = batch[-1].seq
            for follower in list(self.followers):
                follower.deliver(batch)
            if len(rows) < FEED_BATCH:
                return


class SyncHub:
    """This process's feeds, started on the first follower and stopped with the last."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.feeds: dict[str, StreamFeed] = {}
        _HUBS.add(self)

    def poke(self, slug: str, seq: int) -> None:
        feed = self.feeds.get(slug)
        if feed is not None:
            feed.poke(seq)

    def join(self, slug: str, stream_id: Any) -> Follower:
        feed = self.feeds.get(slug)
        if feed is None or feed.task is None or feed.task.done():
            # A finished feed (it should only end by cancellation) would leave followers silent.
            dead = feed
            feed = self.feeds[slug] = StreamFeed(self, slug, stream_id)
            if dead is not None:
                feed.last_seq = dead.last_seq
                for orphan in dead.followers:
                    orphan.feed = feed
                    feed.followers.add(orphan)
            feed.task = asyncio.create_task(feed.run(), name=f"sync-feed:{slug}")
            feed.task.add_done_callback(_log_failure)
        follower = Follower(feed, self.platform.settings.sync_subscriber_queue)
        feed.followers.add(follower)
        return follower

    def leave(self, follower: Follower) -> None:
        feed = follower.feed
        feed.followers.discard(follower)
        if not feed.followers and self.feeds.get(feed.slug) is feed:
            del self.feeds[feed.slug]
            if feed.task is not None:
                feed.task.cancel()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sync feed failed", exc_info=task.exception())


def hub_of(platform: Platform) -> SyncHub:
    """The process's hub for this platform (one per running app)."""
    for hub in _HUBS:
        if hub.platform is platform:
            return hub
    return SyncHub(platform)


async def follow(
    platform: Platform,
    principal: Principal,
    access: Access,
    since: int,
    *,
    heartbeat: float | None = None,
) -> AsyncIterator[Item]:
    """Every event after `since`, in order and without holes, then live ones as they commit.

    Membership is re-checked at least once per heartbeat: a member removed while subscribed
    gets the AppError (404/403) from this iterator instead of further events.
    """
    every = platform.settings.realtime_heartbeat_seconds if heartbeat is None else heartbeat
    hub = hub_of(platform)
    slug = access.collection.slug
    follower = hub.join(slug, access.collection.id)
    pos = since
    checked = time.monotonic()

    async def recheck() -> None:
        nonlocal checked
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).access(principal, slug, "read")
        checked = time.monotonic()

    async def from_database() -> AsyncIterator[Item]:
        nonlocal pos
        while True:
            async with platform.db.session() as session:
                service = SyncService(session, platform.settings)
                fresh = await service.access(principal, slug, "read")  # membership may change
                result = await service.catch_up(fresh, pos)
            if result.reset:
                assert result.snapshot_seq is not None
                snap = {
                    "type": "snapshot",
                    "stream": slug,
                    "seq": result.snapshot_seq,
                    "documents": result.snapshot,
                    "reason": result.reason,
                }
                pos = result.snapshot_seq
                yield Item("snapshot", pos, json.dumps(snap), snap)
            for event in result.events:
                if event["seq"] == pos + 1:
                    pos = event["seq"]
                    yield Item("event", pos, json.dumps({"type": "event", **event}), event)
            if not result.more:
                return

    try:
        async for item in from_database():
            yield item
        while True:
            if time.monotonic() - checked >= every:
                await recheck()
            if follower.queue.empty() and (follower.feed.last_seq or 0) > pos:
                # The feed is past us with nothing queued: those events were read before we
                # joined it (a new or restarted feed), so they come from the event table.
                before = pos
                async for item in from_database():
                    yield item
                if pos > before:
                    continue
            try:
                async with asyncio.timeout(every):
                    batch = await follower.queue.get()
            except TimeoutError:
                await recheck()
                yield Item("ping")
                continue
            if follower.lagging:
                follower.lagging = False
                async for item in from_database():
                    yield item
                continue
            for wire in batch:
                if wire.seq <= pos:
                    continue
                if wire.seq > pos + 1:
                    async for item in from_database():
                        yield item
                    if wire.seq != pos + 1:
                        continue
                yield Item("event", wire.seq, wire.text, wire.data)
                pos = wire.seq
    finally:
        hub.leave(follower)
