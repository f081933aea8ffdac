"""The demo loader: reference data, the roads officer, and Alice's reports routed to him."""

from __future__ import annotations

import httpx

from townhall.core.auth.service import AuthService
from townhall.core.platform import Platform
from townhall.modules.report import demo

from .conftest import settle


async def test_demo_loader(client: httpx.AsyncClient, platform: Platform) -> None:
    async with platform.db.session() as session:
        alice = await AuthService(platform.settings, platform.cache).create_user(
            session, email="alice@example.com", display_name="Alice", password="password123"
        )
    async with platform.db.session() as session:
        await demo.load(platform, session, {"alice@example.com": alice})
    async with platform.db.session() as session:
        await demo.load(platform, session, {"alice@example.com": alice})  # idempotent
    r = await client.post(
        "/api/v1/auth/login",
        json={"email": demo.OFFICER, "password": platform.settings.demo_password},
    )
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    client.cookies.clear()
    assert len((await client.get("/api/v1/reports/categories")).json()) == len(demo.CATEGORIES)
    await settle(platform)  # the analysis job routes the pothole report to the roads officer
    inbox = (await client.get("/api/v1/reports?queue=inbox", headers=headers)).json()
    assert [x["category"] for x in inbox["items"]] == ["pothole"]
    public = (await client.get("/api/v1/reports")).json()
    assert public["total"] == 2
    anonymous = next(x for x in public["items"] if x["anonymous"])
    assert anonymous["reporter"] is None
    notes = (await client.get("/api/v1/reports/notifications", headers=headers)).json()
    assert [n["kind"] for n in notes] == ["report.routed"]
