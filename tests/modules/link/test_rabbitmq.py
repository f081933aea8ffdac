"""The pipeline end to end on RabbitMQ: the API enqueues, a worker consumes the three queues."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fixtures.app import make_settings
from tests.fixtures.services import RABBITMQ_URL, require

from townhall.core.config import Settings
from townhall.core.platform import Platform

from .conftest import Site, WaitFn

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def settings(tmp_path: Path, database_url: str, site: Site) -> Settings:
    require("RabbitMQ", RABBITMQ_URL, 5672)
    return make_settings(
        tmp_path,
        database_url=database_url,
        broker_url=RABBITMQ_URL,
        job_queue_prefix=f"test-link-{uuid.uuid4().hex[:8]}-",
        outbound_allowlist=["127.0.0.1/32"],
        link_youtube_oembed_url=f"{site.url}/oembed",
        link_fetch_timeout_seconds=1.0,
    )


@pytest.fixture
async def worker(platform: Platform) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        platform.jobs.run_worker(stop, ["scrape", "thumbnail", "tag"], schedules=False)
    )
    yield
    stop.set()
    await asyncio.wait_for(task, 30)


@pytest.mark.usefixtures("worker")
async def test_pipeline_on_rabbitmq(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    ok = await client.post(
        "/api/v1/links", json={"url": site.page("article")}, headers=user["headers"]
    )
    missing = await client.post(
        "/api/v1/links", json={"url": site.page("missing")}, headers=user["headers"]
    )
    done = await wait_done(ok.json()["id"], user["headers"], timeout=30)
    assert done["status"] == "completed"
    assert done["thumbnails"]["small"]
    assert any(t["is_auto_generated"] for t in done["tags"])
    failed = await wait_done(missing.json()["id"], user["headers"], timeout=30)
    assert failed["status"] == "failed"
    assert failed["retry_count"] == 3
    assert site.hits["/missing"] == 3
