"""Business rules: access, saves into the buffer, the flusher, versions and restore."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pycrdt
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.collab import protocol as yp
from townhall.collab.buffer import DatabaseBuffer, RedisBuffer
from townhall.collab.hooks import Role, check_doc_id, get_service
from townhall.collab.models import CollabDocument, CollabVersion
from townhall.collab.protocol import InvalidUpdate, union_state_vectors, validate_update
from townhall.collab.repository import CollabRepository
from townhall.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized

if TYPE_CHECKING:
    from townhall.core.config import Settings
    from townhall.core.db import Database
    from townhall.core.deps import Principal

log = structlog.get_logger(__name__)

LOCK_TTL_MS = 60_000
HELD_VECTORS = 10_000


async def authorize(
    session: AsyncSession, principal: Principal | None, service: str, doc_id: str
) -> Role | None:
    """Ask the owning app's on_authorize hook."""
    hooks = get_service(service)
    check_doc_id(doc_id)
    return await hooks.authorize(principal, service, doc_id, session)


async def require_access(
    session: AsyncSession,
    principal: Principal | None,
    service: str,
    doc_id: str,
    *,
    write: bool,
) -> Role:
    """The caller's role, or 401/403 when they may not read (or write) the document."""
    role = await authorize(session, principal, service, doc_id)
    if role is None:
        if principal is None:
            raise Unauthorized()
        raise Forbidden("no access to this document")
    if write and role != "editor":
        raise Forbidden("read-only access to this document")
    return role


def merge(*updates: bytes) -> bytes:
    """CRDT merge of updates; keeps structs whose dependencies are still missing."""
    present = [u for u in updates if u]
    if not present:
        return b"\x00\x00"
    if len(present) == 1:
        return present[0]
    return pycrdt.merge_updates(*present)


@dataclass(frozen=True)
class SaveResult:
    state_vector: bytes
    buffered: int


@dataclass
class FlushReport:
    documents: int = 0
    updates: int = 0
    changed: int = 0
    skipped: int = 0


