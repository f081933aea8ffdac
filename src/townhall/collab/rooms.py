"""Yjs rooms: one server-side pycrdt Doc per open document, spanning processes via pub/sub."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pycrdt
import structlog

from townhall.collab import protocol as yp
from townhall.collab.hooks import Role, get_service
from townhall.collab.service import merge

if TYPE_CHECKING:
    from townhall.collab.service import CollabStore

log = structlog.get_logger(__name__)

# Updates bigger than this travel as "resync" announcements; receivers reload from the buffer.
MAX_RELAY_BYTES = 256 * 1024
# First wait before a room retries storing edits the buffer refused (doubling, up to 60 s).
RETRY_STORE_SECONDS = 1.0

Send = Callable[[bytes], Awaitable[None]]


@dataclass(eq=False)
class Peer:
    """One y-websocket connection in a room."""

    send: Send
    role: Role
    awareness_ids: set[int] = field(default_factory=set)


class Room:
    """A loaded document, its local peers and the awareness states seen."""

    def __init__(self, manager: RoomManager, service: str, doc_id: str) -> None:
        self.manager = manager
        self.service = service
        self.doc_id = doc_id
        self.channel = room_channel(service, doc_id)
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.peers: set[Peer] = set()
        self.awareness: dict[int, tuple[int, Any]] = {}
        self.ready = asyncio.Event()
        self.unsaved: list[bytes] = []
        self._first_unsaved = 0.0
        self._store_task: asyncio.Task[None] | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # Updates relayed from other processes are stored by their origin; if that process
        # dies before its debounced store, our unload stores the full state to be safe.
        self._relayed = False

    async def load(self) -> None:
        """Load buffer + database state and join the cross-process channel."""
        if self.manager.pubsub is not None:
            self._relay_task = asyncio.create_task(self._relay())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), 5)
        # Loaded after subscribing, so nothing published meanwhile is missed.
        await self.reload()
        self.ready.set()
        # Rooms of this document on other processes may hold edits not yet in the buffer
        # (debounced store): sync step 1 over pub/sub, answered with what we lack.
        await self._publish({"q": base64.b64encode(self.doc.get_state()).decode()})

    async def reload(self) -> None:
        store = self.manager.store
        async with store.db.sessionmaker() as session:
            state = await store.load_state(session, self.service, self.doc_id)
        if state and state != yp.EMPTY_UPDATE:
            self.doc.apply_update(state)

    # Messages from local peers.

    async def receive(self, peer: Peer, frame: bytes) -> None:
        """Handle one y-websocket frame; raises ProtocolError on malformed input."""
        message = yp.decode_message(frame)
        if message.kind == yp.MESSAGE_SYNC:
            if message.sync_type is yp.SyncType.STEP1:
                try:
                    diff = self.doc.get_update(message.payload)
                except ValueError as exc:
                    raise yp.ProtocolError(f"invalid state vector: {exc}") from exc
                await peer.send(yp.sync_step2(diff))
                return
            if peer.role != "editor":
                return  # read-only: step 2 and updates from viewers are dropped
            if message.payload == yp.EMPTY_UPDATE:
                return
            try:
                self.doc.apply_update(message.payload)
            except ValueError as exc:
                raise yp.ProtocolError(f"invalid update: {exc}") from exc
            await self._broadcast(yp.sync_update(message.payload), exclude=peer)
            self._changed(message.payload)
            await self._publish_update(message.payload)
        elif message.kind == yp.MESSAGE_AWARENESS:
            entries = yp.decode_awareness(message.payload)
            for entry in entries:
                if entry.state is None:
                    peer.awareness_ids.discard(entry.client_id)
                else:
                    peer.awareness_ids.add(entry.client_id)
            self._apply_awareness(entries)
            await self._broadcast(frame)
            await self._publish({"a": base64.b64encode(message.payload).decode()})
        elif message.kind == yp.MESSAGE_QUERY_AWARENESS:
            await peer.send(self.awareness_frame())

    def _apply_awareness(self, entries: list[yp.AwarenessEntry]) -> None:
        for entry in entries:
            known = self.awareness.get(entry.client_id)
            if known is not None and known[0] > entry.clock:
                continue
            if entry.state is None:
                self.awareness.pop(entry.client_id, None)
            else:
                self.awareness[entry.client_id] = (entry.clock, entry.state)

    def awareness_update(self) -> bytes:
        entries = [yp.AwarenessEntry(cid, clock, st) for cid, (clock, st) in self.awareness.items()]
        return yp.encode_awareness(entries)

    def awareness_frame(self) -> bytes:
        return yp.awareness_message(self.awareness_update())

    async def join(self, peer: Peer) -> None:
        """Start the sync: our step 1, then the current awareness states."""
        self.peers.add(peer)
        await peer.send(yp.sync_step1(self.doc.get_state()))
        if self.awareness:
            await peer.send(self.awareness_frame())

    async def leave(self, peer: Peer) -> None:
        self.peers.discard(peer)
        if peer.awareness_ids:
            gone = []
            for client_id in peer.awareness_ids:
                clock = self.awareness.pop(client_id, (0, None))[0]
                gone.append(yp.AwarenessEntry(client_id, clock + 1, None))
            payload = yp.encode_awareness(gone)
            await self._broadcast(yp.awareness_message(payload))
            await self._publish({"a": base64.b64encode(payload).decode()})

    async def _broadcast(self, frame: bytes, exclude: Peer | None = None) -> None:
        for other in list(self.peers):
            if other is exclude:
                continue
            try:
                await other.send(frame)
            except Exception:  # a dead socket is cleaned up by its own handler
                self.peers.discard(other)

    # Persistence: debounced store of what local peers changed.

    def _changed(self, update: bytes) -> None:
        loop = asyncio.get_running_loop()
        if not self.unsaved:
            self._first_unsaved = loop.time()
        self.unsaved.append(update)
        if self._store_task is None or self._store_task.done():
            self._store_task = asyncio.create_task(self._debounced_store())

    async def _debounced_store(self) -> None:
        settings = self.manager.store.settings
        loop = asyncio.get_running_loop()
        while self.unsaved:
            count = len(self.unsaved)
            await asyncio.sleep(settings.collab_store_debounce_seconds)
            waited = loop.time() - self._first_unsaved
            if len(self.unsaved) != count and waited < settings.collab_store_max_debounce_seconds:
                continue  # still typing: wait for a quiet moment, at most max_debounce
            await self.store()

    async def store(self) -> None:
        """Append the merged unsaved updates to the write-back buffer; then on_change."""
        if not self.unsaved:
            return
        taken = self.unsaved
        self.unsaved = []
        try:
            await self.manager.store.append(self.service, self.doc_id, merge(*taken))
        except Exception:
            log.exception("collab store failed; will retry", service=self.service)
            self.unsaved = taken + self.unsaved
            return
        hooks = get_service(self.service)
        if hooks.on_change is not None:
            try:
                await hooks.on_change(self.service, self.doc_id, self.doc)
            except Exception:
                log.exception("collab on_change hook failed", service=self.service)

    async def close(self) -> bool:
        """Store what is unsaved and stop; False (nothing stopped) when the buffer refused it."""
        if self._store_task is not None:
            self._store_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._store_task
        if self._relayed:
            self.unsaved.append(self.doc.get_update())
            self._relayed = False  # the full state is in `unsaved` now, until stored
        await self.store()
        if self.unsaved:
            return False
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
        return True

    def retry_store(self) -> None:
        """Keep storing with backoff until the buffer takes the edits; then unload if empty."""
        self._store_task = asyncio.create_task(self._retry_store())

    async def _retry_store(self) -> None:
        delay = RETRY_STORE_SECONDS
        while self.unsaved:
            await asyncio.sleep(delay)
            delay = min(2 * delay, 60.0)
            await self.store()
        self._store_task = None  # done: the unload below may run close() without cancelling us
        await self.manager.unload_if_empty(self)

    # Cross-process relay.

    async def _publish_update(self, update: bytes) -> None:
        if len(update) > MAX_RELAY_BYTES:
            # Too big for a pub/sub message: make it durable first, then announce.
            await self.store()
        await self._publish(relay_message(update))

    async def _publish(self, data: dict[str, Any]) -> None:
        await self.manager.publish(self.channel, data)

    async def _relay(self) -> None:
        pubsub = self.manager.pubsub
        assert pubsub is not None
        try:
            async with pubsub.subscribe(self.channel) as sub:
                self._subscribed.set()
                async for msg in sub:
                    try:
                        await self._on_relayed(msg.data, gap=msg.gap)
                    except Exception:
                        log.warning("bad collab relay message", channel=self.channel)
        finally:
            self._subscribed.set()

    async def _on_relayed(self, data: dict[str, Any], *, gap: bool) -> None:
        if gap or data.get("resync"):
            before = self.doc.get_state()
            await self.reload()
            diff = self.doc.get_update(before)
            if diff != yp.EMPTY_UPDATE:
                await self._broadcast(yp.sync_update(diff))
            return
        if data.get("o") == self.manager.origin:
            return
        if data.get("to", self.manager.origin) != self.manager.origin:
            return  # an answer to another process's query
        if "q" in data:
            await self._answer(base64.b64decode(data["q"]), str(data.get("o")))
        elif "u" in data:
            update = base64.b64decode(data["u"])
            self.doc.apply_update(update)
            self._relayed = True
            await self._broadcast(yp.sync_update(update))
        elif "a" in data:
            payload = base64.b64decode(data["a"])
            self._apply_awareness(yp.decode_awareness(payload))
            await self._broadcast(yp.awareness_message(payload))

    async def _answer(self, state_vector: bytes, to: str) -> None:
        """Sync step 2 over pub/sub: what a room loading elsewhere lacks of our document."""
        await self.ready.wait()
        diff = self.doc.get_update(state_vector)
        if diff == yp.EMPTY_UPDATE:
            return
        if len(diff) > MAX_RELAY_BYTES:
            await self.store()  # the answer becomes a resync: make our edits durable first
        await self._publish({**relay_message(diff), "to": to})
        if self.awareness:  # and who is here, so its peers see our peers at once
            await self._publish({"a": base64.b64encode(self.awareness_update()).decode()})

    async def apply_external(self, update: bytes) -> None:
        """An update already in the buffer (save, restore): apply, fan out, relay."""
        self.doc.apply_update(update)
        await self._broadcast(yp.sync_update(update))
        await self._publish(relay_message(update))


def room_channel(service: str, doc_id: str) -> str:
    return f"collab:room:{service}:{doc_id}"


def relay_message(update: bytes) -> dict[str, Any]:
    """The pub/sub form of an update that is already durable (buffered or stored)."""
    if len(update) > MAX_RELAY_BYTES:
        return {"resync": True}  # too big for a message: receivers reload from the buffer
    return {"u": base64.b64encode(update).decode()}


class RoomManager:
    """Rooms of this process; a room loads on first join and unloads when empty."""

    def __init__(self, store: CollabStore, pubsub: Any | None) -> None:
        self.store = store
        self.pubsub = pubsub
        self.origin = uuid.uuid4().hex
        self.rooms: dict[tuple[str, str], Room] = {}
        self._closing: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._announcing: set[asyncio.Task[None]] = set()

    async def join(self, service: str, doc_id: str, peer: Peer) -> Room:
        key = (service, doc_id)
        closing = self._closing.get(key)
        if closing is not None:
            # The previous room of this document is still storing its last changes.
            await asyncio.shield(closing)
        async with self._lock:
            room = self.rooms.get(key)
            if room is None:
                room = Room(self, service, doc_id)
                self.rooms[key] = room
                created = True
            else:
                created = False
            room.peers.add(peer)  # counted now so a concurrent leave does not unload it
        if created:
            try:
                await room.load()
            except BaseException:
                async with self._lock:
                    self.rooms.pop(key, None)
                room.ready.set()
                raise
        await room.ready.wait()
        if self.rooms.get(key) is not room:
            raise RuntimeError("room failed to load")
        await room.join(peer)
        return room

    async def leave(self, room: Room, peer: Peer) -> None:
        await room.leave(peer)
        await self.unload_if_empty(room)

    async def unload_if_empty(self, room: Room) -> None:
        key = (room.service, room.doc_id)
        async with self._lock:
            if room.peers or self.rooms.get(key) is not room:
                return
            del self.rooms[key]
            closing = asyncio.ensure_future(self._close(key, room))
            self._closing[key] = closing
        try:
            await asyncio.shield(closing)
        finally:
            if self._closing.get(key) is closing:
                del self._closing[key]

    async def _close(self, key: tuple[str, str], room: Room) -> None:
        if await room.close():
            return
        # The buffer refused the last edits: the room stays loaded with them (joiners wait for
        # this future, so none has loaded a copy without them) and keeps retrying.
        log.error("collab room kept: its edits could not be buffered", service=room.service)
        async with self._lock:
            self.rooms[key] = room
        room.retry_store()

    def get(self, service: str, doc_id: str) -> Room | None:
        return self.rooms.get((service, doc_id))

    async def publish(self, channel: str, data: dict[str, Any]) -> None:
        if self.pubsub is None:
            return
        data["o"] = self.origin
        try:
            await self.pubsub.publish(channel, data)
        except Exception:
            log.warning("collab relay publish failed", channel=channel)

    def announce(self, service: str, doc_id: str, update: bytes) -> None:
        """apply_external in the background: a save's answer does not wait for the relay."""
        task = asyncio.create_task(self.apply_external(service, doc_id, update))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def apply_external(self, service: str, doc_id: str, update: bytes) -> None:
        """Bring a buffered update (save API, restore) to the live rooms of every process."""
        room = self.get(service, doc_id)
        if room is not None:
            await room.apply_external(update)
        else:
            await self.publish(room_channel(service, doc_id), relay_message(update))

    def is_unloaded(self, service: str, doc_id: str) -> bool:
        """No room holds the document and its last unload has stored everything."""
        key = (service, doc_id)
        return key not in self.rooms and key not in self._closing

    async def close(self) -> None:
        await asyncio.gather(*self._announcing, return_exceptions=True)
        rooms = list(self.rooms.values())
        self.rooms.clear()
        for room in rooms:
            if not await room.close():
                log.error("collab edits lost at shutdown: the buffer refused them")
