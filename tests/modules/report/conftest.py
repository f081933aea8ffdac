"""Reports fixtures: reference data through the admin API, staff accounts, photos, helpers."""

from __future__ import annotations

import asyncio
import io
import json
import time
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
from sqlalchemy import func, select
from tests.fixtures.app import make_settings
from tests.fixtures.services import free_port
from websockets.asyncio.client import ClientConnection, connect

from townhall.core.auth.rbac import grant_role
from townhall.core.auth.service import AuthService, ClientInfo
from townhall.core.config import Settings
from townhall.core.jobs.models import Job
from townhall.core.platform import Platform
from townhall.modules.report.models import Category, Department, Report, RoutingRule
from townhall.modules.report.repository import ReportRepository

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
    filed: list[str] = field(default_factory=list)

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
        if r.status_code == 201:
            self.filed.append(body["id"])
        return body

    async def settle(self) -> None:
        await settle(self.platform)

    async def wait_analyzed(self, report_id: str, who: str = "alice") -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = await self.client.get(f"/api/v1/reports/{report_id}", headers=self.h(who))
            body: dict[str, Any] = r.json()
            if body["routing"] != "pending":
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"report {report_id} was never analysed")


async def settle(platform: Platform, timeout: float = 60.0) -> None:
    """Wait until every report was analysed and its job acknowledged (none cut off at shutdown)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with platform.db.session() as session:
            pending = await session.scalar(
                select(func.count()).select_from(Report).where(Report.routing == "pending")
            )
            busy = await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.task == "report.analyze", Job.status.in_(["queued", "running"]))
            )
        if not pending and not busy:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"report analysis did not settle within {timeout}s")


CATEGORIES = [
    ("pothole", "Pothole", "roads", ["pothole", "도로", "포트홀"]),
    ("streetlight", "Streetlight out", "lighting", ["streetlight", "가로등"]),
    ("trash", "Trash", "lighting", ["trash", "쓰레기"]),
]


STAFF = (
    ("roads_officer", "officer", "roads"),
    ("roads_officer2", "officer", "roads"),
    ("light_officer", "officer", "lighting"),
    ("roads_admin", "department_admin", "roads"),
)


@pytest.fixture
async def world(client: httpx.AsyncClient, platform: Platform) -> AsyncIterator[World]:
    """Built in one transaction (the admin API itself is tested in test_stats/test_rbac)."""
    w = await build_world(client, platform)
    yield w
    await w.settle()


async def build_world(client: httpx.AsyncClient, platform: Platform) -> World:
    """Departments, categories with routing rules, citizens, staff and an admin, signed in."""
    w = World(client, platform)
    auth = AuthService(platform.settings, platform.cache)
    async with platform.db.session() as session:
        repo = ReportRepository(session)
        departments = {
            slug: Department(slug=slug, name=slug.title()) for slug in ("roads", "lighting")
        }
        await repo.add(*departments.values())
        for n, (code, name, dept, keywords) in enumerate(CATEGORIES):
            category = Category(code=code, name=name, keywords=keywords)
            await repo.add(category)
            await repo.add(
                RoutingRule(position=n, category_id=category.id, department_id=departments[dept].id)
            )
        names = ("admin", "alice", "bob", *(name for name, _, _ in STAFF))
        users = {}
        for name in names:
            email = "root@example.com" if name == "admin" else f"{name}@example.com"
            users[name] = await auth.create_user(
                session,
                email=email,
                display_name=name,
                password=None,
                roles=("user", "admin") if name == "admin" else ("user",),
            )
        for name, role, dept in STAFF:
            await grant_role(session, users[name].id, role, f"department:{departments[dept].id}")
        for name, user in users.items():
            issued = await auth.start_session(session, user, ClientInfo("127.0.0.1", "tests"))
            w.users[name] = {
                "access_token": issued.access_token,
                "headers": {"Authorization": f"Bearer {issued.access_token}"},
                "id": str(user.id),
            }
        w.dept = {slug: str(d.id) for slug, d in departments.items()}
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


async def open_ws(port: int, world: World, who: str) -> ClientConnection:
    token = world.users[who]["access_token"]
    ws = await connect(f"ws://127.0.0.1:{port}/api/v1/reports/ws?token={token}")
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["type"] == "ready"
    return ws


async def drain(ws: ClientConnection, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Every notification that arrives within `seconds` (pings skipped)."""
    got = []
    while True:
        try:
            msg = json.loads(await asyncio.wait_for(ws.recv(), seconds))
        except TimeoutError:
            return got
        if msg.get("type") == "notification":
            got.append(msg["notification"])


async def wait_for(ws: ClientConnection, kind: str) -> dict[str, Any]:
    for _ in range(100):
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg.get("type") == "notification" and msg["notification"]["kind"] == kind:
            note: dict[str, Any] = msg["notification"]
            return note
    raise AssertionError(f"no {kind} notification")
