"""The Sheets pages render (list, grid with the front-end contract) and the demo loads."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from tests.fixtures.app import signup
from tests.modules.sheet.conftest import Team, W, read

from townhall.core.auth.repository import UserRepository
from townhall.core.platform import Platform
from townhall.modules.sheet.demo import WORKBOOK, load


def _browser(client: httpx.AsyncClient, user: dict[str, object]) -> None:
    client.cookies.set("th_access", str(user["access_token"]))


async def test_list_page_and_create_form(client: httpx.AsyncClient, team: Team) -> None:
    assert (await client.get("/sheets")).status_code in (303, 307)
    _browser(client, team.owner)
    page = await client.get("/sheets")
    assert page.status_code == 200
    assert 'action="/sheets/new"' in page.text
    assert "Budget" in page.text
    assert 'name="viewport"' in page.text  # phone-usable layout
    created = await client.post("/sheets/new", data={"name": "Trip  plan"})
    assert created.status_code == 303
    workbook_id = created.headers["location"].rsplit("/", 1)[-1]
    names = [w["name"] for w in (await client.get(W, headers=team.headers("owner"))).json()]
    assert "Trip plan" in names
    foreign = await client.post(
        "/sheets/new", data={"name": "x"}, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    grid = await client.get(f"/sheets/w/{workbook_id}")
    assert grid.status_code == 200


async def test_grid_page_contract(client: httpx.AsyncClient, team: Team) -> None:
    for who, can_edit in (("owner", "true"), ("editor", "true"), ("viewer", "false")):
        client.cookies.clear()
        _browser(client, getattr(team, who))
        page = await client.get(f"/sheets/w/{team.workbook_id}")
        assert page.status_code == 200, who
        tag = re.search(r'<div id="sheet-grid"[^>]*>', page.text)
        assert tag is not None
        assert f'data-workbook-id="{team.workbook_id}"' in tag.group(0)
        assert f'data-can-edit="{can_edit}"' in tag.group(0)
        assert re.search(r'data-user-color="#[0-9a-f]{6}"', tag.group(0))
        assert 'data-user-name="' in tag.group(0)
        assert (
            "import { mountSheetApp } from '/static/sheet/grid.js'; "
            "mountSheetApp(document.getElementById('sheet-grid'))" in page.text
        )
        assert '<link rel="stylesheet" href="/static/sheet/grid.css">' in page.text
    client.cookies.clear()
    _browser(client, team.outsider)
    assert (await client.get(f"/sheets/w/{team.workbook_id}")).status_code == 404


async def test_static_folder_is_mounted(client: httpx.AsyncClient) -> None:
    formula = await client.get("/static/sheet/formula.js")
    assert formula.status_code == 200
    assert "Workbook" in formula.text
    assert (await client.get("/static/app.css")).status_code == 200


async def test_import_form_shows_errors(client: httpx.AsyncClient, team: Team) -> None:
    _browser(client, team.owner)
    bad = await client.post(
        "/sheets/import", files={"file": ("x.xlsx", b"garbage", "application/octet-stream")}
    )
    assert bad.status_code == 400
    assert "not a readable XLSX" in bad.text
    good = await client.post("/sheets/import", files={"file": ("t.csv", b"1,2\n", "text/csv")})
    assert good.status_code == 303
    assert good.headers["location"].startswith("/sheets/w/")


async def test_demo_loads_once_and_is_shared(
    client: httpx.AsyncClient, app: FastAPI, platform: Platform
) -> None:
    alice_tokens = await signup(client, "alice@example.com", display_name="Alice Kim")
    bob_tokens = await signup(client, "bob@example.com", display_name="Bob Lee")
    async with platform.db.session() as session:
        repo = UserRepository(session)
        users = {e: await repo.get_by_email(e) for e in ("alice@example.com", "bob@example.com")}
        await load(platform, session, {k: v for k, v in users.items() if v is not None})
    async with platform.db.session() as session:
        await load(platform, session, {k: v for k, v in users.items() if v is not None})
    alice = {"Authorization": f"Bearer {alice_tokens['access_token']}"}
    bob = {"Authorization": f"Bearer {bob_tokens['access_token']}"}
    books = (await client.get(W, headers=alice)).json()
    assert [(b["name"], b["role"], b["sheet_count"]) for b in books] == [(WORKBOOK, "owner", 2)]
    shared = (await client.get(W, headers=bob)).json()
    assert [(b["name"], b["role"]) for b in shared] == [(WORKBOOK, "editor")]
    team = Team(alice_tokens, bob_tokens, {}, {}, books[0]["id"], "Summary")
    summary = await read(client, team, "A1:B10", sheet="Summary")
    values = {row[0]: row[1] for row in summary["values"]}
    spent = sum(
        sum(month)
        for month in (
            (1200, 1200, 1200, 1200, 1250, 1250),
            (410.5, 385.2, 402.75, 390, 420.1, 398.4),
            (95, 95, 110, 95, 95, 120),
            (180.3, 165.9, 150.2, 120.75, 110, 98.6),
            (150, 90, 210, 75, 160, 240),
        )
    )
    assert values["Spent so far"] == round(spent, 2) or abs(values["Spent so far"] - spent) < 1e-6
    assert values["Income so far"] == 25200.0
    assert abs(values["Saved"] - (25200 - spent)) < 1e-6
    assert values["On track?"] in ("Yes", "Spend less")
    assert not any(isinstance(v, str) and v.startswith("#") for v in values.values())
    sheets = (await client.get(f"{team.url}/sheets", headers=alice)).json()
    assert [s["name"] for s in sheets] == ["Summary", "Expenses"]
    exported = await client.get(f"{team.url}/export", headers=bob)
    assert exported.status_code == 200
    _browser(client, bob_tokens)
    assert (await client.get(f"/sheets/w/{team.workbook_id}")).status_code == 200
