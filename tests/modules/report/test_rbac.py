"""Every role x the main actions, allowed and denied (resource-level: the report's department)."""

from __future__ import annotations

from typing import Any

from .conftest import World

ROLES = ("anonymous", "alice", "roads_officer", "light_officer", "roads_admin", "admin")

# action -> expected status per role (in ROLES order)
MATRIX: dict[str, tuple[int, ...]] = {
    "file": (401, 201, 201, 201, 201, 201),
    "mine": (401, 200, 200, 200, 200, 200),
    "public_comment": (401, 201, 201, 201, 201, 201),
    "follow": (401, 200, 200, 200, 200, 200),
    "staff_view": (0, 0, 1, 0, 1, 1),  # 1 = unmasked staff view with the analysis
    "inbox": (401, 403, 200, 200, 200, 200),  # light_officer: their (empty) department
    "triage": (401, 403, 403, 403, 403, 200),
    "status": (401, 403, 200, 403, 200, 200),
    "internal_comment": (401, 403, 201, 403, 201, 201),
    "assign_other": (401, 403, 403, 403, 200, 200),
    "self_assign": (401, 403, 200, 403, 200, 422),  # admin is not an officer of roads
    "merge": (401, 403, 200, 403, 200, 200),
    "override": (401, 403, 403, 403, 200, 200),
    "stats": (401, 403, 403, 403, 200, 200),
    "audit": (401, 403, 403, 403, 200, 200),
    "report_audit": (401, 403, 200, 403, 200, 200),
    "manage_category": (401, 403, 403, 403, 403, 201),
    "manage_department": (401, 403, 403, 403, 403, 201),
    "manage_rule": (401, 403, 403, 403, 403, 201),
    "reanalyze": (401, 403, 403, 403, 403, 200),
    "grant_officer": (401, 403, 403, 403, 204, 204),
    "revoke_officer": (401, 403, 403, 403, 204, 204),
    "grant_department_admin": (401, 403, 403, 403, 403, 204),
}


async def act(world: World, action: str, who: str, rid: str, n: int) -> int:
    c = world.client
    h = world.h(who) if who != "anonymous" else {}
    if action == "file":
        if who == "anonymous":
            r = await c.post("/api/v1/reports", data={"title": "x", "lat": "35.8", "lng": "127.1"})
            return r.status_code
        await world.file(who, title=f"by {who}")
        return 201
    if action in ("mine", "inbox", "triage"):
        return (await c.get(f"/api/v1/reports?queue={action}", headers=h)).status_code
    if action == "public_comment":
        r = await c.post(f"/api/v1/reports/{rid}/comments", json={"body": "+1"}, headers=h)
        return r.status_code
    if action == "follow":
        return (await c.put(f"/api/v1/reports/{rid}/follow", headers=h)).status_code
    if action == "self_assign":
        r = await c.post(f"/api/v1/reports/{rid}/assign", json={"note": "mine"}, headers=h)
        return r.status_code
    if action == "merge":
        dupe = await world.file("alice", title=f"dupe {n}", description="도로 포트홀 pothole")
        assert (await world.wait_analyzed(dupe["id"]))["department_id"] == world.dept["roads"]
        r = await c.post(
            f"/api/v1/reports/{dupe['id']}/merge", json={"into_id": rid, "note": "same"}, headers=h
        )
        return r.status_code
    if action == "manage_department":
        r = await c.post(
            "/api/v1/reports/admin/departments", json={"slug": f"d{n}", "name": "D"}, headers=h
        )
        return r.status_code
    if action == "manage_rule":
        r = await c.post(
            "/api/v1/reports/admin/rules",
            json={"category": "trash", "department_id": world.dept["roads"], "position": n},
            headers=h,
        )
        return r.status_code
    if action == "reanalyze":
        r = await c.post("/api/v1/reports/admin/reanalyze", json={"limit": 1}, headers=h)
        return r.status_code
    if action == "staff_view":
        body = (await c.get(f"/api/v1/reports/{rid}", headers=h)).json()
        return int(body["analysis"] is not None and body["masked"] is False)
    if action == "status":
        cur = (await c.get(f"/api/v1/reports/{rid}")).json()["status"]
        target = "resolved" if cur == "in_progress" else "in_progress"
        r = await c.post(
            f"/api/v1/reports/{rid}/status", json={"status": target, "note": "n"}, headers=h
        )
        return r.status_code
    if action == "internal_comment":
        r = await c.post(
            f"/api/v1/reports/{rid}/comments", json={"body": "i", "internal": True}, headers=h
        )
        return r.status_code
    if action == "assign_other":
        r = await c.post(
            f"/api/v1/reports/{rid}/assign",
            json={"assignee_id": world.users["roads_officer2"]["id"], "note": "you"},
            headers=h,
        )
        return r.status_code
    if action == "override":
        r = await c.post(
            f"/api/v1/reports/{rid}/override", json={"priority": 1 + n % 5, "note": "p"}, headers=h
        )
        return r.status_code
    if action == "stats":
        return (await c.get("/api/v1/reports/stats", headers=h)).status_code
    if action == "audit":
        return (await c.get("/api/v1/reports/audit", headers=h)).status_code
    if action == "report_audit":
        return (await c.get(f"/api/v1/reports/audit?report_id={rid}", headers=h)).status_code
    if action == "manage_category":
        r = await c.post(
            "/api/v1/reports/admin/categories",
            json={"code": f"c{n}", "name": "New"},
            headers=h,
        )
        return r.status_code
    role = "department_admin" if action == "grant_department_admin" else "officer"
    r = await c.request(
        "DELETE" if action == "revoke_officer" else "POST",
        "/api/v1/reports/admin/staff",
        json={"email": "bob@example.com", "role": role, "department_id": world.dept["roads"]},
        headers=h,
    )
    return r.status_code


