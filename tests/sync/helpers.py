"""Engine-level helpers: a Principal for a signed-up user, bulk edits, replay."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from tests.fixtures.app import signup
from townhall.core.auth.service import AuthService
from townhall.core.deps import Principal, authenticate
from townhall.core.platform import Platform
from townhall.sync.patching import MergePatch, apply_event
from townhall.sync.service import SyncService


async def principal_for(client: httpx.AsyncClient, platform: Platform, email: str) -> Principal:
    tokens = await signup(client, email)
    async with platform.db.session() as session:
        return await authenticate(
            AuthService(platform.settings, platform.cache), session, tokens["access_token"]
        )


async def make_collection(platform: Platform, owner: Principal, slug: str) -> None:
    async with platform.db.session() as session:
        await SyncService(session, platform.settings).create_collection(owner, slug, slug)


async def bump_many(
    platform: Platform, who: Principal, slug: str, doc_id: str, count: int, batch: int = 500
) -> None:
    """`count` merge-patch edits of one document, committed in batches."""
    done = 0
    while done < count:
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            for _ in range(min(batch, count - done)):
                done += 1
                await service.find_one_and_update(who, slug, doc_id, MergePatch({"n": done}))


async def bulk_events(platform: Platform, slug: str, doc_id: str, count: int) -> None:
    """`count` merge-patch events {"n": i} written in bulk (test setup; the engine is tested
    elsewhere): the same rows find_one_and_update would write, without per-edit round trips."""
    from sqlalchemy import insert, update

    from townhall.core.db import utcnow
    from townhall.sync.models import SyncDocument, SyncEvent, SyncStream

    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        access = await service.access(None, slug)
        stream = access.collection.id
        head = await service.repo.lock_head(stream)
        doc = await service.repo.get_document(stream, doc_id)
        assert doc is not None
        now = utcnow()
        rows = [
            {
                "stream": stream,
                "seq": head + i,
                "doc_id": doc_id,
                "version": doc.version + i,
                "op": "merge",
                "patch": {"n": i},
                "actor": "server",
                "ts": now,
            }
            for i in range(1, count + 1)
        ]
        await session.execute(insert(SyncEvent), rows)
        await session.execute(
            update(SyncStream).where(SyncStream.stream == stream).values(seq=head + count)
        )
        await session.execute(
            update(SyncDocument)
            .where(SyncDocument.collection_id == stream, SyncDocument.id == doc_id)
            .values(version=doc.version + count, data={**(doc.data or {}), "n": count})
        )


def replay(snapshot: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Documents `{id: data}` from a snapshot `{id: {version, data}}` plus later events."""
    documents = {k: copy.deepcopy(v["data"]) for k, v in snapshot.items()}
    for event in events:
        apply_event(documents, event)
    return documents
