"""Nearby open reports of the same category, ranked by text similarity; merge as duplicate."""

from __future__ import annotations

from .conftest import JEONJU, World


async def test_nearby_ranks_by_similarity_and_staff_merge(world: World) -> None:
    lat, lng = JEONJU
    a = await world.file(
        "alice", title="Pothole by the bus stop", description="도로 포트홀 버스정류장 앞"
    )
    b = await world.file(
        "alice",
        title="Crack in the asphalt",
        description="도로 균열 pothole",
        lat=lat + 0.001,  # ~111 m north
    )
    far = await world.file("alice", title="Pothole by the bus stop", lat=lat + 0.004)  # ~445 m
    light = await world.file("alice", title="Pothole by the bus stop", category="streetlight")
    for r in (a, b, far, light):
        await world.wait_analyzed(r["id"])
    r = await world.client.get(
        "/api/v1/reports/nearby",
        params={
            "lat": lat,
            "lng": lng,
            "category": "pothole",
            "text": "pothole at the bus stop 포트홀",
        },
        headers=world.h("bob"),
    )
    assert r.status_code == 200, r.text
    found = r.json()
    assert [x["id"] for x in found] == [a["id"], b["id"]]
    assert found[0]["similarity"] > found[1]["similarity"]
    assert 100 < found[1]["distance_m"] < 125
    # Staff merge b into a: b is a duplicate, its reporter follows a.
    r = await world.client.post(
        f"/api/v1/reports/{b['id']}/merge",
        json={"into_id": a["id"], "note": "same hole"},
        headers=world.h("roads_officer"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "duplicate"
    assert r.json()["duplicate_of_id"] == a["id"]
    r = await world.client.get(
        "/api/v1/reports/nearby", params={"lat": lat, "lng": lng, "category": "pothole"}
    )
    assert [x["id"] for x in r.json()] == [a["id"]]  # duplicates are no longer open
    # +1 instead of filing: Bob follows a.
    r = await world.client.put(f"/api/v1/reports/{a['id']}/follow", headers=world.h("bob"))
    assert r.json() == {"follower_count": 2}
    r = await world.client.delete(f"/api/v1/reports/{a['id']}/follow", headers=world.h("bob"))
    assert r.json() == {"follower_count": 1}
