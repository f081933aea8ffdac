"""core/realtime: bounded send queues, heartbeats, pub/sub fan-out, drain, SSE, WebSocket auth."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fixtures.app import signup
from tests.fixtures.services import REDIS_URL, free_port, require
from townhall.core.platform import Platform
from townhall.core.pubsub import MemoryPubSub, PubSub, RedisPubSub
from townhall.core.realtime import (
    CLOSE_RESYNC,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    Connection,
    Connections,
    EventSourceResponse,
    ServerEvent,
    WebSocketRefused,
    authenticate_websocket,
    format_comment,
    format_event,
    last_event_id,
)

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


class Peer:
    """The client side of an in-process ASGI WebSocket; `hold()` makes it stop reading."""

    def __init__(self) -> None:
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.to_app.put_nowait({"type": "websocket.connect"})
        self.frames: list[Any] = []
        self.close: dict[str, Any] | None = None
        self.reading = asyncio.Event()
        self.reading.set()
        self.got_frame = asyncio.Event()
        scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
        self.websocket = WebSocket(scope, self._receive, self._send)

    def hold(self) -> None:
        self.reading.clear()

    async def _receive(self) -> dict[str, Any]:
        return await self.to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            await self.reading.wait()  # a client that stops reading blocks the sender
            text = message.get("text")
            self.frames.append(_parse(text) if text is not None else message.get("bytes"))
            self.got_frame.set()
        elif message["type"] == "websocket.close":
            self.close = message
            self.to_app.put_nowait({"type": "websocket.disconnect", "code": message["code"]})

    def say(self, text: str) -> None:
        self.to_app.put_nowait({"type": "websocket.receive", "text": text})

    async def wait_frames(self, n: int, timeout: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.frames) < n:
                self.got_frame.clear()
                await self.got_frame.wait()
        return self.frames

    async def wait_closed(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while self.close is None:
                await asyncio.sleep(0.01)
        return self.close


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


async def accepted(peer: Peer) -> WebSocket:
    await peer.websocket.accept()
    return peer.websocket


def gauge(kind: str) -> float:
    return REGISTRY.get_sample_value("townhall_open_connections", {"kind": kind}) or 0.0


@pytest.fixture(params=BACKENDS)
async def pubsub(request: pytest.FixtureRequest) -> AsyncIterator[PubSub]:
    if request.param == "memory":
        ps: PubSub = MemoryPubSub()
    else:
        require("Redis", REDIS_URL, 6379)
        ps = RedisPubSub(REDIS_URL)
    yield ps
    await ps.close()


# -- Connection -----------------------------------------------------------------------------


async def test_a_slow_consumer_is_closed_with_resync_and_memory_stays_bounded() -> None:
    peer = Peer()
    conn = Connection(await accepted(peer), queue_size=4, heartbeat=None)
    runner = asyncio.create_task(conn.run())
    peer.hold()
    results = [conn.send_nowait({"i": i}) for i in range(50)]
    close = await peer.wait_closed()
    await runner
    assert (close["code"], close["reason"]) == (CLOSE_RESYNC, "resync")
    assert results[:4] == [True] * 4
    assert not any(results[6:])  # refused, not buffered
    assert conn.pending() <= 4
    assert conn.send_nowait({"late": True}) is False


async def test_messages_are_sent_in_order_and_received_by_the_handler() -> None:
    peer = Peer()
    got: list[str | bytes] = []

    async def on_message(data: str | bytes) -> None:
        got.append(data)

    conn = Connection(await accepted(peer), heartbeat=None)
    runner = asyncio.create_task(conn.run(on_message))
    for i in range(20):
        await conn.send({"i": i})
    conn.send_nowait("plain text")
    assert await peer.wait_frames(21)
    peer.say('{"hello": 1}')
    peer.say("x" * (conn.max_message_bytes + 1))
    close = await peer.wait_closed()
    await runner
    assert [f["i"] for f in peer.frames[:20]] == list(range(20))
    assert peer.frames[20] == "plain text"
    assert got == ['{"hello": 1}']
    assert close["code"] == CLOSE_TOO_BIG


async def test_heartbeats_are_sent_while_idle() -> None:
    peer = Peer()
    conn = Connection(await accepted(peer), heartbeat=0.02)
    runner = asyncio.create_task(conn.run())
    frames = await peer.wait_frames(3)
    await conn.close()
    await runner
    assert frames[:3] == [{"type": "ping"}] * 3


async def test_pubsub_messages_fan_out_to_every_local_connection(pubsub: PubSub) -> None:
    channel = f"test{uuid.uuid4().hex[:8]}:room"
    peers = [Peer() for _ in range(5)]
    conns = [Connection(await accepted(p), heartbeat=None) for p in peers]
    runners = [asyncio.create_task(c.run()) for c in conns]
    for i, conn in enumerate(conns):
        transform = (lambda m: {"n": m.data["n"], "to": "custom"}) if i == 0 else None
        await conn.subscribe(pubsub, channel, transform=transform)
    for n in range(3):
        await pubsub.publish(channel, {"n": n})
    for i, peer in enumerate(peers):
        frames = await peer.wait_frames(3)
        if i == 0:
            assert frames == [{"n": n, "to": "custom"} for n in range(3)]
        else:
            assert frames == [{"channel": channel, "data": {"n": n}} for n in range(3)]
    for conn in conns:
        await conn.close()
    await asyncio.gather(*runners)


async def test_a_pubsub_gap_closes_for_resync_unless_handled() -> None:
    pubsub = MemoryPubSub()
    plain, handled = Peer(), Peer()
    conn_plain = Connection(await accepted(plain), heartbeat=None)
    conn_handled = Connection(await accepted(handled), heartbeat=None)
    runners = [asyncio.create_task(c.run()) for c in (conn_plain, conn_handled)]

    async def resend_snapshot() -> None:
        await conn_handled.send({"type": "snapshot"})

    await conn_plain.subscribe(pubsub, "t:gap")
    await conn_handled.subscribe(pubsub, "t:gap", on_gap=resend_snapshot)
    for sub in pubsub._hub.subscriptions():
        sub.report_gap()
    assert (await plain.wait_closed())["code"] == CLOSE_RESYNC
    assert await handled.wait_frames(1) == [{"type": "snapshot"}]
    await conn_handled.close()
    await asyncio.gather(*runners)
    await pubsub.close()


async def test_pubsub_shutdown_or_outage_closes_the_socket_with_a_retry_code() -> None:
    pubsub = MemoryPubSub()
    live, refused = Peer(), Peer()
    conn_live = Connection(await accepted(live), heartbeat=None)
    runner = asyncio.create_task(conn_live.run())
    assert await conn_live.subscribe(pubsub, "t:shutdown") is True
    await pubsub.close()  # the backend goes away under a live relay
    assert (await live.wait_closed())["code"] == CLOSE_SERVICE_RESTART
    await runner

    conn_refused = Connection(await accepted(refused), heartbeat=None)
    assert await conn_refused.subscribe(pubsub, "t:shutdown") is False  # cannot subscribe
    close = await refused.wait_closed()
    assert (close["code"], close["reason"]) == (CLOSE_TRY_AGAIN, "try again later")
    await conn_refused.run()  # returns at once: already closed


async def test_drain_closes_every_connection_with_service_restart() -> None:
    registry = Connections()
    before = gauge("websocket")
    peers = [Peer() for _ in range(3)]
    conns = [Connection(await accepted(p), registry=registry, heartbeat=None) for p in peers]
    runners = [asyncio.create_task(c.run()) for c in conns]
    await asyncio.sleep(0)
    assert registry.count("websocket") == 3
    assert gauge("websocket") - before == 3
    await registry.drain(timeout=5)
    await asyncio.gather(*runners)
    for peer in peers:
        assert peer.close is not None
        assert (peer.close["code"], peer.close["reason"]) == (
            CLOSE_SERVICE_RESTART,
            "service restart",
        )
    assert len(registry) == 0
    assert gauge("websocket") == before
    assert registry.draining


async def test_a_termination_signal_starts_the_drain_and_reaches_the_previous_handler() -> None:
    registry = Connections()
    seen: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        undo = registry.install_signal_drain()
        peer = Peer()
        conn = Connection(await accepted(peer), registry=registry, heartbeat=None)
        runner = asyncio.create_task(conn.run())
        await asyncio.sleep(0)
        signal.raise_signal(signal.SIGTERM)
        close = await peer.wait_closed()
        await runner
        assert (close["code"], close["reason"]) == (CLOSE_SERVICE_RESTART, "service restart")
        assert seen == [signal.SIGTERM]  # the server's own handler still runs
        undo()
        assert signal.getsignal(signal.SIGTERM) is not None
        signal.raise_signal(signal.SIGTERM)
        assert seen == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)


# -- SSE ------------------------------------------------------------------------------------


def test_event_framing() -> None:
    assert format_event({"a": 1}, event="patch", id=7) == b'id: 7\nevent: patch\ndata: {"a":1}\n\n'
    assert format_event("line1\nline2", retry=3000) == b"retry: 3000\ndata: line1\ndata: line2\n\n"
    assert format_comment("ping") == b": ping\n\n"
    with pytest.raises(ValueError, match="line breaks"):
        format_event({}, id="1\n2")
    with pytest.raises(ValueError, match="line breaks"):
        format_event({}, event="a\rb")


def sse_app(registry: Connections, events: Any, heartbeat: float | None = 15) -> FastAPI:
    app = FastAPI()

    @app.get("/events")
    async def stream() -> EventSourceResponse:
        return EventSourceResponse(events(), heartbeat=heartbeat, registry=registry)

    @app.get("/last-id")
    async def last_id(request: Request) -> dict[str, str | None]:
        return {"id": last_event_id(request)}

    return app


async def test_sse_response_streams_events_with_headers_and_heartbeats() -> None:
    registry = Connections()

    async def events() -> AsyncIterator[ServerEvent | dict[str, Any]]:
        yield ServerEvent({"seq": 1}, event="event", id=1)
        await asyncio.sleep(0.2)  # idle: heartbeat comments keep the stream alive
        yield {"seq": 2}

    app = sse_app(registry, events, heartbeat=0.03)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/events")
        last = await client.get("/last-id", headers={"Last-Event-ID": " 41 "})
        polyfill = await client.get("/last-id?lastEventId=9")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache, no-transform"
    assert response.headers["x-accel-buffering"] == "no"
    body = response.text
    assert body.startswith(": open\n\n")
    assert 'id: 1\nevent: event\ndata: {"seq":1}\n\n' in body
    assert ": ping\n\n" in body
    assert body.endswith('data: {"seq":2}\n\n')
    assert body.index("ping") > body.index('"seq":1')
    assert last.json() == {"id": "41"}
    assert polyfill.json() == {"id": "9"}
    assert len(registry) == 0


async def test_sse_stream_ends_when_the_process_drains() -> None:
    registry = Connections()
    started = asyncio.Event()

    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"first": True}
        started.set()
        await asyncio.Event().wait()  # would stream forever
        yield {}

    app = sse_app(registry, events)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        request = asyncio.create_task(client.get("/events"))
        await started.wait()
        for _ in range(100):
            if registry.count("sse"):
                break
            await asyncio.sleep(0.01)
        assert registry.count("sse") == 1
        await registry.drain(timeout=5)
        response = await asyncio.wait_for(request, 5)
    assert 'data: {"first":true}' in response.text
    assert len(registry) == 0


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    """Serve `app` with uvicorn on a free loopback port (no lifespan)."""
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


async def raw_websocket(port: int, path: str) -> tuple[asyncio.StreamReader, Any]:
    """A bare WebSocket client whose reads we control (client libraries read ahead)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def read_until_close(reader: asyncio.StreamReader) -> tuple[int, str, int]:
    """Read server frames until the close frame: (code, reason, data frames before it)."""
    frames = 0
    while True:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big"), payload[2:].decode(), frames
        frames += 1


