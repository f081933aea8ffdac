"""Many writers in two processes on one document: versions, gapless seqs, replay equality."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.fixtures.app import make_settings
from tests.sync.helpers import replay
from townhall.core.auth.rbac import load_grants
from townhall.core.auth.service import AuthService
from townhall.core.deps import Principal
from townhall.core.platform import Platform, build_platform
from townhall.sync.patching import JsonPatch, MergePatch, Replace
from townhall.sync.service import SyncService, event_dict

ROOT = Path(__file__).resolve().parents[2]


async def clean(platform: Platform) -> None:
    """Delete this test's rows (sync tables cascade from their collections and users)."""
    async with platform.db.session() as session:
        await session.execute(text("DELETE FROM sync_collections"))
        await session.execute(text("DELETE FROM users WHERE email LIKE '%@example.com'"))


async def owner(platform: Platform, email: str) -> Principal:
    async with platform.db.session() as session:
        user = await AuthService(platform.settings, platform.cache).create_user(
            session, email=email, display_name="W", password="password123", roles=("user",)
        )
        return Principal(user=user, family_id=user.id, grants=await load_grants(session, user.id))


async def history(
    platform: Platform, slug: str
) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    """(first snapshot, every event, the document row)."""
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        access = await service.access(None, slug)
        seqs = await service.repo.snapshot_seqs(access.collection.id)
        first = await service.repo.snapshot_at(access.collection.id, seqs[-1][0])
        assert first is not None
        rows = await service.repo.events_after(access.collection.id, first.seq, 10**9)
        doc = await service.repo.get_document(access.collection.id, "doc")
        return first.data, [event_dict(r, slug) for r in rows], doc


@pytest.mark.slow
async def test_two_processes_of_writers(tmp_path: Path, database_url: str) -> None:
    # The full size on PostgreSQL: 2 processes x 4 writers x 500 updates = 4000.
    # SQLite serialises writers through its file lock, so a smaller race shows the same rules.
    writers, updates = (4, 500) if database_url.startswith("postgresql") else (2, 10)
    settings = make_settings(tmp_path, database_url=database_url, sync_snapshots_keep=100)
    async with build_platform(settings) as platform:
        ann = await owner(platform, "writer@example.com")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            await service.create_collection(ann, "race", "race")
            await service.create(ann, "race", "doc", {"count": 0})
            await service.snapshot(ann, "race")  # the first snapshot, at seq 1
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.sync.writer",
                database_url,
                "race",
                str(writers),
                str(updates),
                cwd=ROOT,
                env=env,
            )
            for _ in range(2)
        ]
        codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 900)
        assert codes == [0, 0]
        total = 2 * writers * updates
        snapshot, events, doc = await history(platform, "race")
        assert doc.version == total + 1  # version 1 is the create
        assert doc.data["count"] == total
        assert sorted(v for k, v in doc.data.items() if k != "count") == [updates] * (2 * writers)
        assert [e["seq"] for e in events] == list(range(2, total + 2))  # gapless, in order
        assert [e["version"] for e in events] == list(range(2, total + 2))
        assert replay(snapshot, events) == {"doc": doc.data}
        await clean(platform)


edits = st.one_of(
    st.builds(
        lambda k, v: MergePatch({k: v}),
        st.sampled_from("abcd"),
        st.one_of(
            st.none(), st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(), max_size=3)
        ),
    ),
    st.builds(
        lambda k, v: JsonPatch([{"op": "add", "path": f"/{k}", "value": v}]),
        st.sampled_from("abcd"),
        st.integers(),
    ),
    st.builds(lambda v: Replace({"r": v}), st.integers()),
    st.builds(lambda k: MergePatch({k: {"nested": {k: 1}}}), st.sampled_from("xy")),
)


@hsettings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(sequence=st.lists(st.tuples(st.sampled_from(["d1", "d2"]), edits), min_size=1, max_size=15))
def test_replaying_events_over_first_snapshot_reproduces_documents(
    sequence: list[tuple[str, Any]], tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> None:
    async def run() -> None:
        settings = make_settings(
            tmp_path_factory.mktemp("h"), database_url=database_url, sync_snapshot_every_events=7
        )
        async with build_platform(settings) as platform:
            slug = f"h{os.urandom(4).hex()}"
            ann = await owner(platform, f"{slug}@example.com")
            async with platform.db.session() as session:
                service = SyncService(session, platform.settings)
                await service.create_collection(ann, slug, slug)
                await service.create(ann, slug, "d1", {"a": 0})
                await service.snapshot(ann, slug)
                await service.create(ann, slug, "d2", {})
            for doc_id, edit in sequence:
                async with platform.db.session() as session:  # an engine error fails the test
                    await SyncService(session, platform.settings).find_one_and_update(
                        ann, slug, doc_id, edit
                    )
            async with platform.db.session() as session:
                service = SyncService(session, platform.settings)
                access = await service.access(ann, slug)
                seqs = [s for s, _ in await service.repo.snapshot_seqs(access.collection.id)]
                live = await service.repo.live_documents(access.collection.id)
                for seq in seqs:  # every snapshot replays to the same state
                    snap = await service.repo.snapshot_at(access.collection.id, seq)
                    assert snap is not None
                    rows = await service.repo.events_after(access.collection.id, seq, 10**6)
                    events = [event_dict(r, slug) for r in rows]
                    assert replay(snap.data, events) == {k: v["data"] for k, v in live.items()}
            await clean(platform)

    asyncio.run(run())
