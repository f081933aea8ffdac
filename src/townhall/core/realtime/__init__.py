"""Helpers shared by every app's WebSocket and SSE endpoints."""

from __future__ import annotations

from townhall.core.realtime.auth import (
    TOO_MANY_CONNECTIONS,
    WebSocketRefused,
    authenticate_websocket,
    claim_connection,
    websocket_token,
)
from townhall.core.realtime.connection import Connection
from townhall.core.realtime.registry import (
    CLOSE_FORBIDDEN,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_RESYNC,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    Connections,
    ConnectionSlotsMiddleware,
)
from townhall.core.realtime.sse import (
    EventSourceResponse,
    ServerEvent,
    format_comment,
    format_event,
    last_event_id,
)

__all__ = [
    "CLOSE_FORBIDDEN",
    "CLOSE_INTERNAL",
    "CLOSE_NORMAL",
    "CLOSE_RESYNC",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN",
    "CLOSE_UNAUTHORIZED",
    "TOO_MANY_CONNECTIONS",
    "Connection",
    "ConnectionSlotsMiddleware",
    "Connections",
    "EventSourceResponse",
    "ServerEvent",
    "WebSocketRefused",
    "authenticate_websocket",
    "claim_connection",
    "format_comment",
    "format_event",
    "last_event_id",
    "websocket_token",
]
