"""The sync engine: access rules, find_one_and_update, snapshots, catch-up, compaction."""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.config import Settings
from townhall.core.db import after_commit, utcnow
from townhall.core.deps import Principal
from townhall.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from townhall.sync.models import SyncCollection, SyncSnapshot
from townhall.sync.patching import (
    Edit,
    InvalidJSON,
    JSONDoc,
    PatchError,
    Replace,
    apply_patch,
    check_value,
    growth_bound,
    patch_payload,
    resolve,
    size_of,
)
from townhall.sync.repository import SyncRepository

if TYPE_CHECKING:
    from townhall.core.pubsub import PubSub

log = structlog.get_logger(__name__)

Role = Literal["read", "write", "owner"]
_RANK = {"read": 1, "write": 2, "owner": 3}
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]?$")
DOC_ID_RE = re.compile(r"^[A-Za-z0-9._:~-]{1,128}$")
SYSTEM_ACTOR = "server"
# Newest snapshot time seen per stream in this process (a hint; the database decides).
_NEWEST_SNAPSHOT: dict[uuid.UUID, datetime] = {}


def channel_of(slug: str) -> str:
    """The pub/sub channel announcing a stream's new events."""
    return f"sync:stream:{slug}"


@dataclass(frozen=True)
class Access:
    """A collection and the caller's role in it."""

    collection: SyncCollection
    role: Role


@dataclass(frozen=True)
class DocView:
    """A document as of one version (what a write returns)."""

    id: str
    version: int
    data: JSONDoc | None
    deleted: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class WriteResult:
    """What one committed edit produced."""

    document: DocView
    seq: int
    op: str
    patch: Any
    attempts: int


@dataclass
class CatchUp:
    """Missing events in order, or (reset=True) a snapshot plus the events after it."""

    stream: str
    head: int
    reset: bool
    events: list[dict[str, Any]]
    snapshot: dict[str, Any] | None = None
    snapshot_seq: int | None = None
    more: bool = False
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def last_seq(self) -> int:
        if self.events:
            return int(self.events[-1]["seq"])
        return self.snapshot_seq if self.snapshot_seq is not None else 0


def event_fields(principal: Principal | None, op: str, patch: Any, now: datetime) -> dict[str, Any]:
    """An event's columns besides its position (stream, seq, doc_id, version)."""
    actor = str(principal.id) if principal is not None else SYSTEM_ACTOR
    return {"op": op, "patch": patch, "actor": actor, "ts": now}


def event_dict(event: Any, slug: str) -> dict[str, Any]:
    """The wire form of an event."""
    return {
        "stream": slug,
        "seq": event.seq,
        "doc_id": event.doc_id,
        "version": event.version,
        "op": event.op,
        "patch": event.patch,
        "actor": event.actor,
        "ts": event.ts.isoformat(),
    }


def document_dict(doc: Any, slug: str) -> dict[str, Any]:
    return {
        "collection": slug,
        "id": doc.id,
        "version": doc.version,
        "data": doc.data,
        "deleted": doc.deleted,
        "created_at": doc.created_at.isoformat(),
        "updated_at": doc.updated_at.isoformat(),
    }


