"""Docs web pages (/docs, /docs/p/{id}) for members, strangers and anonymous visitors; the demo."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.fixtures.app import signup
from tests.modules.doc.conftest import Team, make_page, tree_titles

from townhall.core.auth.models import User
from townhall.core.platform import Platform
from townhall.modules.doc import demo
from townhall.modules.doc.models import DocWorkspace

API = "/api/v1/doc"


def cookie(who: dict[str, Any]) -> dict[str, str]:
    """Browser-style authentication: the access cookie the log-in form sets."""
    return {"Cookie": f"th_access={who['access_token']}"}


async def test_docs_home_lists_the_workspace_tree(client: httpx.AsyncClient, team: Team) -> None:
    child = await make_page(client, team.headers("owner"), team.workspace_id, "Child", team.page_id)
    page = await client.get("/docs", headers=cookie(team.editor))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Swagger" not in page.text  # /docs is the Docs app, not the API explorer
    assert 'id="doc-tree"' in page.text
    assert f'href="/docs/p/{team.page_id}"' in page.text
    assert f'href="/docs/p/{child}"' in page.text
    assert "Your role: editor" in page.text
    assert "data-new-page" in page.text  # editors may add pages


async def test_docs_home_for_a_viewer_has_no_new_page_button(
    client: httpx.AsyncClient, team: Team
) -> None:
    page = await client.get(f"/docs?ws={team.workspace_id}", headers=cookie(team.viewer))
    assert page.status_code == 200
    assert "Your role: viewer" in page.text
    assert "data-new-page" not in page.text


async def test_docs_home_makes_a_first_workspace_for_a_newcomer(
    client: httpx.AsyncClient, team: Team
) -> None:
    page = await client.get("/docs", headers=cookie(team.outsider))
    assert page.status_code == 200
    assert "Otto Outsider&#39;s workspace" in page.text
    assert team.page_id not in page.text  # the team's pages stay hidden
    other = await client.get(f"/docs?ws={team.workspace_id}", headers=cookie(team.outsider))
    assert other.status_code == 404
    assert "workspace not found" in other.text


async def test_page_view_for_editor_and_viewer(client: httpx.AsyncClient, team: Team) -> None:
    url = f"/docs/p/{team.page_id}"
    edit = await client.get(url, headers=cookie(team.editor))
    assert edit.status_code == 200
    assert 'data-can-edit="true"' in edit.text
    assert 'data-user-name="Ed Editor"' in edit.text
    assert 'id="doc-share"' in edit.text
    assert 'id="doc-toolbar"' in edit.text
    assert "/static/collab/editor.css" in edit.text
    view = await client.get(url, headers=cookie(team.viewer))
    assert view.status_code == 200
    assert 'data-can-edit="false"' in view.text
    assert 'id="doc-share"' not in view.text
    assert 'id="doc-toolbar"' not in view.text


async def test_page_view_shows_breadcrumbs_of_nested_pages(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("owner")
    child = await make_page(client, h, team.workspace_id, "Chapter", team.page_id)
    grandchild = await make_page(client, h, team.workspace_id, "Section", child)
    page = await client.get(f"/docs/p/{grandchild}", headers=cookie(team.owner))
    crumbs = page.text.split('aria-label="Breadcrumbs"', 1)[1].split("</nav>", 1)[0]
    assert crumbs.index(f"/docs/p/{team.page_id}") < crumbs.index(f"/docs/p/{child}")
    assert "Section" in crumbs


async def test_page_view_is_404_for_a_stranger_and_a_redirect_when_signed_out(
    client: httpx.AsyncClient, team: Team
) -> None:
    url = f"/docs/p/{team.page_id}"
    stranger = await client.get(url, headers=cookie(team.outsider))
    assert stranger.status_code == 404
    assert 'id="doc-page"' not in stranger.text
    assert "Home" not in stranger.text.split("<section", 1)[1]  # the title does not leak
    missing = await client.get(
        "/docs/p/00000000-0000-0000-0000-000000000000", headers=cookie(team.owner)
    )
    assert missing.status_code == 404
    for path in ("/docs", url):
        anonymous = await client.get(path)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/login?next={path}"
    assert (await client.get("/docs/p/not-a-uuid", headers=cookie(team.owner))).status_code == 422


async def test_a_shared_page_opens_for_the_invitee(client: httpx.AsyncClient, team: Team) -> None:
    shared = await client.post(
        f"{API}/pages/{team.page_id}/shares",
        json={"email": "outsider@example.com", "role": "viewer"},
        headers=team.headers("owner"),
    )
    assert shared.status_code == 201, shared.text
    page = await client.get(f"/docs/p/{team.page_id}", headers=cookie(team.outsider))
    assert page.status_code == 200
    assert 'data-can-edit="false"' in page.text
    home = await client.get("/docs", headers=cookie(team.outsider))
    assert "Shared with me" in home.text
    assert f"/docs/p/{team.page_id}" in home.text


async def _users(platform: Platform, *emails: str) -> dict[str, User]:
    async with platform.db.session() as session:
        rows = (await session.execute(select(User).where(User.email.in_(emails)))).scalars()
        return {user.email: user for user in rows}


async def _load_demo(platform: Platform, users: dict[str, User]) -> None:
    async with platform.db.session() as session:
        await demo.load(platform, session, users)


async def test_demo_workspace_is_visible_to_demo_users_only(
    client: httpx.AsyncClient, app: FastAPI, platform: Platform
) -> None:
    alice = await signup(client, "alice@example.com", display_name="Alice Kim")
    bob = await signup(client, "bob@example.com", display_name="Bob Lee")
    carol = await signup(client, "carol@example.com", display_name="Carol")
    users = await _users(platform, "alice@example.com", "bob@example.com")
    await _load_demo(platform, users)
    await _load_demo(platform, users)  # a second run changes nothing

    workspaces = (await client.get(f"{API}/workspaces", headers=bob["headers"])).json()
    assert [(w["name"], w["role"]) for w in workspaces] == [(demo.WORKSPACE, "editor")]
    ws = workspaces[0]["id"]
    expected = [
        ["Welcome to Docs", [["Team lunch recipes", []]]],
        ["Meeting notes", [["Weekly sync — 3 December", []]]],
        ["Roadmap", []],
    ]
    assert await tree_titles(client, alice["headers"], ws) == expected
    assert await tree_titles(client, bob["headers"], ws) == expected
    favorites = (await client.get(f"{API}/favorites", headers=alice["headers"])).json()
    assert [f["title"] for f in favorites] == ["Welcome to Docs"]

    # The demo pages have their text: searchable, exportable, and the page view opens.
    hits = (
        await client.get(f"{API}/search", params={"q": "kimchi"}, headers=bob["headers"])
    ).json()
    assert [h["title"] for h in hits] == ["Team lunch recipes"]
    welcome = favorites[0]["id"]
    exported = await client.get(f"{API}/pages/{welcome}/export", headers=bob["headers"])
    assert "## What you can do" in exported.text
    assert "- [x] Open the demo workspace" in exported.text
    page = await client.get(f"/docs/p/{welcome}", headers=cookie(bob))
    assert page.status_code == 200
    assert "Welcome to Docs" in page.text
    assert 'data-can-edit="true"' in page.text

    # Someone outside the demo sees none of it.
    assert (
        await client.get(f"{API}/search", params={"q": "kimchi"}, headers=carol["headers"])
    ).json() == []
    assert (await client.get(f"/docs/p/{welcome}", headers=cookie(carol))).status_code == 404


async def test_demo_without_alice_is_skipped(app: FastAPI, platform: Platform) -> None:
    await _load_demo(platform, {})
    async with platform.db.session() as session:
        assert (await session.execute(select(DocWorkspace))).first() is None


@pytest.mark.parametrize("path", ["/docs/static/docs.css", "/docs/static/page.js"])
async def test_static_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_home_cards_link_built_apps_and_engines(client: httpx.AsyncClient) -> None:
    home = (await client.get("/")).text
    cards = {
        card.split('"', 1)[0]: card.split("</li>", 1)[0] for card in home.split('data-app="')[1:]
    }
    assert 'href="/docs"' in cards["doc"]
    assert "Not built yet" not in cards["doc"]
    # The collab engine has no page of its own but is built: it points at its API.
    assert "Not built yet" not in cards["collab"]
    assert 'href="/api/docs#/collab"' in cards["collab"]
    assert (await client.get("/api/docs")).status_code == 200
