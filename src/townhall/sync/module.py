"""The Sync API's descriptor: routers, static mount, demo board, jobs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from townhall.modules.registry import AppModule
from townhall.sync import endpoints, pages, realtime

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.auth.models import User
    from townhall.core.platform import Platform

STATIC = Path(__file__).parent / "static"
DEMO_SLUG = "demo-board"
DEMO_CARDS = (
    ("c1", "Sketch the board layout", "todo"),
    ("c2", "Wire the SSE client", "doing"),
    ("c3", "Write the sync engine", "done"),
)


def install(app: FastAPI) -> None:
    app.mount("/sync/static", StaticFiles(directory=STATIC), name="sync-static")


async def load_demo(platform: Platform, session: AsyncSession, users: dict[str, User]) -> None:
    """A shared kanban board owned by Alice, writable by Bob."""
    from townhall.core.auth.rbac import load_grants
    from townhall.core.deps import Principal
    from townhall.sync.service import SyncService

    alice = users.get("alice@example.com")
    bob = users.get("bob@example.com")
    if alice is None:
        return
    service = SyncService(session, platform.settings, platform.pubsub)
    if await service.repo.collection_by_slug(DEMO_SLUG) is not None:
        return
    principal = Principal(
        user=alice, family_id=alice.id, grants=await load_grants(session, alice.id)
    )
    await service.create_collection(principal, "Demo board", DEMO_SLUG)
    if bob is not None:
        await service.set_member(principal, DEMO_SLUG, bob.email, "write")
    for position, (card_id, title, column) in enumerate(DEMO_CARDS):
        await service.create(
            principal, DEMO_SLUG, card_id, {"title": title, "column": column, "order": position}
        )


def module() -> AppModule:
    return AppModule(
        slug="sync",
        title="Sync API",
        summary="Server-authoritative JSON documents, live over WebSocket and SSE.",
        seed="001",
        home_path="/sync",
        routers=(endpoints.router, realtime.router, pages.router),
        install=install,
        demo=load_demo,
        task_modules=("townhall.sync.tasks",),
    )