class CollabStore:
    """Reads and writes documents through the write-back buffer."""

    # A flusher that dies holding a document's lock blocks that document this long.
    lock_ttl_ms = LOCK_TTL_MS

    def __init__(self, db: Database, settings: Settings, buffer: RedisBuffer | DatabaseBuffer):
        self.db = db
        self.settings = settings
        self.buffer = buffer
        # Recently saved documents -> state vector the server holds (a lower bound), LRU.
        self._held: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    # Saves.

    async def save(
        self,
        session: AsyncSession,
        principal: Principal | None,
        service: str,
        doc_id: str,
        update: bytes,
    ) -> SaveResult:
        """Validate, authorize and append an update to the buffer (merged at flush)."""
        await require_access(session, principal, service, doc_id, write=True)
        try:
            validate_update(update)
        except InvalidUpdate as exc:
            raise BadRequest(f"not a valid Yjs update: {exc}") from exc
        buffered = await self.buffer.push(
            session, service, doc_id, update, self.settings.collab_max_document_bytes
        )
        key = (service, doc_id)
        held = self._held.pop(key, None)
        if held is None:  # read the buffer once; later saves extend the vector by their update
            held = await self.state_vector(session, service, doc_id)
        else:
            held = yp.extend_state_vector(held, update)
        # What the server holds only grows (the flusher moves it, never drops it), so a vector
        # remembered here stays a lower bound even when other processes save meanwhile.
        self._held[key] = held
        if len(self._held) > HELD_VECTORS:
            self._held.popitem(last=False)
        return SaveResult(held, buffered)

    async def state_vector(self, session: AsyncSession, service: str, doc_id: str) -> bytes:
        """What the server holds (database + buffer): a leader's next save is the diff from it."""
        # A lower bound: buffered diffs that start past clock 0 count only once flushed,
        # so a leader may resend a little; it never skips anything the server lacks.
        pending = await self.buffer.pending(session, service, doc_id)
        stored = await CollabRepository(session).get_state_vector(service, doc_id)
        return union_state_vectors(
            stored or yp.EMPTY_STATE_VECTOR, pycrdt.get_state(merge(*pending))
        )

    async def append(self, service: str, doc_id: str, update: bytes) -> None:
        """Buffer an update from a trusted source (a room's debounced store)."""
        async with self.db.session() as session:
            await self.buffer.push(
                session, service, doc_id, update, self.settings.collab_max_document_bytes
            )

    # Reads.

    async def stored(self, session: AsyncSession, service: str, doc_id: str) -> bytes:
        document = await CollabRepository(session).get_document(service, doc_id)
        if document is not None:
            return document.state
        if get_service(service).on_load is None:
            return b""
        return await self._initial_state(service, doc_id)

    async def _initial_state(self, service: str, doc_id: str) -> bytes:
        """Ask on_load once and store its state, so every later read merges onto that one."""
        # A template built afresh on each read has new client ids: edits made on one copy
        # merged with another would duplicate it. So the first answer becomes the document.
        on_load = get_service(service).on_load
        assert on_load is not None
        try:
            async with self.db.session() as session:
                repo = CollabRepository(session)
                document = await repo.get_document(service, doc_id)
                if document is not None:
                    return document.state
                initial = await on_load(service, doc_id, session)
                if not initial:
                    return b""
                try:
                    vector = validate_update(initial)
                except InvalidUpdate as exc:
                    raise ValueError(f"{service} on_load returned an invalid update") from exc
                await repo.insert_document(service, doc_id, initial, vector)
                return initial
        except IntegrityError:
            # The unique (service, doc_id) key is the document lock: another reader stored its
            # state first, and that one is the document now.
            async with self.db.sessionmaker() as session:
                document = await CollabRepository(session).get_document(service, doc_id)
            return document.state if document is not None else b""

    async def load_state(self, session: AsyncSession, service: str, doc_id: str) -> bytes:
        """The latest state: the database merged with everything still buffered."""
        stored = await self.stored(session, service, doc_id)
        pending = await self.buffer.pending(session, service, doc_id)
        return merge(stored, *pending)

    # The flusher.

    async def flush(self) -> FlushReport:
        """Write every dirty document to the database; safe to run anywhere, any number of times."""
        report = FlushReport()
        async with self.db.sessionmaker() as session:
            dirty = [item async for item in self.buffer.dirty(session)]
        for service, doc_id in dirty:
            try:
                written = await self.flush_document(service, doc_id)
            except (Conflict, IntegrityError):
                report.skipped += 1  # another flusher wrote first; its data is the same or newer
                continue
            if written is None:
                report.skipped += 1
                continue
            report.documents += 1
            report.updates += written[0]
            report.changed += int(written[1])
        return report

    async def flush_document(self, service: str, doc_id: str) -> tuple[int, bool] | None:
        """Flush one document; (updates written, state changed), or None when locked elsewhere."""
        if isinstance(self.buffer, DatabaseBuffer):
            async with self.db.session() as session:
                batch = await self.buffer.read_batch(session, service, doc_id)
                changed = await self._write(session, service, doc_id, batch.updates)
                await self.buffer.remove_batch(session, service, doc_id, batch)
            return len(batch.updates), changed
        token = await self.buffer.lock(service, doc_id, self.lock_ttl_ms)
        if token is None:
            return None
        try:
            batch = await self.buffer.read_batch(service, doc_id)
            changed = False
            if batch.updates:
                async with self.db.session() as session:
                    changed = await self._write(session, service, doc_id, batch.updates)
            # Only after the commit: a crash before this line re-flushes the same updates
            # next run, which the CRDT merge makes harmless.
            await self.buffer.remove_batch(service, doc_id, batch, token)
            return len(batch.updates), changed
        finally:
            await self.buffer.unlock(service, doc_id, token)

    async def _write(
        self, session: AsyncSession, service: str, doc_id: str, updates: list[bytes]
    ) -> bool:
        repo = CollabRepository(session)
        document = await repo.get_document(service, doc_id)
        if document is None:
            await self.stored(session, service, doc_id)  # stores on_load's state, if any
            document = await repo.get_document(service, doc_id)
        state = merge(document.state if document is not None else b"", *updates)
        if document is not None and state == document.state:
            return False
        vector = pycrdt.get_state(state)
        if document is None:
            document = await repo.insert_document(service, doc_id, state, vector)
        elif not await repo.update_document(document.id, document.revision, state, vector):
            raise Conflict("document was written by another flusher")
        await repo.add_version(
            document.id, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), state
        )
        await repo.prune_versions(document.id, self.settings.collab_versions_kept)
        hooks = get_service(service)
        if hooks.on_store is not None:
            await hooks.on_store(service, doc_id, state, session)
        return True

    # Versions.

    async def _document(self, session: AsyncSession, service: str, doc_id: str) -> CollabDocument:
        document = await CollabRepository(session).get_document(service, doc_id)
        if document is None:
            raise NotFound("document has no stored versions yet")
        return document

    async def versions(
        self, session: AsyncSession, service: str, doc_id: str
    ) -> list[CollabVersion]:
        document = await self._document(session, service, doc_id)
        return list(await CollabRepository(session).list_versions(document.id))

    async def version(
        self, session: AsyncSession, service: str, doc_id: str, number: int
    ) -> CollabVersion:
        document = await self._document(session, service, doc_id)
        version = await CollabRepository(session).get_version(document.id, number)
        if version is None:
            raise NotFound(f"version {number} not found")
        return version

    async def restore_update(
        self, session: AsyncSession, service: str, doc_id: str, number: int
    ) -> bytes:
        """A new update that turns the current document into version `number`'s content."""
        version = await self.version(session, service, doc_id, number)
        current = await self.load_state(session, service, doc_id)
        return restore_update(current, version.state, get_service(service).roots)


