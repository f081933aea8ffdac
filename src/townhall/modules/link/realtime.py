"""Live status of a user's links: pub/sub announcements and the /api/v1/links/ws feed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from townhall.core.platform import Platform

log = structlog.get_logger(__name__)

router = APIRouter()


def user_channel(user_id: uuid.UUID) -> str:
    return f"link:user:{user_id}"


async def announce(
    platform: Platform, user_id: uuid.UUID, link_id: uuid.UUID, status: str, **extra: Any
) -> None:
    """Tell the user's open pages that a link changed (the state is already committed)."""
    data = {"type": "link.status", "id": str(link_id), "status": status, **extra}
    try:
        await platform.pubsub.publish(user_channel(user_id), data)
    except Exception:
        # An announcement is a hint; pages resync from the API.
        log.warning("link announcement failed", link_id=str(link_id), exc_info=True)


@router.websocket("/api/v1/links/ws")
async def links_feed(websocket: WebSocket) -> None:
    """Status changes of the user's links as JSON messages; {"type": "resync"} after a gap."""
    from townhall.core.auth.service import AuthService
    from townhall.core.deps import authenticate, token_from
    from townhall.core.errors import AppError

    platform: Platform = websocket.app.state.platform
    token = token_from(websocket, None)
    try:
        if token is None:
            raise AppError("authentication required", 401)
        async with platform.db.session() as session:
            principal = await authenticate(
                AuthService(platform.settings, platform.cache), session, token
            )
    except AppError:
        await websocket.close(code=4401, reason="authentication required")
        return
    await websocket.accept()

    async def forward() -> None:
        async with platform.pubsub.subscribe(user_channel(principal.id)) as sub:
            await websocket.send_json({"type": "ready"})
            async for message in sub:
                if message.gap:
                    await websocket.send_json({"type": "resync"})
                await websocket.send_json(message.data)

    async def drain() -> None:
        while True:  # the client only talks to say goodbye; this notices it leaving
            await websocket.receive_text()

    tasks = [asyncio.create_task(forward()), asyncio.create_task(drain())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()
