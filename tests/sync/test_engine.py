"""Engine: edit functions, gapless seqs, snapshots, catch-up resets, compaction safety, acks."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from tests.fixtures.app import make_settings
from tests.sync.helpers import bulk_events, bump_many, make_collection, principal_for, replay
from townhall.core.config import Settings
from townhall.core.db import utcnow
from townhall.core.errors import Conflict, NotFound, Unprocessable
from townhall.core.jobs import JobContext
from townhall.core.jobs.registry import get_task
from townhall.core.platform import Platform
from townhall.modules.registry import load_apps
from townhall.sync.models import SyncClientState, SyncEvent, SyncSnapshot
from townhall.sync.patching import JsonPatch, MergePatch, apply_event
from townhall.sync.service import SyncService, find_one_and_update

ROOT = Path(__file__).resolve().parents[2]


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

    async def test_killed_writer_leaves_no_document_without_its_event(
        self, client: httpx.AsyncClient, platform: Platform, database_url: str
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).create(ann, "s1", "doc", {"count": 0})
        writer = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.sync.writer", database_url, "s1", "2", "100000"),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            async with asyncio.timeout(60):
                while len(await all_events(platform, "s1")) < 20:
                    await asyncio.sleep(0.05)
        finally:
            writer.send_signal(signal.SIGKILL)  # mid-write: it never stops writing on its own
            await writer.wait()
        events = await all_events(platform, "s1")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            doc = await service.get_document(ann, "s1", "doc")
            head = await service.repo.head((await service.access(ann, "s1")).collection.id)
        assert [e["seq"] for e in events] == list(range(1, head + 1))
        assert [e["version"] for e in events] == list(range(1, doc.version + 1))
        assert replay({}, events) == {"doc": doc.data}
        assert doc.data["count"] == doc.version - 1

    async def test_opposite_order_transactions_do_not_deadlock(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            await service.create(ann, "s1", "a", {})
            await service.create(ann, "s1", "b", {})
        started = asyncio.Event()

        async def edit(order: str, name: str) -> None:
            async with platform.db.session() as session:
                service = SyncService(session, platform.settings)
                for position, doc_id in enumerate(order):
                    await service.find_one_and_update(ann, "s1", doc_id, MergePatch({name: 1}))
                    if name == "one" and position == 0:
                        started.set()
                        await asyncio.sleep(0.3)  # "two" starts on b meanwhile

        async def second() -> None:
            await started.wait()
            await edit("ba", "two")

        # Each edit locks the stream before a document, so "two" waits instead of deadlocking.
        await asyncio.wait_for(asyncio.gather(edit("ab", "one"), second()), 60)
        events = await all_events(platform, "s1")
        assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
        assert replay({}, events) == {"a": {"one": 1, "two": 1}, "b": {"one": 1, "two": 1}}


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

    async def test_catch_up_of_a_reader_never_writes(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        reader = await principal_for(client, platform, "reader@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            await service.create(ann, "s1", "d", {"n": 0})
            await service.set_member(ann, "s1", "reader@example.com", "read")
        await bulk_events(platform, "s1", "d", 100)  # no snapshot yet; 101 > 60 behind
        for since in (0, 5, 500):  # too far behind, and ahead of the server
            documents: dict[str, Any] = {}
            pos = since
            while True:
                async with platform.db.session() as session:
                    if platform.db.engine.dialect.name == "postgresql":
                        await session.execute(text("SET TRANSACTION READ ONLY"))
                    service = SyncService(session, platform.settings)
                    page = await service.catch_up(await service.access(reader, "s1"), pos)
                if page.reset:
                    documents = replay(page.snapshot or {}, [])
                for event in page.events:
                    apply_event(documents, event)
                pos = page.last_seq
                if not page.more:
                    break
            assert pos == 101
            assert documents == {"d": {"n": 100}}
        async with platform.db.session() as session:
            assert (await session.execute(select(SyncSnapshot))).scalars().all() == []

    async def test_snapshot_every_t_minutes_on_write(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        hourly = platform.settings.model_copy(update={"sync_snapshot_every_events": 0})
        fast = hourly.model_copy(update={"sync_snapshot_every_minutes": 0.1 / 60})  # 0.1 s

        async def write(settings: Settings, n: int) -> None:
            async with platform.db.session() as session:
                await SyncService(session, settings).find_one_and_update(
                    ann, "s1", "d", MergePatch({"n": n})
                )

        async with platform.db.session() as session:
            await SyncService(session, hourly).create(ann, "s1", "d", {"n": 0})
        await write(hourly, 1)  # the collection is younger than an hour: no snapshot
        await asyncio.sleep(0.2)
        await write(fast, 2)  # older than T: this write snapshots
        await write(hourly, 3)  # the snapshot is fresh
        async with platform.db.session() as session:
            rows = (await session.execute(select(SyncSnapshot))).scalars().all()
        assert [(r.seq, r.data) for r in rows] == [(3, {"d": {"version": 3, "data": {"n": 2}}})]


class TestCompactionJob:
    def test_hourly_job_is_registered(self) -> None:
        for app in load_apps():
            for name in app.task_modules:
                importlib.import_module(name)
        spec = get_task("sync.compact")
        assert spec.cron == "0 * * * *"
        assert spec.policy.retries == 2

    async def test_job_compacts(self, client: httpx.AsyncClient, platform: Platform) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            await service.create(ann, "s1", "d", {"n": 0})
            await service.ack(ann, "old-phone", {"s1": 1})
        async with platform.db.session() as session:
            await session.execute(
                update(SyncClientState).values(updated_at=utcnow() - timedelta(days=90))
            )
        context = JobContext(
            platform=platform,
            task="sync.compact",
            job_id="j1",
            queue="default",
            attempt=1,
            max_attempts=3,
        )
        await get_task("sync.compact").fn(context)
        async with platform.db.session() as session:
            assert (await session.execute(select(SyncClientState))).scalars().all() == []
            assert [r.seq for r in (await session.execute(select(SyncSnapshot))).scalars()] == [1]


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
