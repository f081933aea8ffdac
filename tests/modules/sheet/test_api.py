"""Workbooks, members, sheets and ranges through the HTTP API (SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tests.modules.sheet.conftest import MAX_RANGE_CELLS, Team, W, read, write

from townhall.collab.rooms import Peer
from townhall.modules.sheet import document


async def test_workbook_lifecycle(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    listed = (await client.get(W, headers=h)).json()
    assert [(w["name"], w["role"], w["sheet_count"]) for w in listed] == [("Budget", "owner", 1)]
    renamed = await client.patch(team.url, json={"name": "  Budget   2026 "}, headers=h)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Budget 2026"
    blank = await client.patch(team.url, json={"name": "   "}, headers=h)
    assert blank.status_code == 422
    bad_sheet = await client.post(W, json={"name": "X", "sheet_name": "a/b"}, headers=h)
    assert bad_sheet.status_code == 422
    shared = (await client.get(W, headers=team.headers("viewer"))).json()
    assert [(w["name"], w["role"], w["owner"]["email"]) for w in shared] == [
        ("Budget 2026", "viewer", "owner@example.com")
    ]
    assert (await client.delete(team.url, headers=h)).status_code == 204
    assert (await client.get(team.url, headers=h)).status_code == 404
    assert (await client.get(W, headers=team.headers("viewer"))).json() == []


async def test_new_workbook_has_one_big_sheet(client: httpx.AsyncClient, team: Team) -> None:
    sheets = (await client.get(f"{team.url}/sheets", headers=team.headers("owner"))).json()
    assert [(s["name"], s["position"], s["rows"], s["cols"], s["cells"]) for s in sheets] == [
        ("Sheet1", 0, 1000, 52, 0)
    ]


async def test_members_invite_role_change_and_remove(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    members = (await client.get(f"{team.url}/members", headers=h)).json()
    assert {(m["user"]["email"], m["role"]) for m in members} == {
        ("owner@example.com", "owner"),
        ("editor@example.com", "editor"),
        ("viewer@example.com", "viewer"),
    }
    unknown = await client.post(
        f"{team.url}/members", json={"email": "nobody@example.com", "role": "viewer"}, headers=h
    )
    assert unknown.status_code == 404
    assert "sign up" in unknown.json()["detail"]
    owner_again = await client.post(
        f"{team.url}/members", json={"email": "OWNER@example.com", "role": "viewer"}, headers=h
    )
    assert owner_again.status_code == 409
    promoted = await client.post(
        f"{team.url}/members", json={"email": "Viewer@Example.com", "role": "editor"}, headers=h
    )
    assert promoted.status_code == 201
    assert promoted.json()["role"] == "editor"
    assert (await write(client, team, "A1", [["by viewer"]], who="viewer")).status_code == 200
    viewer_id = promoted.json()["user"]["id"]
    assert (await client.delete(f"{team.url}/members/{viewer_id}", headers=h)).status_code == 204
    assert (await client.get(team.url, headers=team.headers("viewer"))).status_code == 404
    # A member may leave; the owner may not.
    editor_id = next(m["user"]["id"] for m in members if m["role"] == "editor")
    owner_id = next(m["user"]["id"] for m in members if m["role"] == "owner")
    leave = await client.delete(f"{team.url}/members/{editor_id}", headers=team.headers("editor"))
    assert leave.status_code == 204
    assert (await client.delete(f"{team.url}/members/{owner_id}", headers=h)).status_code == 409


async def test_sheets_create_rename_reorder_delete(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    for name in ("Data", "Notes"):
        created = await client.post(f"{team.url}/sheets", json={"name": name}, headers=h)
        assert created.status_code == 201, created.text
    duplicate = await client.post(f"{team.url}/sheets", json={"name": "data"}, headers=h)
    assert duplicate.status_code == 422
    bad = await client.post(f"{team.url}/sheets", json={"name": "a/b"}, headers=h)
    assert bad.status_code == 422
    moved = await client.patch(f"{team.url}/sheets/Notes", json={"position": 0}, headers=h)
    assert moved.status_code == 200
    assert moved.json()["position"] == 0
    renamed = await client.patch(f"{team.url}/sheets/data", json={"name": "Raw data"}, headers=h)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Raw data"
    names = [s["name"] for s in (await client.get(f"{team.url}/sheets", headers=h)).json()]
    assert names == ["Notes", "Sheet1", "Raw data"]
    assert (await client.delete(f"{team.url}/sheets/Notes", headers=h)).status_code == 204
    assert (await client.delete(f"{team.url}/sheets/Sheet1", headers=h)).status_code == 204
    last = await client.delete(f"{team.url}/sheets/Raw data", headers=h)
    assert last.status_code == 422
    assert "at least one sheet" in last.json()["detail"]
    assert (await client.get(f"{team.url}/sheets/Nope", headers=h)).status_code == 404


async def test_write_and_read_range_with_formulas(client: httpx.AsyncClient, team: Team) -> None:
    written = await write(
        client,
        team,
        "A1",
        [[1, 2, "=A1+B1"], ["x", True, "=SUM(A1:B1)*2"], [None, "50%", "=1/0"]],
    )
    assert written.status_code == 200, written.text
    body = written.json()
    assert body["written"] == 8  # None writes nothing on an empty cell
    assert body["range"]["range"] == "A1:C3"
    assert body["range"]["raw"] == [
        ["1", "2", "=A1+B1"],
        ["x", "=TRUE", "=SUM(A1:B1)*2"],
        ["", "50%", "=1/0"],
    ]
    assert body["range"]["values"] == [[1.0, 2.0, 3.0], ["x", True, 6.0], [None, 0.5, "#DIV/0!"]]
    # Clearing a cell with "" changes the formulas that read it.
    assert (await write(client, team, "B1", [[""]])).status_code == 200
    got = await read(client, team, "c1:A1")
    assert got["range"] == "A1:C1"
    assert got["values"] == [[1.0, None, 1.0]]


async def test_cross_sheet_reference(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    created = await client.post(f"{team.url}/sheets", json={"name": "My Data"}, headers=h)
    assert created.status_code == 201
    assert (await write(client, team, "B2", [[40], [2]], sheet="My Data")).status_code == 200
    assert (
        await write(client, team, "A1", [["='My Data'!B2+'My Data'!B3", "=Nope!A1"]])
    ).status_code == 200
    assert (await read(client, team, "A1:B1"))["values"] == [[42.0, "#REF!"]]


async def test_circular_references_are_circ(client: httpx.AsyncClient, team: Team) -> None:
    cells = [["=B1", "=A1", "=C1+1", "=SUM(A1:C1)", "=1+1"]]
    assert (await write(client, team, "A1", cells)).status_code == 200
    assert (await read(client, team, "A1:E1"))["values"] == [
        ["#CIRC!", "#CIRC!", "#CIRC!", "#CIRC!", 2.0]
    ]


async def test_long_formula_chain_does_not_recurse(client: httpx.AsyncClient, team: Team) -> None:
    column = [["1"]] + [[f"=A{r}+1"] for r in range(1, 1500)]
    assert (await write(client, team, "A1", column)).status_code == 200
    assert (await read(client, team, "A1500"))["values"] == [[1500.0]]


async def test_text_that_is_not_a_formula(client: httpx.AsyncClient, team: Team) -> None:
    cells = [["=", "=SUM(", "=FOO(1)", "'=A1", "=1+"]]
    assert (await write(client, team, "A1", cells)).status_code == 200
    values = (await read(client, team, "A1:E1"))["values"][0]
    assert values == ["#ERROR!", "#ERROR!", "#NAME?", "=A1", "#ERROR!"]


async def test_range_validation(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    base = f"{team.url}/sheets/{team.sheet_id}/range"
    for a1 in ("A0", "1A", "A1:B", "A1;B2", "AAAA1"):
        got = await client.get(base, params={"a1": a1}, headers=h)
        assert got.status_code == 422, (a1, got.text)
    assert (
        await client.get(base, params={"a1": f"A1:B{MAX_RANGE_CELLS}"}, headers=h)
    ).status_code == 413
    assert (await write(client, team, "A1", [])).status_code == 422
    assert (await write(client, team, "A1", [["x"] * 3] * MAX_RANGE_CELLS)).status_code == 413
    assert (await write(client, team, "A1", [["x" * 40_000]])).status_code == 422
    # Writing past the sheet's 1000 rows grows it.
    assert (await write(client, team, "A1200", [["far"]])).status_code == 200
    sheet = (await client.get(f"{team.url}/sheets/{team.sheet_id}", headers=h)).json()
    assert sheet["rows"] == 1200
    assert sheet["cells"] == 1


async def test_api_write_reaches_the_document_and_flush(
    client: httpx.AsyncClient, team: Team, app: FastAPI
) -> None:
    assert (await write(client, team, "A1", [["7", "=A1*6"]])).status_code == 200
    state = await client.get(
        f"/api/v1/collab/sheet/{team.workbook_id}/state", headers=team.headers("viewer")
    )
    assert state.status_code == 200
    assert state.json()["role"] == "viewer"
    report = await app.state.collab.flush()
    assert report.documents == 1
    listed = (await client.get(W, headers=team.headers("owner"))).json()
    assert (listed[0]["sheet_count"], listed[0]["cell_count"]) == (1, 2)
    assert (await read(client, team, "B1"))["values"] == [[42.0]]


async def test_api_write_reaches_a_live_room(
    client: httpx.AsyncClient, team: Team, app: FastAPI
) -> None:
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    rooms = app.state.collab.rooms
    peer = Peer(send, "viewer")
    room = await rooms.join("sheet", team.workbook_id, peer)
    try:
        before = len(sent)
        assert (await write(client, team, "B2", [["live"]])).status_code == 200
        assert document.read_workbook(room.doc)[0].cells == {(1, 1): "live"}
        assert len(sent) > before  # the browser got the update frame
    finally:
        await rooms.leave(room, peer)
