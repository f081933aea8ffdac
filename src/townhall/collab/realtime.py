"""WebSockets: y-websocket sync (/collab/ws/{service}/{id}), y-webrtc signaling relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from townhall.collab import protocol as yp
from townhall.collab.engine import CollabEngine, get_engine
from townhall.collab.hooks import DOC_ID, Role
from townhall.collab.rooms import Peer
from townhall.collab.service import authorize
from townhall.collab.signaling import RateLimiter, SignalingConn, parse_message, parse_topic
from townhall.core.auth.service import AuthService
from townhall.core.deps import Principal, authenticate, token_from
from townhall.core.errors import AppError
from townhall.core.realtime import CLOSE_TRY_AGAIN, TOO_MANY_CONNECTIONS, claim_connection

log = structlog.get_logger(__name__)

router = APIRouter()

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_SLOW = 4408  # send queue overflowed: reconnect and resync
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
SEND_QUEUE = 512


class AuthFailed(Exception):
    pass


async def _principal(engine: CollabEngine, token: str | None) -> Principal | None:
    """Resolve a token (None = anonymous); AuthFailed when a token is given but invalid."""
    if not token:
        return None
    platform = engine.platform
    async with platform.db.sessionmaker() as session:
        try:
            return await authenticate(
                AuthService(platform.settings, platform.cache), session, token
            )
        except AppError as exc:
            raise AuthFailed(exc.message) from exc


async def _slot(websocket: WebSocket, engine: CollabEngine, principal: Principal | None) -> bool:
    """Claim a signed-in user's connection slot; closes with 1013 when none is left."""
    if principal is None or claim_connection(websocket, engine.platform, principal):
        return True
    await _close(websocket, CLOSE_TRY_AGAIN, TOO_MANY_CONNECTIONS)
    return False


async def _role(
    engine: CollabEngine, principal: Principal | None, service: str, doc_id: str
) -> Role | None:
    async with engine.platform.db.sessionmaker() as session:
        try:
            return await authorize(session, principal, service, doc_id)
        except AppError:
            return None


