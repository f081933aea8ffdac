"""Privacy gaps: staff lists stay masked, photos wait for the blur, anonymous comments."""

from __future__ import annotations

import uuid
from typing import Any

from townhall.core.db import utcnow
from townhall.core.platform import Platform
from townhall.modules.report.repository import ReportRepository

from .conftest import World


async def pii_views(world: World, rid: str) -> list[dict[str, Any]]:
    r = await world.client.get(f"/api/v1/reports/audit?report_id={rid}", headers=world.h("admin"))
    return [a for a in r.json() if a["action"] == "pii.view"]


async def test_staff_lists_are_masked_and_only_the_audited_detail_reveals(world: World) -> None:
    report = await world.file(
        "alice", title="Pothole, call 010-1234-5678", description="도로 포트홀"
    )
    rid = report["id"]
    await world.wait_analyzed(rid)
    for queue in ("inbox", "all", "public"):
        r = await world.client.get(
            f"/api/v1/reports?queue={queue}", headers=world.h("roads_officer")
        )
        [item] = r.json()["items"]
        assert "010-1234-5678" not in item["title"], queue
        assert item["masked"] is True
        assert item["analysis"] is not None  # staff still get the triage data in lists
    assert await pii_views(world, rid) == []
    body = (
        await world.client.get(f"/api/v1/reports/{rid}", headers=world.h("roads_officer"))
    ).json()
    assert "010-1234-5678" in body["title"]
    assert len(await pii_views(world, rid)) == 1


async def set_analyzed(platform: Platform, rid: str, analyzed: bool) -> None:
    async with platform.db.session() as session:
        report = await ReportRepository(session).get(uuid.UUID(rid))
        assert report is not None
        report.analyzed_at = utcnow() if analyzed else None


async def test_photos_are_public_only_after_the_analysis(world: World, platform: Platform) -> None:
    report = await world.file("alice", description="도로 포트홀 pothole")
    rid = report["id"]
    await world.wait_analyzed(rid)
    # As if the analysis (which blurs faces and plates) had not run yet.
    await set_analyzed(platform, rid, False)

    async def photo_count(who: str | None) -> int:
        headers = world.h(who) if who else {}
        body = (await world.client.get(f"/api/v1/reports/{rid}", headers=headers)).json()
        return len(body["photos"])

    assert await photo_count(None) == 0
    assert await photo_count("bob") == 0
    assert await photo_count("light_officer") == 0
    assert await photo_count("alice") == 1  # the reporter's own photo
    assert await photo_count("roads_officer") == 1
    public = (await world.client.get("/api/v1/reports")).json()["items"][0]
    assert public["photos"] == []
    [row] = (await world.client.get(f"/open311/v2/requests/{rid}.json")).json()
    assert row["media_url"] is None
    await set_analyzed(platform, rid, True)
    assert await photo_count(None) == 1
    [row] = (await world.client.get(f"/open311/v2/requests/{rid}.json")).json()
    assert row["media_url"]


async def test_an_anonymous_reporters_comment_does_not_name_them(world: World) -> None:
    report = await world.file("alice", anonymous=True, description="도로 포트홀 pothole")
    rid = report["id"]
    r = await world.client.post(
        f"/api/v1/reports/{rid}/comments", json={"body": "still there"}, headers=world.h("alice")
    )
    assert r.status_code == 201
    await world.client.post(
        f"/api/v1/reports/{rid}/comments", json={"body": "me too"}, headers=world.h("bob")
    )
    await world.wait_analyzed(rid)

    async def authors(who: str | None) -> list[str]:
        headers = world.h(who) if who else {}
        body = (await world.client.get(f"/api/v1/reports/{rid}", headers=headers)).json()
        return [c["author"] for c in body["comments"]]

    assert await authors(None) == ["Anonymous reporter", "bob"]
    assert await authors("bob") == ["Anonymous reporter", "bob"]
    assert await authors("light_officer") == ["Anonymous reporter", "bob"]
    assert await authors("alice") == ["alice", "bob"]
    assert await authors("roads_officer") == ["alice", "bob"]  # staff know the reporter
