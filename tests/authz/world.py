"""One world for the authorization matrix: five roles and one resource of every app type.

Roles: `owner` (made everything), `member` (a read-only member wherever sharing exists: the
Docs workspace, the workbook, the Sync collection), `other` (a signed-in stranger), `anon`
(no token) and `admin` (the `admin` role, not a member of anything).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.fixtures.app import signup
from tests.modules.doc.conftest import png_bytes
from tests.modules.quiz.helpers import QUESTIONS, Client
from tests.modules.report.conftest import JEONJU, jpeg
from townhall.core.auth.rbac import grant_role
from townhall.core.platform import Platform

ROLES = ("owner", "member", "other", "anon", "admin")
USERS = ("owner", "member", "other", "admin", "bystander")
DOC = "/api/v1/doc"
SHEET = "/api/v1/sheet/workbooks"
SYNC = "/api/v1/sync/collections"
QUIZ = "/api/v1/quizzes"
REPORT = "/api/v1/reports"
QUIZ_BODY: dict[str, Any] = {"title": "Private", "is_public": False, "questions": QUESTIONS[:1]}


def email(who: str) -> str:
    return f"authz-{who}@example.com"


@dataclass
class World:
    base: str
    http: httpx.AsyncClient
    platform: Platform
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)

    def h(self, role: str) -> dict[str, str]:
        token = self.tokens.get(role)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def token(self, role: str) -> str | None:
        return self.tokens.get(role)

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")

    async def ok(self, method: str, url: str, expect: int = 200, **kw: Any) -> Any:
        """An owner request that must succeed (world building)."""
        kw.setdefault("headers", self.h("owner"))
        response = await self.http.request(method, url, **kw)
        assert response.status_code == expect, f"{method} {url}: {response.text}"
        return response.json() if response.content else None

    # -- fresh resources for the cases that destroy or move one --------------------------------

    async def page(self) -> str:
        url = f"{DOC}/workspaces/{self.ids['workspace']}/pages"
        return str((await self.ok("POST", url, 201, json={"title": "Notes"}))["id"])

    async def trashed_page(self) -> str:
        page = await self.page()
        await self.ok("POST", f"{DOC}/pages/{page}/archive")
        return page

    async def revoked_public_page(self) -> tuple[str, str]:
        """A page whose public link was made and revoked: (page id, the dead token)."""
        page = await self.page()
        link = await self.ok("POST", f"{DOC}/pages/{page}/public-link")
        await self.ok("DELETE", f"{DOC}/pages/{page}/public-link", 204)
        return page, str(link["token"])

    async def workbook(self) -> str:
        book = await self.ok("POST", SHEET, 201, json={"name": "Budget"})
        await self.ok(
            "POST",
            f"{SHEET}/{book['id']}/members",
            201,
            json={"email": email("member"), "role": "viewer"},
        )
        return str(book["id"])

    async def sync_document(self) -> str:
        doc_id = uuid.uuid4().hex
        await self.ok(
            "POST",
            f"{SYNC}/{self.ids['collection']}/documents",
            201,
            json={"id": doc_id, "data": {}},
        )
        return doc_id

    async def link(self) -> str:
        made = await self.ok(
            "POST", "/api/v1/links", 201, json={"url": f"https://example.com/{uuid.uuid4().hex}"}
        )
        return str(made["id"])

    async def quiz(self, who: str = "owner") -> str:
        made = await self.ok("POST", QUIZ, 201, json=QUIZ_BODY, headers=self.h(who))
        return str(made["id"])

    async def report(self) -> str:
        data = {"title": "Pothole", "lat": str(JEONJU[0]), "lng": str(JEONJU[1])}
        files = [("photos", ("a.jpg", jpeg(), "image/jpeg"))]
        made = await self.ok("POST", REPORT, 201, data=data, files=files)
        return str(made["id"])


async def build(base: str, http: httpx.AsyncClient, platform: Platform) -> World:
    world = World(base, http, platform)
    for who in USERS:
        world.tokens[who] = (await signup(http, email(who), display_name=who))["access_token"]
    me = await http.get("/api/v1/auth/me", headers=world.h("admin"))
    async with platform.db.session() as session:
        await grant_role(session, uuid.UUID(me.json()["id"]), "admin")
    await _docs(world)
    await _sheet_sync_links(world)
    await _quiz(world)
    await _reports(world)
    return world


async def _docs(world: World) -> None:
    ids = world.ids
    space = await world.ok("POST", f"{DOC}/workspaces", 201, json={"name": "Team"})
    ids["workspace"] = space["id"]
    member = {"email": email("member"), "role": "viewer"}
    await world.ok("POST", f"{DOC}/workspaces/{space['id']}/members", 201, json=member)
    page = await world.ok(
        "POST", f"{DOC}/workspaces/{space['id']}/pages", 201, json={"title": "Home"}
    )
    ids["page"], ids["page_collab"] = page["id"], page["collab_id"]
    ids["image"], ids["file_key"] = await _image(world, page["id"])
    # A second page has the public link: "Home" stays private (a public page is readable by
    # anyone who knows its id: docs/architecture.md, "public link: viewer").
    published = await world.ok(
        "POST", f"{DOC}/workspaces/{space['id']}/pages", 201, json={"title": "Published"}
    )
    ids["public_page"], ids["public_collab"] = published["id"], published["collab_id"]
    ids["public_image"], _ = await _image(world, published["id"])
    link = await world.ok("POST", f"{DOC}/pages/{published['id']}/public-link")
    ids["public_token"] = link["token"]


async def _image(world: World, page: str) -> tuple[str, str]:
    """An image uploaded to `page`: (its name in the page's image URL, its storage key)."""
    files = {"file": ("a.png", png_bytes(), "image/png")}
    image = await world.ok("POST", f"{DOC}/pages/{page}/images", 201, files=files)
    return image["src"].rsplit("/", 1)[-1], image["key"]


async def _sheet_sync_links(world: World) -> None:
    ids = world.ids
    ids["workbook"] = await world.workbook()
    await world.ok("POST", SYNC, 201, json={"name": "Board", "slug": "authz-board"})
    ids["collection"] = "authz-board"
    member = {"email": email("member"), "role": "read"}
    await world.ok("POST", f"{SYNC}/authz-board/members", 201, json=member)
    ids["sync_doc"] = await world.sync_document()
    ids["link"] = await world.link()
    ids["link_url"] = (await world.ok("GET", f"/api/v1/links/{ids['link']}"))["url"]


async def _quiz(world: World) -> None:
    """The owner's private quiz hosted as game A; the other user's game B with one player."""
    ids = world.ids
    ids["quiz"] = await world.quiz()
    host_a = await Client().connect(world.base, world.token("owner"))
    created = await host_a.call("host_create", {"quiz_id": ids["quiz"]})
    assert created["ok"], created
    ids["pin_a"], ids["game"] = created["pin"], created["game_id"]
    host_b = await Client().connect(world.base, world.token("other"))
    created_b = await host_b.call("host_create", {"quiz_id": await world.quiz("other")})
    assert created_b["ok"], created_b
    ids["pin_b"] = created_b["pin"]
    player_a = await Client().connect(world.base)
    joined = await player_a.call("join", {"pin": ids["pin_a"], "nickname": "Pat"})
    assert joined["ok"], joined
    ids["player_a"] = str(joined["player"])
    world.live["sockets"] = [host_a, host_b, player_a]
    world.live["player"] = player_a


async def _reports(world: World) -> None:
    """A report by the owner; an admin's status change notifies the owner (and nobody else)."""
    ids = world.ids
    ids["report"] = await world.report()
    feeds = {who: await _feed(world, who) for who in ("owner", "other", "admin")}
    note = {"status": "in_progress", "note": "on it"}
    await world.ok("POST", f"{REPORT}/{ids['report']}/status", json=note, headers=world.h("admin"))
    await asyncio.sleep(0.5)
    world.live["notified"] = {}
    for who, ws in feeds.items():
        got: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while True:  # up to 1 s for the first message, then until 0.3 s of quiet
                async with asyncio.timeout(0.3 if got else 1.0):
                    got.append(json.loads(await ws.recv()))
        world.live["notified"][who] = [m for m in got if m.get("type") == "notification"]
        await ws.close()
    listed = await world.ok("GET", f"{REPORT}/notifications")
    assert listed, "the status change did not notify the reporter"
    ids["notification"] = listed[0]["id"]


async def _feed(world: World, who: str) -> Any:
    ws = await connect(f"{world.ws_base}/api/v1/reports/ws?token={world.token(who)}")
    ready = json.loads(await ws.recv())
    assert ready["type"] == "ready", ready
    return ws


async def close(world: World) -> None:
    for sock in world.live.get("sockets", []):
        with contextlib.suppress(Exception):
            await sock.close()