async def test_a_client_that_stops_reading_is_closed_4408_over_a_real_socket() -> None:
    app = FastAPI()
    outcome: dict[str, Any] = {}

    @app.websocket("/flood")
    async def flood(websocket: WebSocket) -> None:
        await websocket.accept()
        conn = Connection(websocket, queue_size=8, heartbeat=None, send_timeout=5)
        runner = asyncio.create_task(conn.run())
        frame = "x" * 65536
        sent = 0
        while conn.send_nowait(frame) and sent < 20_000:  # 1.3 GB if nothing pushed back
            sent += 1
            await asyncio.sleep(0)
        outcome["sent"], outcome["pending"] = sent, conn.pending()
        await runner
        outcome["code"] = conn.close_code

    async with serving(app) as port:
        reader, writer = await raw_websocket(port, "/flood")
        async with asyncio.timeout(30):
            while "sent" not in outcome:  # we read nothing: TCP pushes back on the server
                await asyncio.sleep(0.05)
            code, reason, frames = await read_until_close(reader)
        writer.close()
    assert (code, reason) == (CLOSE_RESYNC, "resync")
    assert outcome["sent"] < 20_000  # refused long before: backpressure reached the queue
    assert outcome["pending"] <= 8
    assert frames <= outcome["sent"]


async def test_an_sse_client_that_stops_reading_gets_resync_and_the_stream_ends() -> None:
    registry = Connections()
    produced = 0
    released = asyncio.Event()

    async def events() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        try:
            while produced < 20_000:  # 1.3 GB if nothing pushed back
                produced += 1
                yield {"n": produced, "pad": "x" * 65536}
                await asyncio.sleep(0)
        finally:
            released.set()

    app = FastAPI()

    @app.get("/events")
    async def stream() -> EventSourceResponse:
        return EventSourceResponse(events(), heartbeat=None, registry=registry, queue_size=8)

    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        async with asyncio.timeout(30):
            await released.wait()  # we read nothing: the queue filled, the source was let go
            body = await reader.read()  # then everything, up to the end of the response
        writer.close()
    assert produced < 20_000
    assert body.count(b"event: resync\ndata: ") == 1
    assert body.rindex(b"event: resync") > body.rindex(b'data: {"n":')  # the last event
    assert body.endswith(b"0\r\n\r\n")  # the chunked response ended
    assert len(registry) == 0


