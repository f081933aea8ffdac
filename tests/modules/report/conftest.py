"""Reports fixtures: reference data through the admin API, staff accounts, photos, helpers."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image
from tests.fixtures.app import make_settings, signup
from tests.fixtures.services import free_port

from townhall.core.auth.service import AuthService
from townhall.core.config import Settings
from townhall.core.platform import Platform

JEONJU = (35.8242, 127.1480)
SEOUL = (37.5665, 126.9780)


def jpeg(colour: tuple[int, int, int] = (120, 120, 120), size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x0110] = "GPS-Phone"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + b"0" * 5000


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        job_poll_seconds=0.05,
        report_max_photo_bytes=300_000,
        report_retry_delay_seconds=0.05,
    )


@dataclass
class World:
    """Reference data and accounts: two departments, an officer each, a department admin."""

    client: httpx.AsyncClient
    platform: Platform
    dept: dict[str, str] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return dict(self.users[who]["headers"])

    async def file(
        self,
        who: str = "alice",
        *,
        title: str = "Pothole on the main road",
        description: str = "A deep pothole, 도로 포트홀 파손, cars swerve.",
        category: str | None = None,
        lat: float = JEONJU[0],
        lng: float = JEONJU[1],
        photos: list[tuple[str, bytes, str]] | None = None,
        anonymous: bool = False,
        expect: int = 201,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "title": title,
            "description": description,
            "lat": str(lat),
            "lng": str(lng),
            "address": "Paldal-ro",
            "anonymous": "true" if anonymous else "false",
        }
        if category:
            data["category"] = category
        files = [
            ("photos", p)
            for p in (photos if photos is not None else [("a.jpg", jpeg(), "image/jpeg")])
        ]
        r = await self.client.post(
            "/api/v1/reports", data=data, files=files or None, headers=self.h(who)
        )
        assert r.status_code == expect, r.text
        body: dict[str, Any] = r.json()
        return body

    async def wait_analyzed(self, report_id: str, who: str = "alice") -> dict[str, Any]:
        for _ in range(300):
            r = await self.client.get(f"/api/v1/reports/{report_id}", headers=self.h(who))
            body: dict[str, Any] = r.json()
            if body["routing"] != "pending":
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"report {report_id} was never analysed")


async def make_admin(client: httpx.AsyncClient, platform: Platform, email: str) -> dict[str, Any]:
    async with platform.db.session() as session:
        await AuthService(platform.settings, platform.cache).create_user(
            session,
            email=email,
            display_name="Root",
            password="password123",
            roles=("user", "admin"),
        )
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": "password123"})
    assert r.status_code == 200, r.text
    tokens: dict[str, Any] = r.json()
    tokens["headers"] = {"Authorization": f"Bearer {tokens['access_token']}"}
    client.cookies.clear()
    return tokens


CATEGORIES = [
    ("pothole", "Pothole", "roads", ["pothole", "도로", "포트홀"]),
    ("streetlight", "Streetlight out", "lighting", ["streetlight", "가로등"]),
    ("trash", "Trash", "lighting", ["trash", "쓰레기"]),
]


@pytest.fixture
async def world(client: httpx.AsyncClient, platform: Platform) -> World:
    w = World(client, platform)
    w.users["admin"] = await make_admin(client, platform, "root@example.com")
    for slug in ("roads", "lighting"):
        r = await client.post(
            "/api/v1/reports/admin/departments",
            json={"slug": slug, "name": slug.title()},
            headers=w.h("admin"),
        )
        assert r.status_code == 201, r.text
        w.dept[slug] = r.json()["id"]
    for n, (code, name, dept, keywords) in enumerate(CATEGORIES):
        r = await client.post(
            "/api/v1/reports/admin/categories",
            json={"code": code, "name": name, "keywords": keywords},
            headers=w.h("admin"),
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/api/v1/reports/admin/rules",
            json={"position": n, "category": code, "department_id": w.dept[dept]},
            headers=w.h("admin"),
        )
        assert r.status_code == 201, r.text
    for name in ("alice", "bob", "roads_officer", "roads_officer2", "light_officer", "roads_admin"):
        w.users[name] = await signup(client, f"{name}@example.com", display_name=name)
    for name, role, dept in (
        ("roads_officer", "officer", "roads"),
        ("roads_officer2", "officer", "roads"),
        ("light_officer", "officer", "lighting"),
        ("roads_admin", "department_admin", "roads"),
    ):
        r = await client.post(
            "/api/v1/reports/admin/staff",
            json={"email": f"{name}@example.com", "role": role, "department_id": w.dept[dept]},
            headers=w.h("admin"),
        )
        assert r.status_code == 204, r.text
    me = {n: (await client.get("/api/v1/auth/me", headers=w.h(n))).json() for n in w.users}
    for n, body in me.items():
        w.users[n]["id"] = body.get("id")
    return w


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    """The app (lifespan already running) on a free loopback port, for WebSocket clients."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