def restore_update(current: bytes, target: bytes, roots: dict[str, type[Any]]) -> bytes:
    """Diff that rewrites every declared root of `current` to its content in `target`."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(current)
    old: pycrdt.Doc[Any] = pycrdt.Doc()
    old.apply_update(target)
    before = doc.get_state()
    with doc.transaction(origin="restore"):
        for name, kind in roots.items():
            _copy_root(doc.get(name, type=kind), old.get(name, type=kind))
    return doc.get_update(before)


def _copy_root(dst: Any, src: Any) -> None:
    if isinstance(dst, pycrdt.Text):
        value = str(src)
        if str(dst) != value:
            del dst[:]
            dst += value
    elif isinstance(dst, pycrdt.Map):
        _copy_map(dst, src)
    elif isinstance(dst, pycrdt.Array):
        wanted_items = src.to_py() or []
        if dst.to_py() != wanted_items:
            dst.clear()
            dst.extend(wanted_items)
    elif isinstance(dst, pycrdt.XmlFragment) and str(dst) != str(src):
        del dst.children[:]
        for child in src.children:
            _append_xml(dst, child)


def _copy_map(dst: Any, src: Any) -> None:
    # Nested maps stay shared maps (a sheet's rows/cells): assigning their plain to_py() dicts
    # would turn them into opaque JSON values that clients can no longer edit key by key.
    wanted = dict(src.items())
    for key in list(dst.keys()):
        if key not in wanted:
            del dst[key]
    for key, value in wanted.items():
        current = dst.get(key)
        if isinstance(value, pycrdt.Map):
            if not isinstance(current, pycrdt.Map):
                dst[key] = pycrdt.Map()
                current = dst[key]
            _copy_map(current, value)
            continue
        plain = value.to_py() if isinstance(value, pycrdt.Array | pycrdt.Text) else value
        if isinstance(value, pycrdt.Text):
            plain = str(value)
        old = current.to_py() if isinstance(current, pycrdt.Array) else current
        if isinstance(current, pycrdt.Text):
            old = str(current)
        if old != plain:
            dst[key] = plain


def _append_xml(parent: Any, node: Any) -> None:
    if isinstance(node, pycrdt.XmlText):
        text = parent.children.append(pycrdt.XmlText())
        offset = 0
        for chunk, attrs in node.diff():
            if isinstance(chunk, str):
                text.insert(offset, chunk, attrs)
                offset += len(chunk)
        return
    element = parent.children.append(pycrdt.XmlElement(node.tag, dict(node.attributes)))
    for child in node.children:
        _append_xml(element, child)
