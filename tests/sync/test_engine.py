"""Engine: edit functions, gapless seqs, snapshots, catch-up resets, compaction safety, acks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.fixtures.app import make_settings
from tests.sync.helpers import bump_many, make_collection, principal_for, replay
from townhall.core.config import Settings
from townhall.core.db import utcnow
from townhall.core.errors import Conflict, NotFound, Unprocessable
from townhall.core.platform import Platform
from townhall.sync.models import SyncEvent, SyncSnapshot
from townhall.sync.patching import JsonPatch, MergePatch
from townhall.sync.service import SyncService, find_one_and_update


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        worker_in_process=False,
        sync_snapshot_every_events=20,
        sync_catchup_max_events=60,
        sync_event_retention_count=10,
        sync_snapshots_keep=2,
    )


async def all_events(platform: Platform, slug: str) -> list[dict[str, Any]]:
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        access = await service.access(None, slug)
        rows = await service.repo.events_after(access.collection.id, 0, 1_000_000)
        from townhall.sync.service import event_dict

        return [event_dict(r, slug) for r in rows]


class TestFindOneAndUpdate:
    async def test_edit_function_and_patch_recorded(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            await service.create(ann, "s1", "d", {"count": 0, "items": []})
            result = await find_one_and_update(
                session,
                ann,
                "s1",
                "d",
                lambda doc: MergePatch({"count": doc["count"] + 1}),
                settings=platform.settings,
            )
            assert result.document.version == 2
            assert result.op == "merge"
            assert result.patch == {"count": 1}  # the diff is the edit, not a document diff
            await service.find_one_and_update(
                ann, "s1", "d", JsonPatch([{"op": "add", "path": "/items/-", "value": "x"}])
            )
            replaced = await service.find_one_and_update(ann, "s1", "d", lambda doc: {"fresh": 1})
            assert replaced.op == "replace"
            with pytest.raises(Conflict) as stale:
                await service.find_one_and_update(ann, "s1", "d", MergePatch({"a": 1}), 2)
            assert stale.value.extra["current_version"] == 4
            with pytest.raises(NotFound):
                await service.find_one_and_update(ann, "s1", "zz", MergePatch({"a": 1}))
        events = await all_events(platform, "s1")
        assert [e["seq"] for e in events] == [1, 2, 3, 4]
        assert [e["op"] for e in events] == ["create", "merge", "patch", "replace"]
        assert replay({}, events) == {"d": {"fresh": 1}}

    async def test_failed_request_leaves_no_document_without_event(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).create(ann, "s1", "d", {"n": 0})

        async def edit_then_die() -> None:
            async with platform.db.session() as session:
                service = SyncService(session, platform.settings)
                await service.find_one_and_update(ann, "s1", "d", MergePatch({"n": 1}))
                raise RuntimeError("process died before commit")

        with pytest.raises(RuntimeError):
            await edit_then_die()
        async with platform.db.session() as session:
            doc = await SyncService(session, platform.settings).get_document(ann, "s1", "d")
            assert doc.version == 1
            assert doc.data == {"n": 0}
        assert [e["seq"] for e in await all_events(platform, "s1")] == [1]


class TestSnapshotsAndCatchUp:
    async def test_periodic_snapshots_replay_and_reset(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).create(ann, "s1", "d", {"n": 0})
        await bump_many(platform, ann, "s1", "d", 89)
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            access = await service.access(ann, "s1")
            snaps = await service.repo.snapshot_seqs(access.collection.id)
            assert [s for s, _ in snaps] == [80, 60]  # every 20, newest 2 kept
            near = await service.catch_up(access, 84)
            assert not near.reset
            assert [e["seq"] for e in near.events] == list(range(85, 91))
            far = await service.catch_up(access, 10)  # 80 behind > 60
            assert far.reset
            assert far.snapshot_seq == 80
            assert [e["seq"] for e in far.events] == list(range(81, 91))
            assert replay(far.snapshot or {}, far.events) == {"d": {"n": 89}}
            future = await service.catch_up(access, 10_000)
            assert future.reset
            with pytest.raises(Unprocessable):
                await service.catch_up(access, -1)

    async def test_compaction_never_deletes_uncovered_events(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).create(ann, "s1", "d", {"n": 0})
        await bump_many(platform, ann, "s1", "d", 49)  # head 50, snapshots at 20 and 40
        later = utcnow() + timedelta(days=30)
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            # The newest snapshot is fresh, so no new one: only events <= 40 may go.
            service.settings = platform.settings.model_copy(
                update={"sync_snapshot_every_minutes": 10_000_000}
            )
            totals = await service.compact(now=later)
        assert totals["events"] == 40
        events = await all_events(platform, "s1")
        assert events[0]["seq"] == 41
        assert events[-1]["seq"] == 50
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            access = await service.access(ann, "s1")
            stale = await service.catch_up(access, 5)
            assert stale.reset
            assert stale.snapshot_seq == 40
            assert replay(stale.snapshot or {}, stale.events) == {"d": {"n": 49}}
            # A fresh snapshot at the head covers everything, but the newest 10 are kept.
            await service.snapshot(ann, "s1")
            assert (await service.compact(now=later))["events"] == 0  # count retention: head - 10
        events = await all_events(platform, "s1")
        assert events[0]["seq"] == 41  # 50 - 10 + 1 = 41: nothing beyond the retention count

    async def test_recent_events_are_kept(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).create(ann, "s1", "d", {"n": 0})
        await bump_many(platform, ann, "s1", "d", 39)
        async with platform.db.session() as session:
            totals = await SyncService(session, platform.settings).compact()
        assert totals["events"] == 0  # younger than the retention age
        assert len(await all_events(platform, "s1")) == 40


class TestClientStates:
    async def test_ack_records_and_prunes(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            await service.create(ann, "s1", "d", {"n": 0})
            assert await service.ack(ann, "phone-1", {"s1": 1}) == {"s1": 1}
            with pytest.raises(Unprocessable):
                await service.ack(ann, "phone-1", {"s1": 99})
            with pytest.raises(Unprocessable):
                await service.ack(ann, "phone-1", {"s1": "x"})
            with pytest.raises(Unprocessable):
                await service.ack(ann, "bad id!", {"s1": 1})
            with pytest.raises(NotFound):
                await service.ack(ann, "phone-1", {"other": 1})
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            access = await service.access(ann, "s1")
            assert len(await service.repo.client_states(access.collection.id)) == 1
            totals = await service.compact(now=utcnow() + timedelta(days=60))
            assert totals["clients"] == 1


async def test_snapshot_rows_match_documents(client: httpx.AsyncClient, platform: Platform) -> None:
    ann = await principal_for(client, platform, "ann@example.com")
    await make_collection(platform, ann, "s1")
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        await service.create(ann, "s1", "a", {"x": 1})
        await service.create(ann, "s1", "b", {"x": 2})
        await service.delete(ann, "s1", "a")
        snap = await service.snapshot(ann, "s1")
        again = await service.snapshot(ann, "s1")
        assert again.seq == snap.seq == 3
    async with platform.db.session() as session:
        rows = (await session.execute(select(SyncSnapshot))).scalars().all()
        assert [r.data for r in rows] == [{"b": {"version": 1, "data": {"x": 2}}}]
        assert (await session.execute(select(SyncEvent.seq))).scalars().all() == [1, 2, 3]
