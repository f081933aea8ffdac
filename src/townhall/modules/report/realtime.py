"""Live notifications: /api/v1/reports/ws relays the user's channel report:user:<id>."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from townhall.core.deps import PlatformDep
from townhall.core.realtime import Connection, WebSocketRefused, authenticate_websocket
from townhall.modules.report.notify import user_channel
from townhall.modules.report.repository import ReportRepository

router = APIRouter()


@router.websocket("/api/v1/reports/ws")
async def reports_feed(websocket: WebSocket, platform: PlatformDep) -> None:
    """The signed-in user's notifications, live; {"type":"ready","unread":n} first."""
    try:
        principal = await authenticate_websocket(websocket, platform)
    except WebSocketRefused:
        return
    conn = Connection.for_platform(websocket, platform)

    async def resync() -> None:
        conn.send_nowait({"type": "resync"})

    await conn.subscribe(
        platform.pubsub, user_channel(principal.id), transform=lambda m: m.data, on_gap=resync
    )
    async with platform.db.session() as session:
        unread = await ReportRepository(session).unread_count(principal.id)
    conn.send_nowait({"type": "ready", "unread": unread})
    await conn.run()