class SyncService:
    """Business rules of the sync engine; never commits, only flushes."""

    def __init__(
        self, session: AsyncSession, settings: Settings, pubsub: PubSub | None = None
    ) -> None:
        self.session = session
        self.settings = settings
        self.pubsub = pubsub
        self.repo = SyncRepository(session)
        # Access checks are remembered for this unit of work (one transaction).
        self._access: dict[tuple[uuid.UUID | None, str], Access] = {}

    # Collections, members, access.

    async def create_collection(
        self, principal: Principal, name: str, slug: str | None = None
    ) -> SyncCollection:
        if slug is None:
            base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "collection"
            slug = f"{base}-{secrets.token_hex(3)}"
        if not SLUG_RE.match(slug):
            raise Unprocessable("slug: lowercase letters, digits and '-', 1-64 characters")
        if await self.repo.collection_by_slug(slug) is not None:
            raise Conflict(f"collection {slug!r} already exists")
        collection = SyncCollection(slug=slug, name=name, owner_id=principal.id)
        return await self.repo.add_collection(collection)

    async def access(self, principal: Principal | None, slug: str, need: Role = "read") -> Access:
        """The collection if `principal` may `need` it; non-members get 404 (no existence leak)."""
        key = (principal.id if principal is not None else None, slug)
        known = self._access.get(key)
        if known is None:
            known = self._access[key] = await self._load_access(principal, slug)
        if _RANK[known.role] < _RANK[need]:
            raise Forbidden(
                f"{need} access to collection {slug!r} is needed; you have {known.role}"
            )
        return known

    async def _load_access(self, principal: Principal | None, slug: str) -> Access:
        found = await self.repo.collection_access(
            slug, principal.id if principal is not None else None
        )
        if found is None:
            raise NotFound(f"collection {slug!r} not found")
        collection, member = found
        if principal is None:
            return Access(collection, "owner")  # the server itself (other apps, jobs)
        role: Role | None
        if collection.owner_id == principal.id:
            role = "owner"
        else:
            role = member if member in ("read", "write") else None  # type: ignore[assignment]
        if role is None:
            raise NotFound(f"collection {slug!r} not found")
        return Access(collection, role)

    async def set_member(
        self, principal: Principal, slug: str, email: str, role: str
    ) -> tuple[uuid.UUID, str]:
        access = await self.access(principal, slug, "owner")
        if role not in ("read", "write"):
            raise Unprocessable("role must be 'read' or 'write'")
        user = await self.repo.user_by_email(email)
        if user is None:
            raise NotFound(f"no user with email {email!r}")
        if user.id == access.collection.owner_id:
            raise Conflict("the owner is already a member")
        await self.repo.set_member(access.collection.id, user.id, role)
        return user.id, role

    async def remove_member(self, principal: Principal, slug: str, user_id: uuid.UUID) -> None:
        access = await self.access(principal, slug, "owner")
        if not await self.repo.remove_member(access.collection.id, user_id):
            raise NotFound("not a member")

    # Documents.

    async def get_document(self, principal: Principal | None, slug: str, doc_id: str) -> Any:
        access = await self.access(principal, slug, "read")
        doc = await self.repo.get_document(access.collection.id, doc_id)
        if doc is None or doc.deleted:
            raise NotFound(f"document {doc_id!r} not found")
        return doc

    async def create(
        self,
        principal: Principal | None,
        collection: str | SyncCollection,
        doc_id: str | None,
        data: JSONDoc,
    ) -> WriteResult:
        """Create a document (version 1), or revive a tombstone; an existing id is a 409."""
        coll = await self._writable(principal, collection)
        doc_id = doc_id or uuid.uuid4().hex
        _check_doc_id(doc_id)
        self._check_data(data)
        for attempt in range(1, self.settings.sync_max_retries + 2):
            existing = await self.repo.lock_stream_and_get_document(coll.id, doc_id)
            now = utcnow()
            if existing is not None and not existing.deleted:
                raise Conflict(
                    f"document {doc_id!r} already exists",
                    headers={"ETag": etag(existing.version)},
                    extra={"current_version": existing.version},
                )
            if existing is None:
                done = await self.repo.insert_document(coll.id, doc_id, data, now)
                view = DocView(doc_id, 1, data, False, now, now)
            else:
                done = await self.repo.update_document(
                    coll.id,
                    doc_id,
                    expected_version=existing.version,
                    data=data,
                    deleted=False,
                    now=now,
                )
                view = DocView(doc_id, existing.version + 1, data, False, existing.created_at, now)
            if done:
                return await self._record(coll, principal, view, "create", data, attempt)
            await self._backoff(attempt)
        raise Conflict("too much contention on this document; retry")

    async def find_one_and_update(
        self,
        principal: Principal | None,
        collection: str | SyncCollection,
        doc_id: str,
        edit: Edit,
        expected_version: int | None = None,
    ) -> WriteResult:
        """Apply `edit` with optimistic concurrency; record its patch as an event in this tx."""
        attempts = self.settings.sync_max_retries + 1 if expected_version is None else 1
        for attempt in range(1, attempts + 1):
            coll, current = await self._lock_writable(principal, collection, doc_id)
            if current is None or current.deleted:
                raise NotFound(f"document {doc_id!r} not found")
            if expected_version is not None and current.version != expected_version:
                raise _version_conflict(current.version, expected_version)
            try:
                patch = resolve(edit, current.data or {})
                check_value(patch_payload(patch))
                new_data = apply_patch(current.data, patch, private=True)  # a fresh row
            except PatchError as exc:
                if exc.test_failed:
                    raise Conflict(f"JSON patch test failed: {exc}") from exc
                raise Unprocessable(str(exc)) from exc
            except InvalidJSON as exc:
                raise Unprocessable(str(exc)) from exc
            growth = growth_bound(patch)
            if growth is None or (current.stored_bytes or 0) + growth > (
                self.settings.sync_max_document_bytes
            ):
                self._check_size(new_data)  # near the limit (or unbounded): measure exactly
            now = utcnow()
            payload = patch_payload(patch)
            seq = await self.repo.update_and_record(
                coll.id,
                doc_id,
                expected_version=current.version,
                data=new_data,
                deleted=False,
                now=now,
                event=event_fields(principal, patch.op, payload, now),
            )
            if seq is not None:
                view = DocView(
                    doc_id, current.version + 1, new_data, False, current.created_at, now
                )
                return await self._record(coll, principal, view, patch.op, payload, attempt, seq)
            if expected_version is not None:
                fresh = await self.repo.get_document(coll.id, doc_id)
                raise _version_conflict(fresh.version if fresh else 0, expected_version)
            await self._backoff(attempt)
        raise Conflict("too much contention on this document; retry with backoff")

    async def replace(
        self,
        principal: Principal | None,
        collection: str | SyncCollection,
        doc_id: str,
        data: JSONDoc,
        expected_version: int | None = None,
    ) -> WriteResult:
        self._check_data(data)
        return await self.find_one_and_update(
            principal, collection, doc_id, Replace(data), expected_version
        )

    async def delete(
        self,
        principal: Principal | None,
        collection: str | SyncCollection,
        doc_id: str,
        expected_version: int | None = None,
    ) -> WriteResult:
        """Tombstone a document: the row stays (deleted=True) and a `delete` event is recorded."""
        attempts = self.settings.sync_max_retries + 1 if expected_version is None else 1
        for attempt in range(1, attempts + 1):
            coll, current = await self._lock_writable(principal, collection, doc_id)
            if current is None or current.deleted:
                raise NotFound(f"document {doc_id!r} not found")
            if expected_version is not None and current.version != expected_version:
                raise _version_conflict(current.version, expected_version)
            now = utcnow()
            seq = await self.repo.update_and_record(
                coll.id,
                doc_id,
                expected_version=current.version,
                data=None,
                deleted=True,
                now=now,
                event=event_fields(principal, "delete", None, now),
            )
            if seq is not None:
                view = DocView(doc_id, current.version + 1, None, True, current.created_at, now)
                return await self._record(coll, principal, view, "delete", None, attempt, seq)
            await self._backoff(attempt)
        raise Conflict("too much contention on this document; retry")

    async def _lock_writable(
        self, principal: Principal | None, collection: str | SyncCollection, doc_id: str
    ) -> tuple[SyncCollection, Row[Any] | None]:
        """Check write access, take the stream's writer lock and read the document.

        One round trip on the hot path (the check is part of the locking read, in the same
        transaction); a refusal is explained by the access check's 404 or 403.
        """
        slug = collection.slug if isinstance(collection, SyncCollection) else collection
        found = await self.repo.lock_writable_document(
            slug, principal.id if principal is not None else None, doc_id
        )
        if found is not None:
            return found
        coll = await self._writable(principal, collection)  # raises the 404 or 403
        # Write access was granted after that read (a concurrent member change): read again.
        return coll, await self.repo.lock_stream_and_get_document(coll.id, doc_id)

    async def _writable(
        self, principal: Principal | None, collection: str | SyncCollection
    ) -> SyncCollection:
        if isinstance(collection, SyncCollection):
            if principal is not None:
                await self.access(principal, collection.slug, "write")
            return collection
        return (await self.access(principal, collection, "write")).collection

    async def _record(
        self,
        coll: SyncCollection,
        principal: Principal | None,
        view: DocView,
        op: str,
        patch: Any,
        attempts: int,
        seq: int | None = None,
    ) -> WriteResult:
        """Allocate the seq and insert the event in the document's transaction (unless the
        caller did both with the document update: `seq`); snapshot when due; announce later."""
        now = utcnow()
        if seq is None:
            seq = await self.repo.next_seq(coll.id)
            fields = event_fields(principal, op, patch, now)
            await self.repo.add_event(
                {
                    **fields,
                    "stream": coll.id,
                    "seq": seq,
                    "doc_id": view.id,
                    "version": view.version,
                }
            )
        every = self.settings.sync_snapshot_every_events
        if (every > 0 and seq % every == 0) or await self._snapshot_is_stale(coll, now):
            # The counter row is ours until commit, so this snapshot is exactly the state at seq.
            await self._write_snapshot(coll.id, seq)
            _NEWEST_SNAPSHOT[coll.id] = now
        self.announce(coll.slug, seq)
        return WriteResult(document=view, seq=seq, op=op, patch=patch, attempts=attempts)

    async def _snapshot_is_stale(self, coll: SyncCollection, now: datetime) -> bool:
        """ "Every T minutes": is the newest snapshot (or the collection, before any) older?

        The time last seen is remembered per process, so a write asks the database only when
        that time is older than T (another process may have taken a snapshot since).
        """
        minutes = self.settings.sync_snapshot_every_minutes
        if minutes <= 0:
            return False
        age = timedelta(minutes=minutes)
        seen = _NEWEST_SNAPSHOT.get(coll.id)
        if seen is not None and now - seen < age:
            return False
        newest = await self.repo.newest_snapshot_time(coll.id)
        seen = _NEWEST_SNAPSHOT[coll.id] = newest or coll.created_at
        return now - seen >= age

    def announce(self, slug: str, seq: int) -> None:
        """After commit: wake this process's feeds and publish to the others."""
        from townhall.sync.live import poke_local

        session = self.session
        pubsub = self.pubsub
        info = session.info.setdefault("sync_announce", {})
        first = not info
        info[slug] = max(seq, info.get(slug, 0))
        if not first:
            return  # one hook per transaction announces every stream's newest seq

        async def hook() -> None:
            for name, newest in info.items():
                poke_local(name, newest)
                if pubsub is not None:
                    await pubsub.publish(channel_of(name), {"seq": newest})
            info.clear()

        after_commit(session, hook)

    async def _backoff(self, attempt: int) -> None:
        if not self.repo.is_postgres:
            # SQLite: the failed UPDATE already took the database write lock, so the retry
            # cannot lose again; sleeping would only hold that lock longer.
            return
        base = self.settings.sync_retry_base_seconds * (2 ** (attempt - 1))
        delay = min(self.settings.sync_retry_max_seconds, base)
        await asyncio.sleep(random.uniform(0, delay))  # full jitter spreads the retriers

    def _check_data(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise Unprocessable("a document must be a JSON object")
        try:
            check_value(data)
        except InvalidJSON as exc:
            raise Unprocessable(str(exc)) from exc
        self._check_size(data)

    def _check_size(self, data: JSONDoc) -> None:
        limit = self.settings.sync_max_document_bytes
        size = size_of(data)
        if size > limit:
            raise PayloadTooLarge(f"document is {size} bytes; the limit is {limit}")

    # Snapshots.

    async def snapshot(self, principal: Principal | None, slug: str) -> SyncSnapshot:
        """Snapshot the stream now (on demand); idempotent at an unchanged head."""
        access = await self.access(principal, slug, "write")
        head = await self.repo.lock_head(access.collection.id)
        existing = await self.repo.snapshot_at(access.collection.id, head)
        if existing is not None:
            return existing
        return await self._write_snapshot(access.collection.id, head)

    async def _write_snapshot(self, stream: uuid.UUID, seq: int) -> SyncSnapshot:
        documents = await self.repo.live_documents(stream)
        snapshot = SyncSnapshot(stream=stream, seq=seq, data=documents, created_at=utcnow())
        await self.repo.add_snapshot(snapshot)
        await self.repo.prune_snapshots(stream, max(1, self.settings.sync_snapshots_keep))
        return snapshot

    # Catch-up.

    async def catch_up(self, access: Access, since: int, *, limit: int | None = None) -> CatchUp:
        """Events after `since` in order; a snapshot + tail when too far behind or compacted.

        A read never writes: it serves the newest snapshot that covers the gap (or the empty
        state at seq 0 while nothing was compacted) and pages its tail; only when no snapshot
        covers a compacted gap is one taken.
        """
        if since < 0:
            raise Unprocessable("since must be a non-negative sequence number")
        stream = access.collection.id
        slug = access.collection.slug
        page = limit or self.settings.sync_catchup_max_events
        head = await self.repo.head(stream)
        if since == head:
            return CatchUp(stream=slug, head=head, reset=False, events=[])
        oldest = await self.repo.oldest_seq(stream)
        if since > head:
            return await self._reset(
                access, head, oldest, page, "ahead of the server (unknown position)"
            )
        if oldest is None or oldest > since + 1:
            return await self._reset(
                access, head, oldest, page, "events before the oldest retained one"
            )
        if head - since > self.settings.sync_catchup_max_events:
            snapshot = await self.repo.newest_snapshot(stream)
            # Only a snapshot past `since` saves work; its tail is retained (oldest <= since+1).
            if snapshot is not None and snapshot.seq > since:
                rows = await self.repo.events_after(stream, snapshot.seq, page)
                return self._from_snapshot(
                    access, snapshot.seq, snapshot.data, head, "too far behind", rows
                )
        rows = await self.repo.events_after(stream, since, page)
        events = [event_dict(e, slug) for e in rows]
        more = bool(events) and events[-1]["seq"] < head
        return CatchUp(stream=slug, head=head, reset=False, events=events, more=more)

    async def _reset(
        self, access: Access, head: int, oldest: int | None, page: int, reason: str
    ) -> CatchUp:
        stream = access.collection.id

        def covers(seq: int) -> bool:  # every event after `seq` is still retained
            return seq == head or (oldest is not None and oldest <= seq + 1)

        snapshot = await self.repo.newest_snapshot(stream)
        if snapshot is not None and covers(snapshot.seq):
            seq, documents = snapshot.seq, snapshot.data
        elif covers(0):
            seq, documents = 0, {}  # nothing compacted yet: the empty state plus every event
        else:
            # No snapshot covers the gap (compacted past every snapshot): take one now.
            head = await self.repo.lock_head(stream)
            taken = await self.repo.snapshot_at(stream, head) or await self._write_snapshot(
                stream, head
            )
            seq, documents = taken.seq, taken.data
        rows = await self.repo.events_after(stream, seq, page)
        return self._from_snapshot(access, seq, documents, head, reason, rows)

    def _from_snapshot(
        self,
        access: Access,
        seq: int,
        documents: dict[str, Any],
        head: int,
        reason: str,
        rows: Any,
    ) -> CatchUp:
        events = [event_dict(e, access.collection.slug) for e in rows]
        last = events[-1]["seq"] if events else seq
        return CatchUp(
            stream=access.collection.slug,
            head=head,
            reset=True,
            events=events,
            snapshot=documents,
            snapshot_seq=seq,
            more=last < head,
            reason=reason,
        )

    # State vectors.

    async def ack(
        self, principal: Principal, client_id: str, vector: dict[str, Any]
    ) -> dict[str, int]:
        """Store a client's acknowledged position per stream; refuses garbage and the future."""
        if not isinstance(client_id, str) or not re.match(r"^[A-Za-z0-9._:-]{1,64}$", client_id):
            raise Unprocessable("client_id: 1-64 characters of letters, digits, '.', '_', ':', '-'")
        saved: dict[str, int] = {}
        now = utcnow()
        for slug, seq in parse_vector(vector).items():
            access = await self.access(principal, slug, "read")
            head = await self.repo.head(access.collection.id)
            if seq > head:
                raise Unprocessable(f"{slug}: seq {seq} is ahead of the server ({head})")
            await self.repo.save_client_seq(principal.id, client_id, access.collection.id, seq, now)
            saved[slug] = seq
        return saved

    # Maintenance (the hourly job).

    async def compact(self, now: datetime | None = None) -> dict[str, int]:
        """Snapshot stale streams, prune snapshots, drop covered old events and idle clients."""
        now = now or utcnow()
        s = self.settings
        age_limit = now - timedelta(days=s.sync_event_retention_days)
        snap_age = timedelta(minutes=s.sync_snapshot_every_minutes)
        totals = {"snapshots": 0, "events": 0, "clients": 0}
        for stream, head in await self.repo.all_streams():
            snapshots = await self.repo.snapshot_seqs(stream)
            newest_seq, newest_at = snapshots[0] if snapshots else (0, None)
            if head > newest_seq and (newest_at is None or now - newest_at >= snap_age):
                head = await self.repo.lock_head(stream)
                await self._write_snapshot(stream, head)
                totals["snapshots"] += 1
                newest_seq = head
            else:
                await self.repo.prune_snapshots(stream, max(1, s.sync_snapshots_keep))
            if newest_seq == 0:
                continue
            # Keep the newest `retention_count` events and anything the snapshot does not cover.
            totals["events"] += await self.repo.delete_events_keeping(
                stream,
                covered_seq=newest_seq,
                keep_from=head - s.sync_event_retention_count + 1,
                before=age_limit,
            )
        totals["clients"] = await self.repo.prune_clients(
            now - timedelta(days=s.sync_client_idle_days)
        )
        return totals


def parse_vector(vector: Any) -> dict[str, int]:
    """Validate a state vector `{stream: seq}`; garbage is a 422 naming the problem."""
    if not isinstance(vector, dict) or len(vector) > 100:
        raise Unprocessable("a state vector is an object {collection: seq} of at most 100 entries")
    result: dict[str, int] = {}
    for slug, seq in vector.items():
        if not isinstance(slug, str) or not SLUG_RE.match(slug):
            raise Unprocessable(f"state vector: {slug!r} is not a collection slug")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or seq > 2**62:
            raise Unprocessable(f"state vector: seq of {slug!r} must be a non-negative integer")
        result[slug] = seq
    return result


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """`"3"`, `W/"3"`, `3` or `*`; None when absent or `*`; malformed is a 400."""
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit() or len(value) > 18:
        raise BadRequest('If-Match must be a document version ETag such as "3"')
    return int(value)


def _check_doc_id(doc_id: str) -> None:
    if not DOC_ID_RE.match(doc_id):
        raise Unprocessable(
            "document id: 1-128 characters of letters, digits, '.', '_', ':', '~', '-'"
        )


def _version_conflict(current: int, expected: int) -> Conflict:
    return Conflict(
        f"version mismatch: the document is at version {current}, not {expected}",
        headers={"ETag": etag(current)},
        extra={"current_version": current},
    )


async def find_one_and_update(
    session: AsyncSession,
    principal: Principal | None,
    collection: str | SyncCollection,
    doc_id: str,
    edit: Edit,
    expected_version: int | None = None,
    *,
    settings: Settings | None = None,
    pubsub: PubSub | None = None,
) -> WriteResult:
    """The engine's core call for other apps: edit one document, record the event, announce."""
    from townhall.core.config import get_settings

    service = SyncService(session, settings or get_settings(), pubsub)
    return await service.find_one_and_update(principal, collection, doc_id, edit, expected_version)
