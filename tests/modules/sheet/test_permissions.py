"""Every Sheets path checks access: owner/editor/viewer/outsider/anonymous, HTTP and collab."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pycrdt
import pytest
from tests.modules.sheet.conftest import Team, W

Action = Callable[[httpx.AsyncClient, Team, dict[str, str]], Awaitable[httpx.Response]]
WHO = ("owner", "editor", "viewer", "outsider", "anonymous")
READ = {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "anonymous": 401}
WRITE = {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "anonymous": 401}
CREATE = {**WRITE, "owner": 201, "editor": 201}
DELETE = {**WRITE, "owner": 204, "editor": 204}
OWNER_ONLY = {"owner": 201, "editor": 403, "viewer": 403, "outsider": 404, "anonymous": 401}
OWNER_DELETE = {"owner": 204, "editor": 403, "viewer": 403, "outsider": 404, "anonymous": 401}
CSV = ("data.csv", b"a,b\n1,2\n", "text/csv")


def _at(path: str = "", method: str = "GET", **kwargs: object) -> Action:
    async def act(client: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
        return await client.request(method, f"{team.url}{path}", headers=h, **kwargs)  # type: ignore[arg-type]

    return act


def _sheet(path: str = "", method: str = "GET", **kwargs: object) -> Action:
    async def act(client: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
        url = f"{team.url}/sheets/{team.sheet_id}{path}"
        return await client.request(method, url, headers=h, **kwargs)  # type: ignore[arg-type]

    return act


async def _add_sheet(client: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
    # A fresh name per call: sheet names are unique within a workbook.
    name = (
        f"New {len((await client.get(f'{team.url}/sheets', headers=team.headers('owner'))).json())}"
    )
    return await client.post(f"{team.url}/sheets", json={"name": name}, headers=h)


CASES: list[tuple[str, Action, dict[str, int]]] = [
    ("get workbook", _at(), READ),
    ("members", _at("/members"), READ),
    ("sheets", _at("/sheets"), READ),
    ("sheet", _sheet(), READ),
    ("read range", _sheet("/range?a1=A1:B2"), READ),
    ("export xlsx", _at("/export"), READ),
    ("export csv", _sheet("/export"), READ),
    ("rename workbook", _at("", "PATCH", json={"name": "X"}), WRITE),
    ("write range", _sheet("/range", "PUT", json={"a1": "A1", "values": [["1"]]}), WRITE),
    ("rename sheet", _sheet("", "PATCH", json={"name": "Renamed"}), WRITE),
    ("add sheet", _add_sheet, CREATE),
    ("import into", _at("/import", "POST", files={"file": CSV}), CREATE),
    (
        "invite",
        _at("/members", "POST", json={"email": "viewer@example.com", "role": "viewer"}),
        OWNER_ONLY,
    ),
    ("delete workbook", _at("", "DELETE"), OWNER_DELETE),
]


@pytest.mark.parametrize(("name", "action", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_http_access(
    client: httpx.AsyncClient,
    team: Team,
    name: str,
    action: Action,
    expected: dict[str, int],
) -> None:
    for who in WHO:
        response = await action(client, team, team.headers(who))
        assert response.status_code == expected[who], (who, response.text)
        if response.status_code in (200, 201, 204) and name == "delete workbook":
            break


async def test_delete_sheet_access(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    assert (
        await client.post(f"{team.url}/sheets", json={"name": "Two"}, headers=h)
    ).status_code == 201
    for who in ("viewer", "outsider", "anonymous"):
        got = await client.delete(f"{team.url}/sheets/Two", headers=team.headers(who))
        assert got.status_code == DELETE[who], who
    assert (
        await client.delete(f"{team.url}/sheets/Two", headers=team.headers("editor"))
    ).status_code == 204


async def test_viewer_write_changes_nothing(client: httpx.AsyncClient, team: Team) -> None:
    url = f"{team.url}/sheets/{team.sheet_id}/range"
    refused = await client.put(
        url, json={"a1": "A1", "values": [["hacked"]]}, headers=team.headers("viewer")
    )
    assert refused.status_code == 403
    got = await client.get(url, params={"a1": "A1"}, headers=team.headers("owner"))
    assert got.json()["raw"] == [[""]]


async def _update(text: str) -> bytes:
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    sheets = doc.get("sheets", type=pycrdt.Map)
    sheets["x"] = pycrdt.Map({"name": text})
    return doc.get_update()


@pytest.mark.parametrize(
    ("who", "expected", "readable"),
    [
        ("owner", 200, 200),
        ("editor", 200, 200),
        ("viewer", 403, 200),
        ("outsider", 403, 403),
        ("anonymous", 401, 401),
    ],
)
async def test_collab_save_and_state(
    client: httpx.AsyncClient, team: Team, who: str, expected: int, readable: int
) -> None:
    h = team.headers(who)
    saved = await client.post(
        f"/api/v1/sheet/save?id={team.workbook_id}",
        content=await _update(who),
        headers={**h, "content-type": "application/octet-stream"},
    )
    assert saved.status_code == expected, saved.text
    state = await client.get(f"/api/v1/collab/sheet/{team.workbook_id}/state", headers=h)
    assert state.status_code == readable, state.text
    if readable == 200:
        assert state.json()["role"] == ("viewer" if who == "viewer" else "editor")


async def test_collab_rejects_ids_that_are_not_workbooks(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("owner")
    for doc_id in ("nope", "0" * 32, team.workbook_id.upper()):
        got = await client.get(f"/api/v1/collab/sheet/{doc_id}/state", headers=h)
        assert got.status_code == 403, doc_id


async def test_stranger_lists_nothing(client: httpx.AsyncClient, team: Team) -> None:
    assert (await client.get(W, headers=team.headers("outsider"))).json() == []
    assert (await client.get(W)).status_code == 401
