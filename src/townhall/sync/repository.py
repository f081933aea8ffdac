"""All SQL of the sync engine."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    LargeBinary,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.models import User
from townhall.sync.models import (
    SyncClientState,
    SyncCollection,
    SyncDocument,
    SyncEvent,
    SyncMember,
    SyncSnapshot,
    SyncStream,
)

# Core tables for the hot write path (the ORM unit of work adds nothing there but overhead).
DOCS = cast(Table, SyncDocument.__table__)
STREAMS = cast(Table, SyncStream.__table__)
EVENTS = cast(Table, SyncEvent.__table__)


def _locked_read(stored: Any) -> Any:
    """The stream-locking document read (see lock_stream_and_get_document), built once."""
    docs, streams = DOCS, STREAMS
    join = streams.outerjoin(
        docs,
        and_(docs.c.collection_id == streams.c.stream, docs.c.id == bindparam("doc_id")),
    )
    return (
        select(docs, stored.label("stored_bytes"))
        .select_from(join)
        .where(streams.c.stream == bindparam("collection_id"))
        .with_for_update(of=streams)
    )


# The stored JSON's length bounds the document's compact size (PostgreSQL's text form and
# SQLite's json.dumps add spaces), so most writes need no re-encoding to check the limit.
LOCKED_READ_PG = _locked_read(func.octet_length(sql_cast(DOCS.c.data, Text)))
LOCKED_READ_SQLITE = _locked_read(func.length(sql_cast(DOCS.c.data, LargeBinary)))


def _update_and_record() -> Any:
    """PostgreSQL: CAS update + seq allocation + event insert as one statement, built once.

    Parameters are `p_`-prefixed: an INSERT's execution keys named like its columns would be
    taken as VALUES.
    """
    docs, streams, events = DOCS, STREAMS, EVENTS
    edited = (
        update(docs)
        .where(
            docs.c.collection_id == bindparam("p_collection_id"),
            docs.c.id == bindparam("p_doc_id"),
            docs.c.version == bindparam("p_expected"),
        )
        .values(
            version=bindparam("p_version"),
            data=bindparam("p_data", type_=docs.c.data.type),
            deleted=bindparam("p_deleted"),
            updated_at=bindparam("p_now", type_=docs.c.updated_at.type),
        )
        .returning(docs.c.version)
        .cte("edited")
    )
    allocated = (
        update(streams)
        .where(streams.c.stream == bindparam("p_collection_id"), exists(select(edited.c.version)))
        .values(seq=streams.c.seq + 1)
        .returning(streams.c.seq)
        .cte("allocated")
    )
    row = select(
        bindparam("p_collection_id", type_=events.c.stream.type),
        allocated.c.seq,
        bindparam("p_doc_id", type_=events.c.doc_id.type),
        bindparam("p_version", type_=events.c.version.type),
        bindparam("p_op", type_=events.c.op.type),
        bindparam("p_patch", type_=events.c.patch.type),
        bindparam("p_actor", type_=events.c.actor.type),
        bindparam("p_ts", type_=events.c.ts.type),
    )
    columns = ["stream", "seq", "doc_id", "version", "op", "patch", "actor", "ts"]
    return insert(events).from_select(columns, row).returning(events.c.seq)


UPDATE_AND_RECORD_PG = _update_and_record()
_COLLECTIONS = cast(Table, SyncCollection.__table__)
_MEMBERS = cast(Table, SyncMember.__table__)


def _writable_locked_read(stored: Any) -> Any:
    """Write access check + stream lock + document read as one statement, built once.

    A row comes back only when the caller may write (the server, the owner or a `write`
    member), so a refused caller never takes the stream lock; the caller then asks
    collection_access why (404 or 403).
    """
    colls, members, streams, docs = _COLLECTIONS, _MEMBERS, STREAMS, DOCS
    join = (
        colls.join(streams, streams.c.stream == colls.c.id)
        .outerjoin(
            members,
            and_(
                members.c.collection_id == colls.c.id,
                members.c.user_id == bindparam("user_id", type_=members.c.user_id.type),
            ),
        )
        .outerjoin(docs, and_(docs.c.collection_id == colls.c.id, docs.c.id == bindparam("doc_id")))
    )
    collection = [
        colls.c.id.label("c_id"),
        colls.c.slug.label("c_slug"),
        colls.c.name.label("c_name"),
        colls.c.owner_id.label("c_owner_id"),
        colls.c.created_at.label("c_created_at"),
        colls.c.updated_at.label("c_updated_at"),
    ]
    return (
        select(*collection, docs, stored.label("stored_bytes"))
        .select_from(join)
        .where(
            colls.c.slug == bindparam("slug"),
            or_(
                bindparam("server", type_=Boolean),
                colls.c.owner_id == bindparam("user_id"),
                members.c.role == "write",
            ),
        )
        .with_for_update(of=streams)
    )


WRITABLE_LOCKED_READ_PG = _writable_locked_read(func.octet_length(sql_cast(DOCS.c.data, Text)))
WRITABLE_LOCKED_READ_SQLITE = _writable_locked_read(func.length(sql_cast(DOCS.c.data, LargeBinary)))
ACCESS_READ = (
    select(_COLLECTIONS, _MEMBERS.c.role)
    .select_from(
        _COLLECTIONS.outerjoin(
            _MEMBERS,
            and_(
                _MEMBERS.c.collection_id == _COLLECTIONS.c.id,
                _MEMBERS.c.user_id == bindparam("user_id", type_=_MEMBERS.c.user_id.type),
            ),
        )
    )
    .where(_COLLECTIONS.c.slug == bindparam("slug"))
)


class SyncRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # Collections and members.

    async def add_collection(self, collection: SyncCollection) -> SyncCollection:
        self.session.add(collection)
        await self.session.flush()
        self.session.add(SyncStream(stream=collection.id, seq=0))
        await self.session.flush()
        return collection

    async def collection_by_slug(self, slug: str) -> SyncCollection | None:
        result = await self.session.execute(
            select(SyncCollection).where(SyncCollection.slug == slug)
        )
        return result.scalar_one_or_none()

    async def collection_access(
        self, slug: str, user_id: uuid.UUID | None
    ) -> tuple[SyncCollection, str | None] | None:
        """The collection and `user_id`'s member role (None if not a member), one Core query
        built once: every request checks access, so this is on the hot write path."""
        row = (
            await self.session.execute(ACCESS_READ, {"slug": slug, "user_id": user_id})
        ).one_or_none()
        if row is None:
            return None
        collection = SyncCollection(
            id=row.id,
            slug=row.slug,
            name=row.name,
            owner_id=row.owner_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        return collection, row.role

    async def collections_of(self, user_id: uuid.UUID) -> Sequence[SyncCollection]:
        member = select(SyncMember.collection_id).where(SyncMember.user_id == user_id)
        result = await self.session.execute(
            select(SyncCollection)
            .where(or_(SyncCollection.owner_id == user_id, SyncCollection.id.in_(member)))
            .order_by(SyncCollection.created_at, SyncCollection.slug)
        )
        return result.scalars().all()

    async def members(self, collection_id: uuid.UUID) -> Sequence[tuple[SyncMember, User]]:
        result = await self.session.execute(
            select(SyncMember, User)
            .join(User, User.id == SyncMember.user_id)
            .where(SyncMember.collection_id == collection_id)
            .order_by(User.email)
        )
        return [(m, u) for m, u in result.all()]

    async def set_member(self, collection_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
        existing = await self.session.get(SyncMember, (collection_id, user_id))
        if existing is None:
            self.session.add(SyncMember(collection_id=collection_id, user_id=user_id, role=role))
        else:
            existing.role = role
        await self.session.flush()

    async def remove_member(self, collection_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            delete(SyncMember).where(
                SyncMember.collection_id == collection_id, SyncMember.user_id == user_id
            )
        )
        return result.rowcount > 0

    async def user_by_email(self, email: str) -> User | None:
        result = await self.session.execute(
            select(User).where(func.lower(User.email) == email.lower())
        )
        return result.scalar_one_or_none()

    # Documents.

    async def get_document(
        self, collection_id: uuid.UUID, doc_id: str, *, lock: bool = False
    ) -> Row[Any] | None:
        """The current row (Core, not ORM: always fresh and cheap on the hot path)."""
        docs = DOCS
        query = select(docs).where(docs.c.collection_id == collection_id, docs.c.id == doc_id)
        if lock:
            query = query.with_for_update()
        result = await self.session.execute(query)
        return result.one_or_none()

    async def lock_stream_and_get_document(
        self, collection_id: uuid.UUID, doc_id: str
    ) -> Row[Any] | None:
        """Take the stream's writer lock, then read the document, in one statement.

        Every writer locks the stream counter before any document row, so two transactions
        editing several documents in opposite orders queue instead of deadlocking (PostgreSQL).
        """
        query = LOCKED_READ_PG if self.is_postgres else LOCKED_READ_SQLITE
        params = {"collection_id": collection_id, "doc_id": doc_id}
        row = (await self.session.execute(query, params)).one_or_none()
        return None if row is None or row.id is None else row

    async def lock_writable_document(
        self, slug: str, user_id: uuid.UUID | None, doc_id: str
    ) -> tuple[SyncCollection, Row[Any] | None] | None:
        """lock_stream_and_get_document by slug, if `user_id` (None: the server) may write.

        One round trip instead of an access query plus the locking read; None when the
        collection is unknown or the caller may not write to it.
        """
        query = WRITABLE_LOCKED_READ_PG if self.is_postgres else WRITABLE_LOCKED_READ_SQLITE
        params = {"slug": slug, "user_id": user_id, "doc_id": doc_id, "server": user_id is None}
        row = (await self.session.execute(query, params)).one_or_none()
        if row is None:
            return None
        collection = SyncCollection(
            id=row.c_id,
            slug=row.c_slug,
            name=row.c_name,
            owner_id=row.c_owner_id,
            created_at=row.c_created_at,
            updated_at=row.c_updated_at,
        )
        return collection, None if row.id is None else row

    async def list_documents(
        self, collection_id: uuid.UUID, *, after: str | None, limit: int, include_deleted: bool
    ) -> Sequence[SyncDocument]:
        query = select(SyncDocument).where(SyncDocument.collection_id == collection_id)
        if not include_deleted:
            query = query.where(SyncDocument.deleted.is_(False))
        if after is not None:
            query = query.where(SyncDocument.id > after)
        result = await self.session.execute(query.order_by(SyncDocument.id).limit(limit))
        return result.scalars().all()

    async def live_documents(self, collection_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        """Every live document as `{id: {"version", "data"}}`."""
        result = await self.session.execute(
            select(SyncDocument.id, SyncDocument.version, SyncDocument.data)
            .where(SyncDocument.collection_id == collection_id, SyncDocument.deleted.is_(False))
            .order_by(SyncDocument.id)
        )
        return {
            doc_id: {"version": version, "data": data} for doc_id, version, data in result.all()
        }

    async def insert_document(
        self, collection_id: uuid.UUID, doc_id: str, data: dict[str, Any], now: datetime
    ) -> bool:
        """Insert version 1; False when the id exists (a concurrent create won)."""
        values = {
            "collection_id": collection_id,
            "id": doc_id,
            "version": 1,
            "data": data,
            "deleted": False,
            "created_at": now,
            "updated_at": now,
        }
        dialect_insert = pg_insert if self.is_postgres else sqlite_insert
        statement = dialect_insert(SyncDocument).values(**values).on_conflict_do_nothing()
        result: CursorResult[Any] = await self.session.execute(statement)  # type: ignore[assignment]
        return result.rowcount == 1

    async def update_document(
        self,
        collection_id: uuid.UUID,
        doc_id: str,
        *,
        expected_version: int,
        data: dict[str, Any] | None,
        deleted: bool,
        now: datetime,
    ) -> bool:
        """Compare-and-set on the version; False when another writer got there first."""
        docs = DOCS
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            update(docs)
            .where(
                docs.c.collection_id == collection_id,
                docs.c.id == doc_id,
                docs.c.version == expected_version,
            )
            .values(version=expected_version + 1, data=data, deleted=deleted, updated_at=now)
        )
        return result.rowcount == 1

    async def update_and_record(
        self,
        collection_id: uuid.UUID,
        doc_id: str,
        *,
        expected_version: int,
        data: dict[str, Any] | None,
        deleted: bool,
        now: datetime,
        event: dict[str, Any],
    ) -> int | None:
        """CAS-update the document, allocate the next seq and insert its event (`event` without
        stream/seq/doc_id/version); the seq, or None when another writer got there first.

        PostgreSQL does all three in one data-modifying statement (one round trip, not three);
        SQLite runs them one by one (it has no UPDATE ... RETURNING inside a CTE).
        """
        if not self.is_postgres:
            done = await self.update_document(
                collection_id,
                doc_id,
                expected_version=expected_version,
                data=data,
                deleted=deleted,
                now=now,
            )
            if not done:
                return None
            seq = await self.next_seq(collection_id)
            await self.add_event(
                {
                    **event,
                    "stream": collection_id,
                    "seq": seq,
                    "doc_id": doc_id,
                    "version": expected_version + 1,
                }
            )
            return seq
        values = {
            **event,
            "collection_id": collection_id,
            "doc_id": doc_id,
            "expected": expected_version,
            "version": expected_version + 1,
            "data": data,
            "deleted": deleted,
            "now": now,
        }
        params = {f"p_{key}": value for key, value in values.items()}
        result = await self.session.execute(UPDATE_AND_RECORD_PG, params)
        allocated = result.scalar_one_or_none()
        return None if allocated is None else int(allocated)

    # Streams and events.

    async def next_seq(self, stream: uuid.UUID) -> int:
        """Allocate the stream's next seq inside the transaction (row-locks the counter)."""
        streams = STREAMS
        result = await self.session.execute(
            update(streams)
            .where(streams.c.stream == stream)
            .values(seq=streams.c.seq + 1)
            .returning(streams.c.seq)
        )
        return int(result.scalar_one())

    async def lock_head(self, stream: uuid.UUID) -> int:
        """Take the stream's writer lock without allocating; returns the current head."""
        result = await self.session.execute(
            update(SyncStream)
            .where(SyncStream.stream == stream)
            .values(seq=SyncStream.seq)
            .returning(SyncStream.seq)
        )
        return int(result.scalar_one())

    async def head(self, stream: uuid.UUID) -> int:
        result = await self.session.execute(
            select(SyncStream.seq).where(SyncStream.stream == stream)
        )
        return int(result.scalar_one_or_none() or 0)

    async def add_event(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(EVENTS).values(**values))

    async def events_after(self, stream: uuid.UUID, after: int, limit: int) -> Sequence[SyncEvent]:
        result = await self.session.execute(
            select(SyncEvent)
            .where(SyncEvent.stream == stream, SyncEvent.seq > after)
            .order_by(SyncEvent.seq)
            .limit(limit)
        )
        return result.scalars().all()

    async def oldest_seq(self, stream: uuid.UUID) -> int | None:
        result = await self.session.execute(
            select(func.min(SyncEvent.seq)).where(SyncEvent.stream == stream)
        )
        value = result.scalar_one_or_none()
        return None if value is None else int(value)

    async def count_events(self, stream: uuid.UUID) -> int:
        result = await self.session.execute(
            select(func.count()).select_from(SyncEvent).where(SyncEvent.stream == stream)
        )
        return int(result.scalar_one())

    # Snapshots.

    async def add_snapshot(self, snapshot: SyncSnapshot) -> None:
        self.session.add(snapshot)
        await self.session.flush()

    async def snapshot_at(self, stream: uuid.UUID, seq: int) -> SyncSnapshot | None:
        return await self.session.get(SyncSnapshot, (stream, seq))

    async def newest_snapshot(self, stream: uuid.UUID) -> SyncSnapshot | None:
        result = await self.session.execute(
            select(SyncSnapshot)
            .where(SyncSnapshot.stream == stream)
            .order_by(SyncSnapshot.seq.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def newest_snapshot_time(self, stream: uuid.UUID) -> datetime | None:
        result = await self.session.execute(
            select(func.max(SyncSnapshot.created_at)).where(SyncSnapshot.stream == stream)
        )
        value: datetime | None = result.scalar_one_or_none()
        return value

    async def snapshot_seqs(self, stream: uuid.UUID) -> list[tuple[int, datetime]]:
        result = await self.session.execute(
            select(SyncSnapshot.seq, SyncSnapshot.created_at)
            .where(SyncSnapshot.stream == stream)
            .order_by(SyncSnapshot.seq.desc())
        )
        return [(int(s), c) for s, c in result.all()]

    async def prune_snapshots(self, stream: uuid.UUID, keep: int) -> int:
        keep_seqs = [s for s, _ in (await self.snapshot_seqs(stream))[:keep]]
        if not keep_seqs:
            return 0
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            delete(SyncSnapshot).where(
                SyncSnapshot.stream == stream, SyncSnapshot.seq.not_in(keep_seqs)
            )
        )
        return result.rowcount

    async def all_streams(self) -> Sequence[tuple[uuid.UUID, int]]:
        result = await self.session.execute(select(SyncStream.stream, SyncStream.seq))
        return [(s, int(q)) for s, q in result.all()]

    # Client state vectors.

    async def save_client_seq(
        self, user_id: uuid.UUID, client_id: str, stream: uuid.UUID, seq: int, now: datetime
    ) -> None:
        values = {
            "user_id": user_id,
            "client_id": client_id,
            "stream": stream,
            "seq": seq,
            "updated_at": now,
        }
        if self.is_postgres:
            pg = pg_insert(SyncClientState).values(**values)
            statement: Any = pg.on_conflict_do_update(
                index_elements=["user_id", "client_id", "stream"],
                set_={"seq": pg.excluded.seq, "updated_at": now},
            )
        else:
            lite = sqlite_insert(SyncClientState).values(**values)
            statement = lite.on_conflict_do_update(
                index_elements=["user_id", "client_id", "stream"],
                set_={"seq": lite.excluded.seq, "updated_at": now},
            )
        await self.session.execute(statement)

    async def client_states(self, stream: uuid.UUID) -> Sequence[tuple[SyncClientState, str]]:
        result = await self.session.execute(
            select(SyncClientState, User.email)
            .join(User, User.id == SyncClientState.user_id)
            .where(SyncClientState.stream == stream)
            .order_by(SyncClientState.seq, SyncClientState.client_id)
        )
        return [(c, e) for c, e in result.all()]

    async def prune_clients(self, before: datetime) -> int:
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            delete(SyncClientState).where(SyncClientState.updated_at < before)
        )
        return result.rowcount

    async def delete_events_keeping(
        self, stream: uuid.UUID, *, covered_seq: int, keep_from: int, before: datetime
    ) -> int:
        """Compaction: events covered by a snapshot, older than `before`, below `keep_from`."""
        limit = min(covered_seq, keep_from - 1)
        if limit <= 0:
            return 0
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            delete(SyncEvent).where(
                and_(SyncEvent.stream == stream, SyncEvent.seq <= limit, SyncEvent.ts < before)
            )
        )
        return result.rowcount