# -- WebSocket authentication over a real server ------------------------------------------


async def _ws_endpoint(websocket: WebSocket) -> None:
    platform: Platform = websocket.app.state.platform
    try:
        principal = await authenticate_websocket(websocket, platform, timeout=1.0)
    except WebSocketRefused:
        return
    conn = Connection.for_platform(websocket, platform, heartbeat=None)

    async def echo(data: str | bytes) -> None:
        await conn.send({"echo": data})

    await conn.send({"type": "hello", "user": str(principal.id)})
    await conn.run(echo)


@pytest.fixture
async def live_url(app: FastAPI) -> AsyncIterator[str]:
    """The test app served by uvicorn on a free port (its lifespan already runs)."""
    app.router.routes.insert(0, WebSocketRoute("/test/realtime/ws", _ws_endpoint))
    async with serving(app) as port:
        yield f"ws://127.0.0.1:{port}/test/realtime/ws"


async def closed_with(ws: Any) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    async with asyncio.timeout(5):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (0, "no close frame")


async def test_websocket_without_a_valid_token_is_closed_4401(live_url: str) -> None:
    async with connect(live_url) as ws:
        await ws.send(json.dumps({"type": "hello"}))  # not an auth message
        assert await closed_with(ws) == (CLOSE_UNAUTHORIZED, "authentication required")
    async with connect(live_url + "?token=not-a-jwt") as ws:
        code, _ = await closed_with(ws)
        assert code == CLOSE_UNAUTHORIZED
    async with connect(live_url, additional_headers={"Authorization": "Bearer x.y.z"}) as ws:
        code, _ = await closed_with(ws)
        assert code == CLOSE_UNAUTHORIZED