async def test_rbac_matrix(world: World) -> None:
    report = await world.file("alice", description="도로 포트홀 pothole on the road")
    rid = report["id"]
    assert (await world.wait_analyzed(rid))["department_id"] == world.dept["roads"]
    got: dict[str, tuple[int, ...]] = {}
    n = 0
    for action in MATRIX:
        row = []
        for who in ROLES:
            n += 1
            row.append(await act(world, action, who, rid, n))
        got[action] = tuple(row)
    assert got == MATRIX
    # Permission changes are audited.
    r = await world.client.get("/api/v1/reports/audit", headers=world.h("admin"))
    grants = [a for a in r.json() if a["action"] == "permission.granted"]
    assert {a["after"]["role"] for a in grants} >= {"officer", "department_admin"}
    revokes = [a for a in r.json() if a["action"] == "permission.revoked"]
    assert {a["before"]["role"] for a in revokes} == {"officer"}
    # Merging the duplicates into it left the original itself untouched.
    body = (await world.client.get(f"/api/v1/reports/{rid}")).json()
    assert body["status"] != "duplicate"


async def test_other_department_cannot_act_and_nothing_changes(world: World) -> None:
    report = await world.file("alice", description="도로 포트홀 pothole")
    rid = report["id"]
    await world.wait_analyzed(rid)
    before: dict[str, Any] = (await world.client.get(f"/api/v1/reports/{rid}")).json()
    for who, path, body in (
        (who, path, body)
        for who in ("light_officer", "alice")
        for path, body in (
            ("status", {"status": "in_progress", "note": "x"}),
            ("assign", {"note": "me"}),
            ("override", {"priority": 1, "note": "x"}),
            ("merge", {"into_id": rid, "note": "x"}),
        )
    ):
        r = await world.client.post(
            f"/api/v1/reports/{rid}/{path}", json=body, headers=world.h(who)
        )
        assert r.status_code == 403, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    after = (await world.client.get(f"/api/v1/reports/{rid}")).json()
    # Signed photo URLs carry their own expiry time; everything else must be identical.
    assert [p["id"] for p in after.pop("photos")] == [p["id"] for p in before.pop("photos")]
    assert after == before
    # The officer's inbox holds only their own department's reports.
    r = await world.client.get("/api/v1/reports?queue=inbox", headers=world.h("light_officer"))
    assert r.json()["items"] == []
    r = await world.client.get("/api/v1/reports?queue=inbox", headers=world.h("roads_officer"))
    assert [x["id"] for x in r.json()["items"]] == [rid]
