"""Docs fixtures: an app without background flusher, four users and a shared workspace."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import Image
from tests.fixtures.app import make_settings, signup
from tests.fixtures.database import empty_existing_tables

from townhall.core.config import Settings
from townhall.main import create_app

MAX_IMAGE_BYTES = 200_000


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Tests flush the collab buffer themselves (app.state.collab.flush()).
    return make_settings(
        tmp_path,
        database_url=database_url,
        collab_flush_seconds=0,
        worker_in_process=False,
        doc_max_image_bytes=MAX_IMAGE_BYTES,
    )


@pytest.fixture
async def app(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    # Other apps' models may be ahead of their migrations: empty only the tables that exist.
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application
    await empty_existing_tables(database_url)


def png_bytes(width: int = 16, height: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Team:
    """A workspace with an owner, an editor and a viewer, an outsider, and one page."""

    owner: dict[str, Any]
    editor: dict[str, Any]
    viewer: dict[str, Any]
    outsider: dict[str, Any]
    workspace_id: str
    page_id: str

    def headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        user: dict[str, Any] = getattr(self, who)
        return dict(user["headers"])


async def make_page(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    workspace_id: str,
    title: str,
    parent_id: str | None = None,
) -> str:
    response = await client.post(
        f"/api/v1/doc/workspaces/{workspace_id}/pages",
        json={"title": title, "parent_id": parent_id},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    page_id: str = response.json()["id"]
    return page_id


async def tree_titles(
    client: httpx.AsyncClient, headers: dict[str, str], workspace_id: str
) -> list[Any]:
    """The workspace tree as nested [title, [children...]] lists."""
    response = await client.get(f"/api/v1/doc/workspaces/{workspace_id}/pages", headers=headers)
    assert response.status_code == 200, response.text

    def walk(nodes: list[dict[str, Any]]) -> list[Any]:
        return [[n["title"], walk(n["children"])] for n in nodes]

    return walk(response.json())


async def build_team(client: httpx.AsyncClient, tag: str = "") -> Team:
    """Sign up the four users (`owner<tag>@example.com`, ...) and share a workspace and a page."""
    names = {"owner": "Olive Owner", "editor": "Ed Editor", "viewer": "Vi Viewer"}
    names["outsider"] = "Otto Outsider"
    users = {
        who: await signup(client, f"{who}{tag}@example.com", display_name=name)
        for who, name in names.items()
    }
    owner = users["owner"]
    response = await client.post(
        "/api/v1/doc/workspaces", json={"name": "Team"}, headers=owner["headers"]
    )
    assert response.status_code == 201, response.text
    workspace_id = response.json()["id"]
    for role in ("editor", "viewer"):
        added = await client.post(
            f"/api/v1/doc/workspaces/{workspace_id}/members",
            json={"email": f"{role}{tag}@example.com", "role": role},
            headers=owner["headers"],
        )
        assert added.status_code == 201, added.text
    page_id = await make_page(client, owner["headers"], workspace_id, "Home")
    return Team(
        users["owner"], users["editor"], users["viewer"], users["outsider"], workspace_id, page_id
    )


@pytest.fixture
async def team(client: httpx.AsyncClient, app: FastAPI) -> Team:
    return await build_team(client)
