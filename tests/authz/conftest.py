"""The authorization matrix runs against one live server and one world per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.authz.world import World, build, close
from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_existing_tables
from tests.sync.test_live import LiveServer
from townhall.main import create_app


@pytest.fixture(scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, sqlite_database_url: str
) -> AsyncIterator[World]:
    # Embedded defaults; no background worker or flusher: the matrix only asks who may do what.
    settings = make_settings(
        tmp_path_factory.mktemp("authz"),
        database_url=sqlite_database_url,
        worker_in_process=False,
        collab_flush_seconds=0,
        realtime_heartbeat_seconds=0.5,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        server = LiveServer(app)
        await server.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            built = await build(server.url, http, app.state.platform)
            try:
                yield built
            finally:
                await close(built)
                await server.stop()
    await empty_existing_tables(sqlite_database_url)
