"""Bad input gives clear errors and changes nothing."""

from __future__ import annotations

import io

from PIL import Image

from townhall.core.platform import Platform

from .conftest import PDF, SEOUL, World, jpeg


async def count_reports(world: World) -> int:
    r = await world.client.get("/api/v1/reports")
    total: int = r.json()["total"]
    return total


async def stored_keys(platform: Platform) -> list[str]:
    return [k async for k in platform.storage.list_keys("reports")]


async def test_rejected_uploads_leave_nothing(world: World, platform: Platform) -> None:
    big = io.BytesIO()
    Image.effect_noise((700, 700), 100).convert("RGB").save(big, "PNG")
    assert big.tell() > 300_000  # over report_max_photo_bytes in these tests
    cases = [
        ({"lat": SEOUL[0], "lng": SEOUL[1]}, None, 422, "outside the service area"),
        ({"lat": "north", "lng": 127.1}, None, 422, "lat"),
        ({"lat": "nan", "lng": 127.1}, None, 422, "lat"),
        ({}, [("p.jpg", jpeg(), "image/jpeg")] * 11, 422, "1 to 10 photos"),
        ({}, [], 422, "1 to 10 photos"),
        ({}, [("big.png", big.getvalue(), "image/png")], 413, "larger than"),
        ({}, [("doc.pdf", PDF, "application/pdf")], 415, ""),
        ({}, [("fake.jpg", PDF, "image/jpeg")], 422, ""),
        ({}, [("ok.jpg", jpeg(), "image/jpeg"), ("doc.pdf", PDF, "application/pdf")], 415, ""),
        ({"category": "nope"}, None, 422, "unknown category"),
        ({"title": ""}, None, 422, "title"),
    ]
    for fields, photos, status, words in cases:
        data = {"title": "t", "description": "d", "lat": "35.82", "lng": "127.14", **fields}
        files = [
            ("photos", p)
            for p in (photos if photos is not None else [("a.jpg", jpeg(), "image/jpeg")])
        ]
        r = await world.client.post(
            "/api/v1/reports",
            data={k: str(v) for k, v in data.items()},
            files=files or None,
            headers=world.h("alice"),
        )
        assert r.status_code == status, (fields, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert words in r.json()["detail"], r.json()
    assert await count_reports(world) == 0
    assert await stored_keys(platform) == []
    await world.file("alice")  # the check above can see stored photos
    assert len(await stored_keys(platform)) == 2  # original + public copy


async def test_a_40_mb_photo_is_refused_before_it_is_read(world: World, platform: Platform) -> None:
    huge = b"\xff\xd8\xff\xe0" + bytes(40 * 1024 * 1024)
    r = await world.client.post(
        "/api/v1/reports",
        data={"title": "t", "lat": "35.82", "lng": "127.14"},
        files=[("photos", ("huge.jpg", huge, "image/jpeg"))],
        headers=world.h("alice"),
    )
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await count_reports(world) == 0
    assert await stored_keys(platform) == []


async def test_exif_is_stripped_from_the_public_copy_and_kept_private(world: World) -> None:
    report = await world.file("alice")
    photo = report["photos"][0]
    public = await world.client.get(photo["url"])
    assert public.status_code == 200
    image = Image.open(io.BytesIO(public.content))
    assert dict(image.getexif()) == {}
    assert photo["original_url"] is None  # the reporter sees only the public copy
    staff = (
        await world.client.get(f"/api/v1/reports/{report['id']}", headers=world.h("admin"))
    ).json()
    original = await world.client.get(staff["photos"][0]["original_url"])
    assert Image.open(io.BytesIO(original.content)).getexif()[0x010F] == "SecretCam"


async def test_disallowed_transitions_are_refused(world: World) -> None:
    report = await world.file("alice", description="도로 포트홀 pothole")
    rid = report["id"]
    await world.wait_analyzed(rid)
    h = world.h("roads_officer")
    for body, status in (
        ({"status": "resolved", "note": "skip ahead"}, 409),
        ({"status": "assigned", "note": "nobody"}, 409),
        ({"status": "duplicate", "note": "use merge"}, 409),
        ({"status": "flying", "note": "x"}, 422),
        ({"status": "in_progress", "note": ""}, 422),
        ({"status": "in_progress"}, 422),
    ):
        r = await world.client.post(f"/api/v1/reports/{rid}/status", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
    after = (await world.client.get(f"/api/v1/reports/{rid}")).json()
    assert after["status"] == "received"
    assert after["updates"] == []
    # An officer of another department cannot be made the assignee.
    r = await world.client.post(
        f"/api/v1/reports/{rid}/assign",
        json={"assignee_id": world.users["light_officer"]["id"], "note": "x"},
        headers=world.h("roads_admin"),
    )
    assert r.status_code == 422


async def test_nearby_validates_numbers_and_area(world: World) -> None:
    for query in ("lat=abc&lng=127.1", "lat=35.8", f"lat={SEOUL[0]}&lng={SEOUL[1]}"):
        r = await world.client.get(f"/api/v1/reports/nearby?{query}")
        assert r.status_code == 422, query


async def test_filing_past_the_per_user_limit_gets_429_and_files_nothing(
    world: World, platform: Platform
) -> None:
    platform.settings.report_filings_per_hour = 2
    before = await count_reports(world)
    for _ in range(2):
        await world.file("alice")
    refused = await world.file("alice", expect=429)
    assert refused["status"] == 429
    assert await count_reports(world) == before + 2
    await world.file("bob")  # the limit is per user
