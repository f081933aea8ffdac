"""Statistics and audit exports for staff; reference data CRUD; batch re-analysis."""

from __future__ import annotations

import csv
import io
import uuid

from townhall.core.platform import Platform
from townhall.modules.report.tasks import analyze_report

from .conftest import World


async def test_stats_and_csv_exports(world: World) -> None:
    a = await world.file("alice", description="도로 포트홀 pothole")
    b = await world.file("alice", title="Lamp", description="가로등 streetlight out")
    for r in (a, b):
        await world.wait_analyzed(r["id"])
    h = world.h("roads_officer")
    await world.client.post(f"/api/v1/reports/{a['id']}/assign", json={}, headers=h)
    r = await world.client.post(
        f"/api/v1/reports/{a['id']}/status", json={"status": "resolved", "note": "fixed"}, headers=h
    )
    assert r.status_code == 200
    r = await world.client.get("/api/v1/reports/stats", headers=world.h("admin"))
    stats = r.json()
    assert stats["total"] == 2
    assert stats["by_status"] == {"resolved": 1, "received": 1}
    assert stats["by_category"] == {"pothole": 1, "streetlight": 1}
    assert stats["by_department"] == {"roads": 1, "lighting": 1}
    assert stats["resolved"] == 1
    assert stats["avg_resolve_hours"] is not None
    assert len(stats["open_points"]) == 1
    # A department admin sees only their department.
    r = await world.client.get("/api/v1/reports/stats", headers=world.h("roads_admin"))
    assert r.json()["total"] == 1
    r = await world.client.get("/api/v1/reports/stats.csv", headers=world.h("admin"))
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["dimension", "key", "count"]
    assert ["status", "resolved", "1"] in rows
    r = await world.client.get("/api/v1/reports/audit.csv", headers=world.h("roads_admin"))
    rows = list(csv.reader(io.StringIO(r.text)))
    actions = {row[2] for row in rows[1:]}
    assert {"report.assign", "report.status"} <= actions
    assert all(row[4] == world.dept["roads"] for row in rows[1:])


async def test_category_crud_and_reanalysis(world: World, platform: Platform) -> None:
    h = world.h("admin")
    report = await world.file("alice", title="Graffiti on the wall", description="낙서 graffiti")
    assert (await world.wait_analyzed(report["id"]))["routing"] == "triage"
    r = await world.client.post(
        "/api/v1/reports/admin/categories",
        json={"code": "graffiti", "name": "Graffiti", "keywords": ["낙서"]},
        headers=h,
    )
    assert r.status_code == 201
    cat = r.json()
    r = await world.client.post(
        "/api/v1/reports/admin/rules",
        json={"category": "graffiti", "department_id": world.dept["lighting"]},
        headers=h,
    )
    assert r.status_code == 201
    r = await world.client.patch(
        f"/api/v1/reports/admin/categories/{cat['id']}", json={"name": "Graffiti / 낙서"}, headers=h
    )
    assert r.json()["name"] == "Graffiti / 낙서"
    r = await world.client.post(
        "/api/v1/reports/admin/categories", json={"code": "graffiti", "name": "x"}, headers=h
    )
    assert r.status_code == 409
    # Batch re-analysis from the admin API (the CLI shares enqueue_reanalysis) routes it now.
    r = await world.client.post(
        "/api/v1/reports/admin/reanalyze", json={"status": ["received"]}, headers=world.h("alice")
    )
    assert r.status_code == 403
    r = await world.client.post(
        "/api/v1/reports/admin/reanalyze", json={"status": ["flying"]}, headers=h
    )
    assert r.status_code == 422
    r = await world.client.post(
        "/api/v1/reports/admin/reanalyze", json={"status": ["resolved"]}, headers=h
    )
    assert r.json() == {"enqueued": 0}
    r = await world.client.post("/api/v1/reports/admin/reanalyze", json={}, headers=h)
    assert r.json() == {"enqueued": 1}
    await world.settle()
    body = (await world.client.get(f"/api/v1/reports/{report['id']}", headers=h)).json()
    assert body["analysis"]["category"] == "graffiti"
    assert body["department_id"] == world.dept["lighting"]
    assert body["routing"] == "routed"
    # A direct run (what the job does) is idempotent.
    analysis = await analyze_report(platform, uuid.UUID(report["id"]))
    assert analysis is not None
    assert analysis["category"] == "graffiti"
    # A department that still holds reports cannot be deleted (they would vanish from inboxes).
    r = await world.client.delete(
        f"/api/v1/reports/admin/departments/{world.dept['lighting']}", headers=h
    )
    assert r.status_code == 409
    assert "reroute" in r.json()["detail"]
    r = await world.client.post(
        "/api/v1/reports/admin/departments", json={"slug": "parks", "name": "Parks"}, headers=h
    )
    assert r.status_code == 201
    dept = r.json()["id"]
    r = await world.client.patch(
        f"/api/v1/reports/admin/departments/{dept}", json={"name": "Parks 공원"}, headers=h
    )
    assert r.json()["name"] == "Parks 공원"
    r = await world.client.get("/api/v1/reports/admin/rules", headers=h)
    assert len(r.json()) == 4
    assert (
        await world.client.delete(f"/api/v1/reports/admin/departments/{dept}", headers=h)
    ).status_code == 204
    r = await world.client.get("/api/v1/reports/audit", headers=h)
    assert {
        "department.created",
        "department.updated",
        "department.deleted",
        "category.created",
        "rule.created",
        "report.reanalyze",
    } <= {a["action"] for a in r.json()}
    r = await world.client.delete(f"/api/v1/reports/admin/categories/{cat['id']}", headers=h)
    assert r.status_code == 204
    assert "graffiti" not in {
        c["code"] for c in (await world.client.get("/api/v1/reports/categories")).json()
    }
