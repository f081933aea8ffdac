"""Live status of a user's links: pub/sub announcements and the /api/v1/links/ws feed."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket

from townhall.core.platform import Platform
from townhall.core.realtime import Connection, WebSocketRefused, authenticate_websocket

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
    """Status changes of the user's links as JSON: {"type": "link.status", "id", "status"}.

    After a pub/sub gap the socket closes with 4408 "resync": the page reloads its list.
    """
    platform: Platform = websocket.app.state.platform
    try:
        principal = await authenticate_websocket(websocket, platform)
    except WebSocketRefused:
        return
    connection = Connection.for_platform(websocket, platform)
    await connection.subscribe(
        platform.pubsub, user_channel(principal.id), transform=lambda message: message.data
    )
    await connection.send({"type": "ready"})
    await connection.run()
