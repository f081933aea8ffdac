"""PII masking (Korean and English) in public views; staff see the text, and that is audited."""

from __future__ import annotations

import pytest

from townhall.modules.report.pii import has_pii, mask_pii

from .conftest import World

CASES = [
    ("Call me at 010-1234-5678 please", "010-1234-5678"),
    ("연락처 01012345678 입니다", "01012345678"),
    ("서울 사무실 02-123-4567", "02-123-4567"),
    ("International +82 10-9876-5432", "+82 10-9876-5432"),
    ("US office +1 (555) 123-4567", "+1 (555) 123-4567"),
    ("or (555) 987-6543 in the evening", "(555) 987-6543"),
    ("mail kim.minsu@example.co.kr now", "kim.minsu@example.co.kr"),
    ("주민번호 900101-1234567 유출", "900101-1234567"),
    ("RRN without hyphen 9001012345678", "9001012345678"),
    ("불법주차 차량 12가3456 입니다", "12가3456"),
    ("car 123가4567 blocks the lane", "123가4567"),
    ("번호판 서울12가3456 차량", "서울12가3456"),
]


@pytest.mark.parametrize(("text", "secret"), CASES)
def test_each_kind_is_masked(text: str, secret: str) -> None:
    masked = mask_pii(text)
    assert secret not in masked
    assert has_pii(text)
    # The words around it survive.
    assert text.split()[0] in masked


@pytest.mark.parametrize(
    "text",
    [
        "Pothole 30 cm wide near bus stop 12",
        "2024-01-15 오후 3시에 발견",
        "도로 포트홀 위험합니다",
        "Version 1.2.3 of the app, lane 2",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert mask_pii(text) == text


async def test_public_views_mask_and_staff_views_are_audited(world: World) -> None:
    report = await world.file(
        "alice",
        title="Pothole, call 010-1234-5678",
        description="도로 포트홀. 차량 12가3456 damaged; email me at alice@mail.com",
    )
    rid = report["id"]
    await world.wait_analyzed(rid)
    r = await world.client.post(
        f"/api/v1/reports/{rid}/comments",
        json={"body": "I saw it too, 주민번호 900101-1234567 (oops)"},
        headers=world.h("bob"),
    )
    assert r.status_code == 201
    for who in (None, "bob", "light_officer"):
        headers = world.h(who) if who else {}
        body = (await world.client.get(f"/api/v1/reports/{rid}", headers=headers)).json()
        text = body["title"] + body["description"] + body["comments"][0]["body"]
        for secret in ("010-1234-5678", "12가3456", "alice@mail.com", "900101-1234567"):
            assert secret not in text
        assert body["masked"] is True
        assert body["analysis"] is None
    public = (await world.client.get("/api/v1/reports")).json()["items"][0]
    assert "010-1234-5678" not in public["title"]
    r = await world.client.get("/api/v1/reports/audit", headers=world.h("admin"))
    assert [a for a in r.json() if a["action"] == "pii.view"] == []
    # Staff of the department see the text; each such view is audited.
    body = (
        await world.client.get(f"/api/v1/reports/{rid}", headers=world.h("roads_officer"))
    ).json()
    assert "010-1234-5678" in body["title"]
    assert body["masked"] is False
    r = await world.client.get(f"/api/v1/reports/audit?report_id={rid}", headers=world.h("admin"))
    views = [a for a in r.json() if a["action"] == "pii.view"]
    assert len(views) == 1
    assert views[0]["actor_id"] == world.users["roads_officer"]["id"]
    # Open311 is public too.
    r = await world.client.get(f"/open311/v2/requests/{rid}.json")
    assert "12가3456" not in r.text
    assert "alice@mail.com" not in r.text