class Outbox:
    """A bounded send queue per socket, so one slow client never stalls a room."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[bytes | str | None] = asyncio.Queue(SEND_QUEUE)
        self.task = asyncio.create_task(self._run())
        self.overflowed = False

    async def put(self, frame: bytes | str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(Exception):
                await self.websocket.close(CLOSE_SLOW, "too slow; reconnect to resync")

    async def _run(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None:
                return
            try:
                if isinstance(frame, bytes):
                    await self.websocket.send_bytes(frame)
                else:
                    await self.websocket.send_text(frame)
            except Exception:
                return

    async def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code, reason)


@router.websocket("/collab/ws/{service}/{doc_id}")
async def sync_socket(websocket: WebSocket, service: str, doc_id: str) -> None:
    """The y-websocket protocol; viewers receive but their updates are dropped."""
    engine = get_engine(websocket)
    await websocket.accept()
    try:
        principal = await _principal(engine, token_from(websocket, None))
    except AuthFailed as exc:
        await _close(websocket, CLOSE_UNAUTHORIZED, str(exc)[:120])
        return
    if not await _slot(websocket, engine, principal):
        return
    if not DOC_ID.fullmatch(doc_id):
        await _close(websocket, CLOSE_NOT_FOUND, "invalid document id")
        return
    role = await _role(engine, principal, service, doc_id)
    if role is None:
        code = CLOSE_UNAUTHORIZED if principal is None else CLOSE_FORBIDDEN
        await _close(websocket, code, "no access to this document")
        return
    outbox = Outbox(websocket)
    peer = Peer(outbox.put, role)
    room = await engine.rooms.join(service, doc_id, peer)
    limit = engine.settings.collab_max_update_bytes + 64
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("bytes")
            if frame is None:
                continue  # y-websocket speaks binary only
            if len(frame) > limit:
                await _close(websocket, CLOSE_TOO_BIG, "message too big")
                break
            try:
                await room.receive(peer, frame)
            except yp.ProtocolError as exc:
                await _close(websocket, CLOSE_POLICY, f"protocol error: {exc}"[:120])
                break
    except WebSocketDisconnect:
        pass
    finally:
        await outbox.close()
        await engine.rooms.leave(room, peer)


@router.websocket("/collab/signaling")
async def signaling_socket(websocket: WebSocket) -> None:
    """y-webrtc signaling; topics `townhall:<service>:<id>` are for the document's editors."""
    engine = get_engine(websocket)
    settings = engine.settings
    await websocket.accept()
    token = token_from(websocket, None)
    first: str | None = None
    via_message = False
    if token is None:
        # No token in the URL: the first message may carry one ({"type": "auth", "token"}).
        try:
            first = await asyncio.wait_for(websocket.receive_text(), 10)
        except WebSocketDisconnect:
            return  # gone before saying anything; receiving again would raise
        except (TimeoutError, KeyError):  # silent, or a binary frame: carry on anonymous
            pass
        if first is not None:
            parsed = parse_message(first)
            if parsed is not None and parsed.get("type") == "auth":
                token, first, via_message = str(parsed.get("token") or ""), None, True
    try:
        principal = await _principal(engine, token)
    except AuthFailed as exc:
        await _close(websocket, CLOSE_UNAUTHORIZED, str(exc)[:120])
        return
    if not await _slot(websocket, engine, principal):
        return
    outbox = Outbox(websocket)

    async def send(message: dict[str, Any]) -> None:
        await outbox.put(json.dumps(message, separators=(",", ":")))

    conn = SignalingConn(send)
    limiter = RateLimiter(settings.collab_signaling_messages_per_second)
    hub = engine.signaling
    idle = max(2 * settings.collab_signaling_ping_seconds, 1.0)
    try:
        if via_message:
            await send({"type": "authenticated", "anonymous": principal is None})
        while True:
            if first is not None:
                raw, first = first, None
            else:
                try:
                    # y-webrtc clients ping after 15 s of silence; none for 2 periods = dead.
                    message = await asyncio.wait_for(websocket.receive(), idle)
                except TimeoutError:
                    await _close(websocket, CLOSE_POLICY, "idle")
                    break
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
            if len(raw.encode()) > settings.collab_signaling_max_message_bytes:
                await _close(websocket, CLOSE_TOO_BIG, "message too big")
                break
            if not limiter.allow():
                await _close(websocket, CLOSE_POLICY, "rate limit exceeded")
                break
            msg = parse_message(raw)
            if msg is None:
                continue
            await _handle_signal(engine, conn, principal, msg)
    except WebSocketDisconnect:
        pass
    finally:
        await hub.remove(conn)
        await outbox.close()


async def _handle_signal(
    engine: CollabEngine, conn: SignalingConn, principal: Principal | None, msg: dict[str, Any]
) -> None:
    hub = engine.signaling
    kind = msg.get("type")
    if kind == "ping":
        await conn.send({"type": "pong"})
    elif kind == "subscribe":
        topics = msg.get("topics")
        for topic in topics if isinstance(topics, list) else []:
            if not isinstance(topic, str) or topic in conn.topics:
                continue
            if len(conn.topics) >= engine.settings.collab_signaling_max_topics:
                await conn.send({"type": "error", "topic": topic, "reason": "too many topics"})
                continue
            target = parse_topic(topic)
            role = await _role(engine, principal, *target) if target else None
            if role != "editor":
                # WebRTC peers apply each other's updates directly, beyond the server's reach,
                # so only editors join; viewers sync read-only through /collab/ws. y-webrtc
                # ignores messages other than `publish`: the refusal is just "not subscribed".
                reason = "forbidden" if role is None else "read-only"
                await conn.send({"type": "error", "topic": topic, "reason": reason})
                continue
            await hub.subscribe(conn, topic)
    elif kind == "unsubscribe":
        topics = msg.get("topics")
        for topic in topics if isinstance(topics, list) else []:
            if isinstance(topic, str):
                await hub.unsubscribe(conn, topic)
    elif kind == "publish":
        topic = msg.get("topic")
        if isinstance(topic, str) and topic in conn.topics:
            await hub.publish(topic, msg)
