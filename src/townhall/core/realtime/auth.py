"""Authenticate a WebSocket on connect: header, cookie, ?token= or a first auth message."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from townhall.core.errors import AppError
from townhall.core.realtime.registry import (
    CLOSE_SERVICE_RESTART,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
)

if TYPE_CHECKING:
    from townhall.core.deps import Principal
    from townhall.core.platform import Platform

AUTH_MESSAGE_TIMEOUT = 5.0
MAX_AUTH_MESSAGE_BYTES = 8192


class WebSocketRefused(WebSocketDisconnect):
    """The socket was closed during authentication; the endpoint should just return."""


def websocket_token(websocket: WebSocket) -> str | None:
    """The token from `Authorization: Bearer`, the `th_access` cookie or `?token=`."""
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = websocket.cookies.get("th_access")
    if cookie:
        return cookie
    return websocket.query_params.get("token") or None


async def _first_message_token(websocket: WebSocket, timeout: float) -> str | None:
    """Browsers cannot set headers on WebSocket: accept `{"type":"auth","token":...}` first."""
    try:
        async with asyncio.timeout(timeout):
            message = await websocket.receive()
    except TimeoutError:
        return None
    if message["type"] == "websocket.disconnect":
        raise WebSocketRefused(message.get("code", 1000))
    raw = message.get("text") or message.get("bytes") or ""
    if len(raw) > MAX_AUTH_MESSAGE_BYTES:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("type") == "auth" and isinstance(body.get("token"), str):
        return str(body["token"])
    return None


async def authenticate_websocket(
    websocket: WebSocket,
    platform: Platform,
    *,
    subprotocol: str | None = None,
    allow_first_message: bool = True,
    timeout: float = AUTH_MESSAGE_TIMEOUT,
) -> Principal:
    """Accept the socket and return its Principal, or close it (4401) and raise WebSocketRefused.

    Accepting first lets the client see the 4401 close code (a refusal before accept is only
    an HTTP 403 to browsers). Close 1012 while the process drains, 1013 if auth cannot run.
    """
    # Imported here: deps imports the platform, which imports this package (registry).
    from townhall.core.auth.service import AuthService
    from townhall.core.deps import authenticate

    if websocket.client_state is WebSocketState.CONNECTING:
        await websocket.accept(subprotocol=subprotocol)
    if platform.connections.draining:
        await websocket.close(CLOSE_SERVICE_RESTART, "service restart")
        raise WebSocketRefused(CLOSE_SERVICE_RESTART, "service restart")
    token = websocket_token(websocket)
    if token is None and allow_first_message:
        token = await _first_message_token(websocket, timeout)
    if token is None:
        await websocket.close(CLOSE_UNAUTHORIZED, "authentication required")
        raise WebSocketRefused(CLOSE_UNAUTHORIZED, "authentication required")
    try:
        async with platform.db.sessionmaker() as session:
            principal = await authenticate(
                AuthService(platform.settings, platform.cache), session, token
            )
    except AppError as exc:
        reason = exc.message[:120]
        await websocket.close(CLOSE_UNAUTHORIZED, reason)
        raise WebSocketRefused(CLOSE_UNAUTHORIZED, reason) from exc
    except Exception as exc:
        await websocket.close(CLOSE_TRY_AGAIN, "try again later")
        raise WebSocketRefused(CLOSE_TRY_AGAIN, "try again later") from exc
    if not claim_connection(websocket, platform, principal):
        await websocket.close(CLOSE_TRY_AGAIN, TOO_MANY_CONNECTIONS)
        raise WebSocketRefused(CLOSE_TRY_AGAIN, TOO_MANY_CONNECTIONS)
    return principal


TOO_MANY_CONNECTIONS = "too many connections for this user; close one and retry"


def claim_connection(conn: HTTPConnection, platform: Platform, principal: Principal) -> bool:
    """Hold one of the user's real-time slots for the life of `conn`; False when none is left."""
    limit = platform.settings.realtime_connections_per_user
    return platform.connections.claim(conn.scope, principal.id, limit)
