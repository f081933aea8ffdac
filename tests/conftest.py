"""Shared fixtures: settings, a migrated database per backend, the app and an HTTP client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_tables
from townhall.core.config import Settings
from townhall.core.platform import Platform
from townhall.main import create_app

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.browser"]

# Many tests start `townhall` processes: with bytecode writes off (some machines set this),
# each of them would compile the whole app and its libraries again (seconds of CPU apiece).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
async def app(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application
    await empty_tables(database_url)


@pytest.fixture
def platform(app: FastAPI) -> Platform:
    platform: Platform = app.state.platform
    return platform


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
