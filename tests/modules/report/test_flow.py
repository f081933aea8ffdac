"""End to end on the embedded broker: file -> analyzed -> routed -> assigned -> resolved, live."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .conftest import World, serving


async def open_ws(port: int, world: World, who: str) -> ClientConnection:
    token = world.users[who]["access_token"]
    ws = await connect(f"ws://127.0.0.1:{port}/api/v1/reports/ws?token={token}")
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["type"] == "ready"
    return ws


async def drain(ws: ClientConnection, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Every notification that arrives within `seconds` (pings skipped)."""
    got = []
    while True:
        try:
            msg = json.loads(await asyncio.wait_for(ws.recv(), seconds))
        except TimeoutError:
            return got
        if msg.get("type") == "notification":
            got.append(msg["notification"])


async def wait_for(ws: ClientConnection, kind: str) -> dict[str, Any]:
    for _ in range(100):
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg.get("type") == "notification" and msg["notification"]["kind"] == kind:
            note: dict[str, Any] = msg["notification"]
            return note
    raise AssertionError(f"no {kind} notification")


async def test_report_lifecycle_with_live_notifications_to_the_right_users(
    app: FastAPI, world: World
) -> None:
    async with serving(app) as port:
        sockets = {
            who: await open_ws(port, world, who)
            for who in ("alice", "bob", "roads_officer", "light_officer")
        }
        report = await world.file("alice", description="Deep pothole on the road, 도로 포트홀 위험")
        assert report["status"] == "received"
        assert report["routing"] == "pending"
        note = await wait_for(sockets["roads_officer"], "report.routed")
        assert note["report_id"] == report["id"]
        analysed = await world.wait_analyzed(report["id"], "admin")
        assert analysed["routing"] == "routed"
        assert analysed["department_id"] == world.dept["roads"]
        assert analysed["category"] == "pothole"
        assert analysed["priority"] >= 4  # "위험" (danger)
        a = analysed["analysis"]
        assert a["text_model"]["provider"] == "offline"
        assert a["text_model"]["model"]
        assert a["vision_model"]["provider"] == "offline"
        assert 0 < a["category_confidence"] <= 1
        assert a["summary"]
        # Bob follows (+1); the lighting officer and Bob saw nothing of the routing.
        r = await world.client.put(f"/api/v1/reports/{report['id']}/follow", headers=world.h("bob"))
        assert r.json() == {"follower_count": 2}
        assert await drain(sockets["light_officer"]) == []
        assert await drain(sockets["bob"]) == []

        rid = report["id"]
        r = await world.client.post(
            f"/api/v1/reports/{rid}/assign",
            json={"note": "on it"},
            headers=world.h("roads_officer"),
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "assigned"
        for who in ("alice", "bob"):
            n = await wait_for(sockets[who], "status.changed")
            assert "received -> assigned" in n["title"]
        for status in ("in_progress", "resolved"):
            r = await world.client.post(
                f"/api/v1/reports/{rid}/status",
                json={"status": status, "note": f"now {status}"},
                headers=world.h("roads_officer"),
            )
            assert r.status_code == 200, r.text
            for who in ("alice", "bob"):
                n = await wait_for(sockets[who], "status.changed")
                assert n["body"] == f"now {status}"
        assert await drain(sockets["light_officer"]) == []
        assert await drain(sockets["roads_officer"]) == []  # the actor is not told of its own acts
        done = (await world.client.get(f"/api/v1/reports/{rid}", headers=world.h("alice"))).json()
        assert done["status"] == "resolved"
        assert done["resolved_at"]
        assert [u["to_status"] for u in done["updates"]] == ["assigned", "in_progress", "resolved"]
        for ws in sockets.values():
            await ws.close()

    # Stored notifications: unread list, then read.
    r = await world.client.get(
        "/api/v1/reports/notifications?unread=true", headers=world.h("alice")
    )
    assert len(r.json()) == 3
    r = await world.client.post("/api/v1/reports/notifications/read", headers=world.h("alice"))
    assert r.json() == {"marked": 3}
    r = await world.client.get(
        "/api/v1/reports/notifications?unread=true", headers=world.h("alice")
    )
    assert r.json() == []
    # Every change is audited.
    r = await world.client.get(f"/api/v1/reports/audit?report_id={rid}", headers=world.h("admin"))
    actions = [a["action"] for a in r.json()]
    for action in ("report.created", "report.analyzed", "report.assign", "report.status"):
        assert action in actions
    status_entries = [a for a in r.json() if a["action"] == "report.status"]
    assert {(a["before"]["status"], a["after"]["status"]) for a in status_entries} == {
        ("received", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "resolved"),
    }
    assert all(a["actor_id"] == world.users["roads_officer"]["id"] for a in status_entries)


async def test_ws_refuses_without_a_token(app: FastAPI) -> None:
    async with serving(app) as port:
        ws = await connect(f"ws://127.0.0.1:{port}/api/v1/reports/ws?token=nope")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4401


async def test_low_confidence_goes_to_triage_and_override_is_audited(world: World) -> None:
    report = await world.file("alice", title="Something odd", description="Not sure what this is.")
    analysed = await world.wait_analyzed(report["id"], "admin")
    assert analysed["routing"] == "triage"
    assert analysed["department_id"] is None
    r = await world.client.get("/api/v1/reports?queue=triage", headers=world.h("admin"))
    assert [x["id"] for x in r.json()["items"]] == [report["id"]]
    r = await world.client.get("/api/v1/reports?queue=triage", headers=world.h("roads_officer"))
    assert r.status_code == 403
    r = await world.client.post(
        f"/api/v1/reports/{report['id']}/override",
        json={"category": "streetlight", "priority": 2, "note": "it is a dark lamp"},
        headers=world.h("admin"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["department_id"] == world.dept["lighting"]
    assert body["routing"] == "manual"
    r = await world.client.get(
        f"/api/v1/reports/audit?report_id={report['id']}", headers=world.h("admin")
    )
    override = next(a for a in r.json() if a["action"] == "report.override")
    assert override["before"]["department_id"] is None
    assert override["after"]["department_id"] == world.dept["lighting"]
    assert override["after"]["priority"] == 2
    assert override["target"] == "it is a dark lamp"
    # The lighting officer was told.
    r = await world.client.get("/api/v1/reports/notifications", headers=world.h("light_officer"))
    assert [n["kind"] for n in r.json()] == ["report.routed"]
