"""Docs API behaviour: workspaces, the tree, trash, sharing, public links, bad input."""

from __future__ import annotations

import httpx
import pytest
from tests.modules.doc.conftest import Team, make_page, tree_titles

API = "/api/v1/doc"


async def test_workspace_members_lifecycle(client: httpx.AsyncClient, team: Team) -> None:
    owner = team.headers("owner")
    ws = f"{API}/workspaces/{team.workspace_id}"
    renamed = await client.patch(ws, json={"name": "  Core   team "}, headers=owner)
    assert renamed.json()["name"] == "Core team"
    members = (await client.get(f"{ws}/members", headers=owner)).json()
    assert {(m["user"]["email"], m["role"]) for m in members} == {
        ("owner@example.com", "owner"),
        ("editor@example.com", "editor"),
        ("viewer@example.com", "viewer"),
    }
    unknown = await client.post(
        f"{ws}/members", json={"email": "nobody@example.com"}, headers=owner
    )
    assert unknown.status_code == 404
    assert "nobody@example.com" in unknown.json()["detail"]
    again = await client.post(f"{ws}/members", json={"email": "viewer@example.com"}, headers=owner)
    assert again.status_code == 409
    owner_id = next(m["user"]["id"] for m in members if m["role"] == "owner")
    last = await client.patch(f"{ws}/members/{owner_id}", json={"role": "editor"}, headers=owner)
    assert last.status_code == 409  # the last owner stays
    viewer_id = next(m["user"]["id"] for m in members if m["role"] == "viewer")
    promoted = await client.patch(
        f"{ws}/members/{viewer_id}", json={"role": "editor"}, headers=owner
    )
    assert promoted.json()["role"] == "editor"
    # A member may leave; afterwards the workspace is invisible to them.
    left = await client.delete(f"{ws}/members/{viewer_id}", headers=team.headers("viewer"))
    assert left.status_code == 204
    assert (await client.get(f"{ws}/pages", headers=team.headers("viewer"))).status_code == 404


