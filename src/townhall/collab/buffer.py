"""The write-back buffer: Redis lists + a dirty set, or the database in embedded mode.

Saves append (RPUSH) Yjs updates; nothing is ever overwritten, so two leaders posting
different snapshots merge. The flusher removes only what it wrote, in one atomic step.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from townhall.collab.repository import CollabRepository
from townhall.core.errors import PayloadTooLarge

# RPUSH + byte counter + dirty set in one step; refuses when the buffered bytes would exceed
# the document limit.
SAVE_LUA = """
local size = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = string.len(ARGV[1])
if size + n > tonumber(ARGV[2]) then return -1 end
local len = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], n)
redis.call('SADD', KEYS[3], ARGV[3])
return len
"""

# Remove the first ARGV[1] entries (exactly what the flusher wrote) only while it still holds
# the document lock; clear the dirty flag only when nothing newer arrived meanwhile.
TRIM_LUA = """
if redis.call('GET', KEYS[4]) ~= ARGV[4] then return -1 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
local left = redis.call('LLEN', KEYS[1])
if left == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[3])
else
  redis.call('DECRBY', KEYS[2], tonumber(ARGV[2]))
end
return left
"""

UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Batch:
    """Buffered updates read by a flusher, and what it needs to remove exactly those."""

    updates: list[bytes]
    # Embedded mode: the row ids read. PostgreSQL ids may commit out of order, so "id <= the
    # highest read" could include a row committed after the read; only these ids are deleted.
    ids: tuple[int, ...] = ()


class Buffer(Protocol):
    async def push(
        self, session: AsyncSession, service: str, doc_id: str, update: bytes, max_bytes: int
    ) -> int: ...

    async def pending(self, session: AsyncSession, service: str, doc_id: str) -> list[bytes]: ...

    def dirty(self, session: AsyncSession) -> AsyncIterator[tuple[str, str]]: ...


def buffer_key(prefix: str, service: str, doc_id: str) -> str:
    """`docs:doc:{id}`, `sheets:sheet:{id}` (the seed's key shape, pluralised namespace)."""
    return f"{prefix}{service}s:{service}:{doc_id}"


class RedisBuffer:
    """Redis lists of updates per document plus the `collab:dirty` set."""

    def __init__(self, redis: Any, prefix: str = "", batch_size: int = 5000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.batch_size = batch_size
        self.dirty_key = f"{prefix}collab:dirty"
        self._save = redis.register_script(SAVE_LUA)
        self._trim = redis.register_script(TRIM_LUA)
        self._unlock = redis.register_script(UNLOCK_LUA)

    def key(self, service: str, doc_id: str) -> str:
        return buffer_key(self.prefix, service, doc_id)

    def lock_key(self, service: str, doc_id: str) -> str:
        return f"{self.prefix}collab:lock:{service}:{doc_id}"

    async def push(
        self, session: AsyncSession, service: str, doc_id: str, update: bytes, max_bytes: int
    ) -> int:
        key = self.key(service, doc_id)
        length = int(
            await self._save(
                keys=[key, key + ":bytes", self.dirty_key],
                args=[update, max_bytes, f"{service}:{doc_id}"],
            )
        )
        if length < 0:
            raise PayloadTooLarge(
                f"document buffer would exceed {max_bytes} bytes; retry after the next flush"
            )
        return length

    async def pending(self, session: AsyncSession, service: str, doc_id: str) -> list[bytes]:
        items: list[bytes] = await self.redis.lrange(self.key(service, doc_id), 0, -1)
        return items

    async def dirty(self, session: AsyncSession) -> AsyncIterator[tuple[str, str]]:
        # SSCAN walks the dirty set incrementally; never KEYS.
        async for member in self.redis.sscan_iter(self.dirty_key, count=500):
            text = member.decode() if isinstance(member, bytes) else str(member)
            service, _, doc_id = text.partition(":")
            if service and doc_id:
                yield service, doc_id

    async def lock(self, service: str, doc_id: str, ttl_ms: int) -> str | None:
        token = uuid.uuid4().hex
        ok = await self.redis.set(self.lock_key(service, doc_id), token, nx=True, px=ttl_ms)
        return token if ok else None

    async def unlock(self, service: str, doc_id: str, token: str) -> None:
        await self._unlock(keys=[self.lock_key(service, doc_id)], args=[token])

    async def read_batch(self, service: str, doc_id: str) -> Batch:
        items: list[bytes] = await self.redis.lrange(
            self.key(service, doc_id), 0, self.batch_size - 1
        )
        return Batch(items)

    async def remove_batch(self, service: str, doc_id: str, batch: Batch, token: str) -> int:
        """Atomically drop exactly the flushed entries; -1 when the lock was lost (no-op)."""
        key = self.key(service, doc_id)
        left = await self._trim(
            keys=[key, key + ":bytes", self.dirty_key, self.lock_key(service, doc_id)],
            args=[
                len(batch.updates),
                sum(len(u) for u in batch.updates),
                f"{service}:{doc_id}",
                token,
            ],
        )
        return int(left)


class DatabaseBuffer:
    """Embedded mode: the buffer is a table, flushed in the same transaction as the state."""

    async def push(
        self, session: AsyncSession, service: str, doc_id: str, update: bytes, max_bytes: int
    ) -> int:
        repo = CollabRepository(session)
        if await repo.pending_bytes(service, doc_id) + len(update) > max_bytes:
            raise PayloadTooLarge(f"document buffer would exceed {max_bytes} bytes")
        await repo.push_pending(service, doc_id, update)
        return await repo.pending_count(service, doc_id)

    async def pending(self, session: AsyncSession, service: str, doc_id: str) -> list[bytes]:
        return [data for _, data in await CollabRepository(session).pending(service, doc_id)]

    async def dirty(self, session: AsyncSession) -> AsyncIterator[tuple[str, str]]:
        rows: Sequence[tuple[str, str]] = await CollabRepository(session).dirty_documents()
        for row in rows:
            yield row

    async def read_batch(self, session: AsyncSession, service: str, doc_id: str) -> Batch:
        rows = await CollabRepository(session).pending(service, doc_id)
        return Batch([data for _, data in rows], tuple(row_id for row_id, _ in rows))

    async def remove_batch(
        self, session: AsyncSession, service: str, doc_id: str, batch: Batch
    ) -> None:
        if batch.ids:
            await CollabRepository(session).delete_pending(batch.ids)
