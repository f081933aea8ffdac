"""WebSocket /api/v1/sync/ws: subscribe with a state vector, receive snapshots and events.

Client -> server: {"type": "subscribe", "streams": {slug: seq}, "client_id"?},
{"type": "unsubscribe", "streams": [slug]}, {"type": "ack", "client_id", "streams": {slug: seq}},
{"type": "ping"}. Server -> client: "subscribed", "resync" + "snapshot", "event", "ack",
"error", "pong". Clients never write through this channel (server authority).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from townhall.core.deps import Principal
from townhall.core.errors import AppError
from townhall.core.platform import Platform
from townhall.core.realtime.auth import WebSocketRefused, authenticate_websocket
from townhall.sync.live import follow
from townhall.sync.service import Access, SyncService, parse_vector

log = structlog.get_logger(__name__)
router = APIRouter()
MAX_MESSAGE_BYTES = 64 * 1024
CLOSE_TOO_BIG = 1009


class Connection:
    """One socket: its subscriptions (one follower task per stream) and a send lock."""

    def __init__(self, websocket: WebSocket, platform: Platform, principal: Principal) -> None:
        self.ws = websocket
        self.platform = platform
        self.principal = principal
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self.lock:
            await self.ws.send_text(text)

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send(json.dumps(data))

    async def error(self, message: str, **extra: Any) -> None:
        await self.send_json({"type": "error", "message": message, **extra})

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            vector = parse_vector(message.get("streams"))
            for slug, seq in vector.items():
                await self.subscribe(slug, seq)
        elif kind == "unsubscribe":
            names = message.get("streams")
            if not isinstance(names, list):
                raise AppError("unsubscribe needs a list of streams", 422)
            for slug in names:
                task = self.tasks.pop(str(slug), None)
                if task is not None:
                    task.cancel()
        elif kind == "ack":
            async with self.platform.db.session() as session:
                saved = await SyncService(session, self.platform.settings).ack(
                    self.principal, message.get("client_id", ""), message.get("streams") or {}
                )
            await self.send_json({"type": "ack", "streams": saved})
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            raise AppError(
                f"unknown message type {kind!r}; this channel is read-only, write over HTTP", 400
            )

    async def subscribe(self, slug: str, seq: int) -> None:
        async with self.platform.db.session() as session:
            access = await SyncService(session, self.platform.settings).access(self.principal, slug)
        old = self.tasks.pop(slug, None)
        if old is not None:
            old.cancel()
        self.tasks[slug] = asyncio.create_task(self.pump(access, seq))

    async def pump(self, access: Access, seq: int) -> None:
        slug = access.collection.slug
        try:
            await self.send_json({"type": "subscribed", "stream": slug, "seq": seq})
            async for item in follow(self.platform, self.principal, access, seq):
                if item.kind == "snapshot":
                    reason = (item.data or {}).get("reason")
                    await self.send_json({"type": "resync", "stream": slug, "reason": reason})
                    await self.send(item.text)
                elif item.kind == "event":
                    await self.send(item.text)
        except AppError as exc:  # e.g. membership revoked while subscribed
            with contextlib.suppress(Exception):
                await self.error(exc.message, stream=slug, status=exc.status_code)
        except (WebSocketDisconnect, ConnectionError):
            pass
        except Exception:
            if self.ws.application_state != WebSocketState.CONNECTED:
                return  # the socket closed under us (send after close): nobody to tell
            # Anything else must not end the subscription silently: the client is told to
            # subscribe again from its state vector (nothing is lost, the event table is truth).
            log.exception("sync subscription failed", stream=slug)
            with contextlib.suppress(Exception):
                await self.error(
                    "the subscription failed on the server; subscribe again from your position",
                    stream=slug,
                    status=500,
                    resubscribe=True,
                )
        finally:
            if self.tasks.get(slug) is asyncio.current_task():
                del self.tasks[slug]

    def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()


@router.websocket("/api/v1/sync/ws")
async def sync_socket(websocket: WebSocket) -> None:
    platform: Platform = websocket.app.state.platform
    try:
        principal = await authenticate_websocket(websocket, platform)
    except WebSocketRefused:
        return
    connection = Connection(websocket, platform, principal)
    try:
        while True:
            raw = await websocket.receive_text()
            if len(raw) > MAX_MESSAGE_BYTES:
                await websocket.close(CLOSE_TOO_BIG, "message too large")
                return
            try:
                message = json.loads(raw)
                if not isinstance(message, dict):
                    raise ValueError("a message is a JSON object")
            except ValueError as exc:
                await connection.error(f"malformed message: {exc}")
                continue
            try:
                await connection.handle(message)
            except AppError as exc:
                await connection.error(exc.message, status=exc.status_code)
    except WebSocketDisconnect:
        pass
    finally:
        connection.close()
