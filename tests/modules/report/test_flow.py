"""End to end on the embedded broker: file -> analyzed -> routed -> assigned -> resolved, live."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .conftest import World, serving
from .lifecycle import lifecycle


async def test_report_lifecycle_with_live_notifications_to_the_right_users(
    app: FastAPI, world: World
) -> None:
    await lifecycle(app, world)


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