async def test_tree_nesting_reorder_and_move(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("editor")
    ws = team.workspace_id
    a = await make_page(client, h, ws, "A")
    b = await make_page(client, h, ws, "B")
    a1 = await make_page(client, h, ws, "A1", a)
    await make_page(client, h, ws, "A2", a)
    assert await tree_titles(client, h, ws) == [
        ["Home", []],
        ["A", [["A1", []], ["A2", []]]],
        ["B", []],
    ]
    # Reorder at the top level: B first.
    moved = await client.post(f"{API}/pages/{b}/move", json={"index": 0}, headers=h)
    assert moved.status_code == 200, moved.text
    # Move A1 under B, then A under A1 (its own descendant): refused, nothing changes.
    await client.post(f"{API}/pages/{a1}/move", json={"parent_id": b}, headers=h)
    assert await tree_titles(client, h, ws) == [
        ["B", [["A1", []]]],
        ["Home", []],
        ["A", [["A2", []]]],
    ]
    cycle = await client.post(f"{API}/pages/{b}/move", json={"parent_id": a1}, headers=h)
    assert cycle.status_code == 422
    assert "itself" in cycle.json()["detail"]
    itself = await client.post(f"{API}/pages/{b}/move", json={"parent_id": b}, headers=h)
    assert itself.status_code == 422
    assert await tree_titles(client, h, ws) == [
        ["B", [["A1", []]]],
        ["Home", []],
        ["A", [["A2", []]]],
    ]
    # Many moves into one gap keep a consistent order.
    for _ in range(60):
        await client.post(f"{API}/pages/{a}/move", json={"index": 1}, headers=h)
        await client.post(f"{API}/pages/{team.page_id}/move", json={"index": 1}, headers=h)
    titles = [t for t, _ in await tree_titles(client, h, ws)]
    assert titles == ["B", "Home", "A"]


async def test_move_to_another_workspace_is_refused(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    other = (await client.post(f"{API}/workspaces", json={"name": "Other"}, headers=h)).json()
    there = await make_page(client, h, other["id"], "There")
    response = await client.post(
        f"{API}/pages/{team.page_id}/move", json={"parent_id": there}, headers=h
    )
    assert response.status_code == 422
    page = (await client.get(f"{API}/pages/{team.page_id}", headers=h)).json()
    assert page["workspace_id"] == team.workspace_id
    assert page["parent_id"] is None


async def test_trash_restore_and_delete(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("editor")
    ws = team.workspace_id
    parent = await make_page(client, h, ws, "Parent")
    child = await make_page(client, h, ws, "Child", parent)
    not_trashed = await client.delete(f"{API}/pages/{parent}", headers=h)
    assert not_trashed.status_code == 409
    archived = await client.post(f"{API}/pages/{parent}/archive", headers=h)
    assert archived.json()["trashed_at"] is not None
    assert await tree_titles(client, h, ws) == [["Home", []]]
    trash = (await client.get(f"{API}/workspaces/{ws}/trash", headers=h)).json()
    assert [p["title"] for p in trash] == ["Parent"]  # the child went with it
    # A trashed page cannot be edited, and its child cannot be restored alone.
    edit = await client.patch(f"{API}/pages/{parent}", json={"title": "x"}, headers=h)
    assert edit.status_code == 409
    alone = await client.post(f"{API}/pages/{child}/restore", headers=h)
    assert alone.status_code == 409
    viewer = await client.post(f"{API}/pages/{parent}/restore", headers=team.headers("viewer"))
    assert viewer.status_code == 403
    restored = await client.post(f"{API}/pages/{parent}/restore", headers=h)
    assert restored.status_code == 200
    assert await tree_titles(client, h, ws) == [["Home", []], ["Parent", [["Child", []]]]]
    # Trash again and delete for good: both pages are gone.
    await client.post(f"{API}/pages/{parent}/archive", headers=h)
    deleted = await client.delete(f"{API}/pages/{parent}", headers=h)
    assert deleted.status_code == 204
    for page in (parent, child):
        assert (await client.get(f"{API}/pages/{page}", headers=h)).status_code == 404
    assert (await client.get(f"{API}/workspaces/{ws}/trash", headers=h)).json() == []


async def test_restoring_a_page_whose_parent_is_trashed_puts_it_at_the_top(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("owner")
    ws = team.workspace_id
    child = await make_page(client, h, ws, "Child", team.page_id)
    await client.post(f"{API}/pages/{child}/archive", headers=h)
    await client.post(f"{API}/pages/{team.page_id}/archive", headers=h)
    await client.post(f"{API}/pages/{child}/restore", headers=h)
    assert await tree_titles(client, h, ws) == [["Child", []]]


async def test_favorites(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("viewer")
    on = await client.put(f"{API}/pages/{team.page_id}/favorite", headers=h)
    assert on.json()["favorite"] is True
    assert [p["title"] for p in (await client.get(f"{API}/favorites", headers=h)).json()] == [
        "Home"
    ]
    # Favorites are per user.
    assert (await client.get(f"{API}/favorites", headers=team.headers("owner"))).json() == []
    off = await client.delete(f"{API}/pages/{team.page_id}/favorite", headers=h)
    assert off.json()["favorite"] is False
    assert (await client.get(f"{API}/favorites", headers=h)).json() == []


async def test_share_with_outsider_then_unshare(client: httpx.AsyncClient, team: Team) -> None:
    owner, outsider = team.headers("owner"), team.headers("outsider")
    sub = await make_page(client, owner, team.workspace_id, "Sub", team.page_id)
    assert (await client.get(f"{API}/pages/{team.page_id}", headers=outsider)).status_code == 404
    unknown = await client.post(
        f"{API}/pages/{team.page_id}/shares", json={"email": "ghost@example.com"}, headers=owner
    )
    assert unknown.status_code == 404
    invalid = await client.post(
        f"{API}/pages/{team.page_id}/shares", json={"email": "not an email"}, headers=owner
    )
    assert invalid.status_code == 422
    shared = await client.post(
        f"{API}/pages/{team.page_id}/shares",
        json={"email": "outsider@example.com", "role": "viewer"},
        headers=owner,
    )
    assert shared.status_code == 201
    page = await client.get(f"{API}/pages/{sub}", headers=outsider)  # subpages too
    assert page.status_code == 200
    assert page.json()["role"] == "viewer"
    refused = await client.patch(f"{API}/pages/{sub}", json={"title": "x"}, headers=outsider)
    assert refused.status_code == 403
    tree = (await client.get(f"{API}/shared", headers=outsider)).json()
    assert [(n["title"], [c["title"] for c in n["children"]]) for n in tree] == [("Home", ["Sub"])]
    # Upgrade to editor: now the outsider may rename.
    await client.post(
        f"{API}/pages/{team.page_id}/shares",
        json={"email": "outsider@example.com", "role": "editor"},
        headers=owner,
    )
    renamed = await client.patch(f"{API}/pages/{sub}", json={"title": "Sub 2"}, headers=outsider)
    assert renamed.status_code == 200
    shares = (await client.get(f"{API}/pages/{team.page_id}/shares", headers=owner)).json()
    assert [(s["user"]["email"], s["role"]) for s in shares] == [("outsider@example.com", "editor")]
    user_id = shares[0]["user"]["id"]
    gone = await client.delete(f"{API}/pages/{team.page_id}/shares/{user_id}", headers=owner)
    assert gone.status_code == 204
    assert (await client.get(f"{API}/pages/{sub}", headers=outsider)).status_code == 404
    again = await client.delete(f"{API}/pages/{team.page_id}/shares/{user_id}", headers=owner)
    assert again.status_code == 404


async def test_public_link_and_revoke(client: httpx.AsyncClient, team: Team) -> None:
    owner = team.headers("owner")
    await client.post(
        f"{API}/workspaces/{team.workspace_id}/import",
        json={"markdown": "# Public notes\n\nHello **world**"},
        headers=owner,
    )
    tree = (await client.get(f"{API}/workspaces/{team.workspace_id}/pages", headers=owner)).json()
    page_id = next(n["id"] for n in tree if n["title"] == "Public notes")
    link = await client.post(f"{API}/pages/{page_id}/public-link", headers=owner)
    token = link.json()["token"]
    assert link.json()["url"].endswith(f"/p/{token}")
    same = await client.post(f"{API}/pages/{page_id}/public-link", headers=owner)
    assert same.json()["token"] == token
    public = await client.get(f"{API}/public/{token}")
    assert public.status_code == 200
    assert public.json()["html"] == "<p>Hello <strong>world</strong></p>"
    html = await client.get(f"/p/{token}")
    assert html.status_code == 200
    assert "<strong>world</strong>" in html.text
    revoked = await client.delete(f"{API}/pages/{page_id}/public-link", headers=owner)
    assert revoked.status_code == 204
    assert (await client.get(f"{API}/public/{token}")).status_code == 404
    assert (await client.get(f"/p/{token}")).status_code == 404
    fresh = await client.post(f"{API}/pages/{page_id}/public-link", headers=owner)
    assert fresh.json()["token"] != token


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/pages", {"title": "x" * 301}),
        ("/pages", {"title": "x", "unknown": 1}),
        ("/pages", {"parent_id": "not-a-uuid"}),
        ("/import", {"markdown": 5}),
    ],
)
async def test_bad_input_is_422_and_creates_nothing(
    client: httpx.AsyncClient, team: Team, path: str, body: dict[str, object]
) -> None:
    h = team.headers("owner")
    response = await client.post(
        f"{API}/workspaces/{team.workspace_id}{path}", json=body, headers=h
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await tree_titles(client, h, team.workspace_id) == [["Home", []]]


async def test_bad_page_updates(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    page = f"{API}/pages/{team.page_id}"
    for body in ({"cover": "javascript:alert(1)"}, {"cover": "doc/other/key"}, {"icon": "x" * 17}):
        assert (await client.patch(page, json=body, headers=h)).status_code == 422
    bad_move = await client.post(f"{page}/move", json={"index": -1}, headers=h)
    assert bad_move.status_code == 422
    missing_parent = await client.post(
        f"{API}/workspaces/{team.workspace_id}/pages",
        json={"parent_id": "00000000-0000-0000-0000-000000000000"},
        headers=h,
    )
    assert missing_parent.status_code == 404
    cover = await client.patch(page, json={"cover": "https://example.com/c.jpg"}, headers=h)
    assert cover.json()["cover_url"] == "https://example.com/c.jpg"
    cleared = await client.patch(page, json={"cover": ""}, headers=h)
    assert cleared.json()["cover"] is None
    assert (await client.get(f"{API}/pages/not-a-uuid", headers=h)).status_code == 422