async def test_websocket_authenticates_by_header_query_cookie_or_first_message(
    live_url: str, client: httpx.AsyncClient
) -> None:
    tokens = await signup(client, "rt@example.com")
    token = tokens["access_token"]
    me = (await client.get("/api/v1/auth/me", headers=tokens["headers"])).json()
    variants: list[tuple[str, dict[str, str], str | None]] = [
        (live_url, {"Authorization": f"Bearer {token}"}, None),
        (f"{live_url}?token={token}", {}, None),
        (live_url, {"Cookie": f"th_access={token}"}, None),
        (live_url, {}, json.dumps({"type": "auth", "token": token})),
    ]
    for url, headers, first in variants:
        async with connect(url, additional_headers=headers) as ws:
            if first is not None:
                await ws.send(first)
            hello = json.loads(await ws.recv())
            assert hello == {"type": "hello", "user": me["id"]}
            await ws.send("ping?")
            assert json.loads(await ws.recv()) == {"echo": "ping?"}


async def test_a_revoked_session_cannot_open_a_websocket(
    live_url: str, client: httpx.AsyncClient
) -> None:
    tokens = await signup(client, "revoked@example.com")
    response = await client.post("/api/v1/auth/logout", headers=tokens["headers"])
    assert response.status_code == 204
    async with connect(f"{live_url}?token={tokens['access_token']}") as ws:
        assert await closed_with(ws) == (CLOSE_UNAUTHORIZED, "session revoked")


async def test_websocket_connections_drain_with_1012(
    live_url: str, client: httpx.AsyncClient, platform: Platform
) -> None:
    tokens = await signup(client, "drain@example.com")
    async with connect(f"{live_url}?token={tokens['access_token']}") as ws:
        await ws.recv()
        assert platform.connections.count("websocket") == 1
        await platform.connections.drain(timeout=5)
        assert await closed_with(ws) == (CLOSE_SERVICE_RESTART, "service restart")
    async with connect(f"{live_url}?token={tokens['access_token']}") as ws:
        assert await closed_with(ws) == (CLOSE_SERVICE_RESTART, "service restart")
