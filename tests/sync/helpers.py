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


def replay(snapshot: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Documents `{id: data}` from a snapshot `{id: {version, data}}` plus later events."""
    documents = {k: copy.deepcopy(v["data"]) for k, v in snapshot.items()}
    for event in events:
        apply_event(documents, event)
    return documents
