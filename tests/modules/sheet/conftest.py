"""Sheets fixtures: the Docs app fixture, small limits, a workbook shared with three roles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.fixtures.app import make_settings, signup
from tests.modules.doc.conftest import app  # noqa: F401  (same app fixture as the Docs tests)

from townhall.core.config import Settings

MAX_IMPORT_BYTES = 300_000
MAX_IMPORT_CELLS = 5_000
MAX_RANGE_CELLS = 2_000
W = "/api/v1/sheet/workbooks"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Tests flush the collab buffer themselves (app.state.collab.flush()).
    return make_settings(
        tmp_path,
        database_url=database_url,
        collab_flush_seconds=0,
        worker_in_process=False,
        sheet_max_import_bytes=MAX_IMPORT_BYTES,
        sheet_max_import_unzipped_bytes=5_000_000,
        sheet_max_import_cells=MAX_IMPORT_CELLS,
        sheet_max_range_cells=MAX_RANGE_CELLS,
    )


@dataclass
class Team:
    """A workbook with an owner, an editor and a viewer, and an outsider."""

    owner: dict[str, Any]
    editor: dict[str, Any]
    viewer: dict[str, Any]
    outsider: dict[str, Any]
    workbook_id: str
    sheet_id: str

    def headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        user: dict[str, Any] = getattr(self, who)
        return dict(user["headers"])

    @property
    def url(self) -> str:
        return f"{W}/{self.workbook_id}"


async def write(
    client: httpx.AsyncClient,
    team: Team,
    a1: str,
    values: list[list[Any]],
    who: str = "owner",
    sheet: str | None = None,
) -> httpx.Response:
    return await client.put(
        f"{team.url}/sheets/{sheet or team.sheet_id}/range",
        json={"a1": a1, "values": values},
        headers=team.headers(who),
    )


async def read(
    client: httpx.AsyncClient, team: Team, a1: str, who: str = "owner", sheet: str | None = None
) -> dict[str, Any]:
    response = await client.get(
        f"{team.url}/sheets/{sheet or team.sheet_id}/range",
        params={"a1": a1},
        headers=team.headers(who),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def team(client: httpx.AsyncClient, app: FastAPI) -> Team:  # noqa: F811
    owner = await signup(client, "owner@example.com", display_name="Olive Owner")
    editor = await signup(client, "editor@example.com", display_name="Ed Editor")
    viewer = await signup(client, "viewer@example.com", display_name="Vi Viewer")
    outsider = await signup(client, "outsider@example.com", display_name="Otto Outsider")
    response = await client.post(W, json={"name": "Budget"}, headers=owner["headers"])
    assert response.status_code == 201, response.text
    workbook_id = response.json()["id"]
    for email, role in (("editor@example.com", "editor"), ("viewer@example.com", "viewer")):
        added = await client.post(
            f"{W}/{workbook_id}/members",
            json={"email": email, "role": role},
            headers=owner["headers"],
        )
        assert added.status_code == 201, added.text
    sheets = await client.get(f"{W}/{workbook_id}/sheets", headers=owner["headers"])
    assert sheets.status_code == 200, sheets.text
    return Team(owner, editor, viewer, outsider, workbook_id, sheets.json()[0]["id"])
