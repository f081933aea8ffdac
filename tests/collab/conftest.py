"""Collab fixtures: a flusher-less app, a live uvicorn server, Redis-backed variants."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_tables
from tests.fixtures.services import REDIS_URL, free_port, require

from townhall.core.config import Settings
from townhall.main import create_app


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # No in-process flusher or collab.flush cron: tests flush explicitly.
    return make_settings(
        tmp_path, database_url=database_url, collab_flush_seconds=0, worker_in_process=False
    )


@pytest.fixture
def doc_id() -> str:
    return uuid.uuid4().hex


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app whose lifespan already runs on a free port; yields ws://host:port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[str]:
    async with serve(app) as address:
        yield address


@pytest.fixture
def redis_settings(tmp_path: Path, database_url: str) -> Settings:
    require("Redis", REDIS_URL, 6379)
    return make_settings(
        tmp_path,
        database_url=database_url,
        redis_url=REDIS_URL,
        collab_flush_seconds=0,
        worker_in_process=False,
        collab_key_prefix=f"test-{uuid.uuid4().hex[:12]}:",
    )


@pytest.fixture
async def redis_app(redis_settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(redis_settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application
        redis = application.state.collab.redis
        async for key in redis.scan_iter(match=f"{redis_settings.collab_key_prefix}*"):
            await redis.delete(key)
    await empty_tables(database_url)


@pytest.fixture
async def redis_client(redis_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=redis_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
