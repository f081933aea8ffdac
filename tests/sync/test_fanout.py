"""Fan-out across processes: a writer process's events reach an SSE subscriber in this one,
announced over Redis pub/sub, or (no pub/sub) found by the feed's polling fallback."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.fixtures.app import make_settings, signup
from tests.fixtures.services import REDIS_URL, require
from tests.sync.conftest import API
from tests.sync.test_live import base_url, http, live_server, read_sse  # noqa: F401
from townhall.core.config import Settings
from townhall.sync.live import hub_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["redis", "polling"])
def fanout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fanout: str) -> Settings:
    if fanout == "redis":
        require("Redis", REDIS_URL, 6379)
        # A poll interval longer than the test's patience: only pub/sub can deliver in time.
        extra = {
            "redis_url": REDIS_URL,
            "pubsub_channel_prefix": f"test-{uuid.uuid4().hex[:8]}:",
            "sync_poll_seconds": 120.0,
        }
    else:
        extra = {"sync_poll_seconds": 0.3}
    return make_settings(tmp_path, database_url=database_url, worker_in_process=False, **extra)


async def test_events_of_another_process_reach_sse_subscribers(
    app: FastAPI,
    http: httpx.AsyncClient,  # noqa: F811
    settings: Settings,
    database_url: str,
) -> None:
    ann = await signup(http, "ann@example.com")
    made = await http.post(API, json={"name": "B", "slug": "board"}, headers=ann["headers"])
    assert made.status_code == 201
    created = await http.post(
        f"{API}/board/documents", json={"id": "doc", "data": {"count": 0}}, headers=ann["headers"]
    )
    assert created.status_code == 201
    hub = hub_of(app.state.platform)
    async with http.stream("GET", f"{API}/board/events", headers=ann["headers"]) as response:
        (first,) = await read_sse(response, 1)
        assert first[0] == "1"
        async with asyncio.timeout(10):  # the feed has subscribed to pub/sub and read its head
            while "board" not in hub.feeds or hub.feeds["board"].last_seq is None:
                await asyncio.sleep(0.02)
        pubsub = [settings.redis_url, settings.pubsub_channel_prefix] if settings.redis_url else []
        writer = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.sync.writer", database_url, "board", "1", "5"),
            *[str(arg) for arg in pubsub],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert await asyncio.wait_for(writer.wait(), 60) == 0
        events = await read_sse(response, 5)
    assert [int(i) for i, _, _ in events] == [2, 3, 4, 5, 6]
    assert [data["patch"]["count"] for _, _, data in events] == [1, 2, 3, 4, 5]
