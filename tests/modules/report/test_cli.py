"""`townhall reports reanalyze`: the batch re-analysis from the command line."""

from __future__ import annotations

from tests.fixtures.app import invoke_cli

from townhall.core.platform import Platform

from .conftest import World


async def test_reanalyze_from_the_cli_routes_with_a_new_category(
    world: World, platform: Platform
) -> None:
    report = await world.file("alice", title="Graffiti on the wall", description="낙서 graffiti")
    assert (await world.wait_analyzed(report["id"]))["routing"] == "triage"
    r = await world.client.post(
        "/api/v1/reports/admin/categories",
        json={"code": "graffiti", "name": "Graffiti", "keywords": ["낙서"]},
        headers=world.h("admin"),
    )
    assert r.status_code == 201
    r = await world.client.post(
        "/api/v1/reports/admin/rules",
        json={"category": "graffiti", "department_id": world.dept["lighting"]},
        headers=world.h("admin"),
    )
    assert r.status_code == 201

    # Bad input is refused before anything is queued.
    code, output = await invoke_cli(platform.settings, "reports", "reanalyze", "--status", "flying")
    assert code == 2
    assert "status" in output
    code, output = await invoke_cli(platform.settings, "reports", "reanalyze", "--limit", "0")
    assert code == 2
    assert "limit" in output
    code, output = await invoke_cli(
        platform.settings, "reports", "reanalyze", "--status", "resolved"
    )
    assert (code, output.strip()) == (0, "enqueued 0 report(s) for analysis")
    body = await world.client.get(f"/api/v1/reports/{report['id']}", headers=world.h("admin"))
    assert body.json()["routing"] == "triage"

    code, output = await invoke_cli(platform.settings, "reports", "reanalyze")
    assert (code, output.strip()) == (0, "enqueued 1 report(s) for analysis")
    await world.settle()
    body = await world.client.get(f"/api/v1/reports/{report['id']}", headers=world.h("admin"))
    assert body.json()["analysis"]["category"] == "graffiti"
    assert body.json()["department_id"] == world.dept["lighting"]
    assert body.json()["routing"] == "routed"
