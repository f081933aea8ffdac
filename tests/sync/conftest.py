"""Sync fixtures: users with tokens and a collection owned by the first one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import townhall.sync.models  # noqa: F401  (the tables are emptied between tests)
from tests.fixtures.app import make_settings, signup
from townhall.core.config import Settings

API = "/api/v1/sync/collections"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # No in-process job worker: its SQLite writes only contend with the teardown here.
    return make_settings(tmp_path, database_url=database_url, worker_in_process=False)


@pytest.fixture
async def ann(client: httpx.AsyncClient) -> dict[str, Any]:
    return await signup(client, "ann@example.com", display_name="Ann")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> dict[str, Any]:
    return await signup(client, "bob@example.com", display_name="Bob")


@pytest.fixture
async def board(client: httpx.AsyncClient, ann: dict[str, Any]) -> str:
    response = await client.post(
        API, json={"name": "Board", "slug": "board"}, headers=ann["headers"]
    )
    assert response.status_code == 201, response.text
    return "board"
