"""The end-to-end scenario, run on the embedded broker (test_flow) and RabbitMQ (test_rabbitmq)."""

from __future__ import annotations

from fastapi import FastAPI

from .conftest import World, drain, open_ws, serving, wait_for


async def lifecycle(app: FastAPI, world: World) -> None:
    """file -> analyzed -> routed -> assigned -> resolved, notified live to the right users only."""
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
