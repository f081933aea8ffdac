"""The Python client: replica via HTTP pull (reset after 10k events), persistence, live WS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.fixtures.app import make_settings, signup
from tests.sync.helpers import bulk_events, make_collection, principal_for
from tests.sync.test_live import (  # noqa: F401  (real-server fixtures)
    LiveServer,
    base_url,
    http,
    live_server,
)
from townhall.core.config import Settings
from townhall.core.platform import Platform
from townhall.sync.client import SyncClient, SyncClientError
from townhall.sync.service import SyncService


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path, database_url=database_url, sync_catchup_max_events=2000, worker_in_process=False
    )


async def test_reconnect_after_10k_events_via_snapshot_and_tail(
    app: FastAPI, client: httpx.AsyncClient, platform: Platform, tmp_path: Path
) -> None:
    ann = await principal_for(client, platform, "ann@example.com")
    tokens = await signup(client, "reader@example.com")
    await make_collection(platform, ann, "big")
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        await service.create(ann, "big", "d", {"n": 0})
        await service.create(ann, "big", "other", {"keep": True})
        await service.set_member(ann, "big", "reader@example.com", "read")
    transport = httpx.ASGITransport(app=app)
    store = tmp_path / "replica.db"
    async with SyncClient(
        "http://testserver", tokens["access_token"], transport=transport, persist=store
    ) as sc:
        assert await sc.pull("big") == 2
        assert sc.vector == {"big": 2}
    await bulk_events(platform, "big", "d", 10_000)  # the client is away
    async with platform.db.session() as session:
        await SyncService(session, platform.settings).snapshot(None, "big")
    await bulk_events(platform, "big", "d", 10)  # a tail after the newest snapshot
    async with SyncClient(
        "http://testserver", tokens["access_token"], transport=transport, persist=store
    ) as sc:
        assert sc.vector == {"big": 2}  # resumed from its persisted state vector
        await sc.pull("big")
        assert sc.vector == {"big": 10_012}
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            access = await service.access(None, "big")
            live = await service.repo.live_documents(access.collection.id)
        assert sc.documents("big") == {k: v["data"] for k, v in live.items()}
        assert sc.documents("big")["d"] == {"n": 10}
        await sc.ack("big")
        with pytest.raises(SyncClientError) as denied:
            await sc.patch("big", "d", {"n": -1})
        assert denied.value.status == 403


async def test_live_follow_over_websocket(http: httpx.AsyncClient, base_url: str) -> None:  # noqa: F811
    ann = await signup(http, "ann@example.com")
    async with SyncClient(base_url, ann["access_token"]) as sc:
        await sc._call("POST", "/api/v1/sync/collections", json={"name": "L", "slug": "live"})
        await sc.create("live", {"title": "a"}, doc_id="x")
        await sc.patch("live", "x", {"done": True}, version=1)
        await sc.wait_for("live", 2)
        assert sc.documents("live") == {"x": {"title": "a", "done": True}}
        await sc.delete("live", "x")
        await sc.wait_for("live", 3)
        assert sc.documents("live") == {}


async def test_follow_reconnects_from_its_state_vector(
    app: FastAPI,
    client: httpx.AsyncClient,
    live_server: LiveServer,  # noqa: F811
) -> None:
    ann = await signup(client, "ann@example.com")
    transport = httpx.ASGITransport(app=app)  # writes reach the app while its port is down
    writer = SyncClient("http://testserver", ann["access_token"], transport=transport)
    await writer._call("POST", "/api/v1/sync/collections", json={"name": "L", "slug": "live"})
    await writer.create("live", {"n": 0}, doc_id="x")
    seen: list[int] = []
    async with SyncClient(live_server.url, ann["access_token"]) as sc:

        async def consume() -> None:
            async for message in sc.follow(["live"], max_delay=0.5):
                if message["type"] == "event":
                    seen.append(message["seq"])
                if sc.vector.get("live", 0) >= 4:
                    return

        task = asyncio.create_task(consume())
        async with asyncio.timeout(15):
            while sc.vector.get("live", 0) < 1:
                await asyncio.sleep(0.02)
        await live_server.stop()  # the connection drops; writes go on meanwhile
        await writer.patch("live", "x", {"n": 1})
        await writer.patch("live", "x", {"n": 2})
        await live_server.start()
        await writer.patch("live", "x", {"n": 3})
        await asyncio.wait_for(task, 20)
        assert seen == [1, 2, 3, 4]  # nothing missed, nothing twice
        assert sc.documents("live") == {"x": {"n": 3}}
    await writer.close()
