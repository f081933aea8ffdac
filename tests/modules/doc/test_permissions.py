"""Every Docs API path checks access: owner/editor/viewer/non-member/anonymous."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from tests.modules.doc.conftest import Team, build_team, png_bytes

Action = Callable[[httpx.AsyncClient, Team, dict[str, str]], Awaitable[httpx.Response]]
WHO = ("owner", "editor", "viewer", "outsider", "anonymous")
# Expected status per role for reads (members and shares) and writes.
READ = {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "anonymous": 401}
WRITE = {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "anonymous": 401}
CREATE = {**WRITE, "owner": 201, "editor": 201}
OWNER_ONLY = {"owner": 200, "editor": 403, "viewer": 403, "outsider": 404, "anonymous": 401}


def _page(path: str = "", method: str = "GET", **kwargs: object) -> Action:
    async def act(client: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
        return await client.request(
            method,
            f"/api/v1/doc/pages/{team.page_id}{path}",
            headers=h,
            **kwargs,  # type: ignore[arg-type]
        )

    return act


def _ws(path: str = "", method: str = "GET", **kwargs: object) -> Action:
    async def act(client: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
        return await client.request(
            method,
            f"/api/v1/doc/workspaces/{team.workspace_id}{path}",
            headers=h,
            **kwargs,  # type: ignore[arg-type]
        )

    return act


CASES: list[tuple[str, Action, dict[str, int]]] = [
    ("get page", _page(), READ),
    ("export md", _page("/export?format=md"), READ),
    ("export html", _page("/export?format=html"), READ),
    ("favorite", _page("/favorite", "PUT"), READ),
    ("unfavorite", _page("/favorite", "DELETE"), READ),
    ("rename", _page("", "PATCH", json={"title": "New"}), WRITE),
    ("icon", _page("", "PATCH", json={"icon": "🚀"}), WRITE),
    ("move", _page("/move", "POST", json={"parent_id": None, "index": 0}), WRITE),
    ("archive", _page("/archive", "POST"), WRITE),
    ("list shares", _page("/shares"), WRITE),
    ("share", _page("/shares", "POST", json={"email": "owner@example.com"}), CREATE),
    ("public link", _page("/public-link", "POST"), WRITE),
    ("revoke link", _page("/public-link", "DELETE"), {**WRITE, "owner": 204, "editor": 204}),
    (
        "upload image",
        _page("/images", "POST", files={"file": ("a.png", png_bytes(), "image/png")}),
        CREATE,
    ),
    ("tree", _ws("/pages"), READ),
    ("trash", _ws("/trash"), READ),
    ("members", _ws("/members"), READ),
    ("create page", _ws("/pages", "POST", json={"title": "x"}), CREATE),
    ("import", _ws("/import", "POST", json={"markdown": "# T\n\nhi"}), CREATE),
    ("rename workspace", _ws("", "PATCH", json={"name": "Renamed"}), OWNER_ONLY),
    (
        "add member",
        _ws("/members", "POST", json={"email": "outsider@example.com"}),
        {**OWNER_ONLY, "owner": 201},
    ),
]


@pytest.mark.parametrize(("name", "action", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_permission_matrix(
    client: httpx.AsyncClient,
    team: Team,
    name: str,
    action: Action,
    expected: dict[str, int],
) -> None:
    # Refused roles go first and share the team (a refusal changes nothing, see below); a
    # write that succeeds changed it, so each later allowed role gets a team of its own.
    refused_first = sorted(WHO, key=lambda who: expected[who] < 400)
    changed = False
    for who in refused_first:
        if changed:
            team = await build_team(client, tag=f"-{who}")
        response = await action(client, team, team.headers(who))
        assert response.status_code == expected[who], (name, who, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
        else:
            changed = expected is not READ


@pytest.mark.parametrize("who", ["viewer", "outsider", "anonymous"])
async def test_refused_writes_change_nothing(
    client: httpx.AsyncClient, team: Team, who: str
) -> None:
    h = team.headers(who)
    await client.patch(f"/api/v1/doc/pages/{team.page_id}", json={"title": "Hacked"}, headers=h)
    await client.post(f"/api/v1/doc/pages/{team.page_id}/archive", headers=h)
    await client.post(
        f"/api/v1/doc/workspaces/{team.workspace_id}/pages", json={"title": "x"}, headers=h
    )
    page = await client.get(f"/api/v1/doc/pages/{team.page_id}", headers=team.headers("owner"))
    assert page.json()["title"] == "Home"
    assert page.json()["trashed_at"] is None
    tree = await client.get(
        f"/api/v1/doc/workspaces/{team.workspace_id}/pages", headers=team.headers("owner")
    )
    assert [n["title"] for n in tree.json()] == ["Home"]


async def test_search_and_lists_need_sign_in(client: httpx.AsyncClient, team: Team) -> None:
    for path in ("/search?q=home", "/workspaces", "/favorites", "/shared"):
        assert (await client.get(f"/api/v1/doc{path}")).status_code == 401


async def test_outsider_sees_no_workspace(client: httpx.AsyncClient, team: Team) -> None:
    response = await client.get("/api/v1/doc/workspaces", headers=team.headers("outsider"))
    assert response.json() == []
    viewer = await client.get("/api/v1/doc/workspaces", headers=team.headers("viewer"))
    assert [(w["name"], w["role"]) for w in viewer.json()] == [("Team", "viewer")]
