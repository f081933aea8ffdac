"""y-websocket rooms and the y-webrtc signaling relay over real sockets (uvicorn + websockets)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pycrdt
import pytest
import websockets
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from tests.collab.helpers import text_of, text_update
from tests.fixtures.app import signup
from tests.fixtures.jobs import wait_until
from websockets.exceptions import ConnectionClosed

from townhall.collab import protocol as yp
from townhall.collab.hooks import Role, ServiceHooks, register_service, unregister_service
from townhall.core.deps import Principal

ROLES: dict[str, Role] = {}


async def _authorize(
    principal: Principal | None, service: str, doc_id: str, session: AsyncSession
) -> Role | None:
    return ROLES.get(principal.user.email) if principal is not None else None


@pytest.fixture(autouse=True)
def acl() -> Iterator[None]:
    register_service(ServiceHooks("wsacl", _authorize, roots={"text": pycrdt.Text}))
    yield
    unregister_service("wsacl")
    ROLES.clear()


class YClient:
    """A minimal y-websocket client: a pycrdt Doc synced over one socket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.awareness: list[yp.AwarenessEntry] = []

    async def handshake(self) -> None:
        await self.ws.send(yp.sync_step1(self.doc.get_state()))
        await self.pump_until(lambda: self.synced)

    synced = False

    async def handle(self, frame: bytes) -> None:
        message = yp.decode_message(frame)
        if message.kind == yp.MESSAGE_SYNC:
            if message.sync_type is yp.SyncType.STEP1:
                await self.ws.send(yp.sync_step2(self.doc.get_update(message.payload)))
            else:
                self.doc.apply_update(message.payload)
                if message.sync_type is yp.SyncType.STEP2:
                    self.synced = True
        elif message.kind == yp.MESSAGE_AWARENESS:
            self.awareness.extend(yp.decode_awareness(message.payload))

    async def pump_until(self, done: Any, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not done():
                await self.handle(await self.ws.recv())

        await asyncio.wait_for(loop(), timeout)

    async def edit(self, text: str) -> None:
        await self.ws.send(yp.sync_update(text_update(text, doc=self.doc)))

    @property
    def text(self) -> str:
        return str(self.doc.get("text", type=pycrdt.Text))


async def edits_meet(ws_a: Any, ws_b: Any, first: str, second: str) -> None:
    """Sync both sockets, edit on A then on B; each sees the other's edit, texts equal."""
    a, b = YClient(ws_a), YClient(ws_b)
    await a.handshake()
    await b.handshake()
    await a.edit(first)
    await b.pump_until(lambda: first in b.text, timeout=10)
    await b.edit(second)
    await a.pump_until(lambda: second in a.text, timeout=10)
    assert a.text == b.text


async def test_two_y_websocket_clients_converge_and_the_server_stores(
    client: httpx.AsyncClient, app: FastAPI, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    url = f"ws://{live}/collab/ws/demo/{doc_id}?token={user['access_token']}"
    async with websockets.connect(url) as ws1, websockets.connect(url) as ws2:
        a, b = YClient(ws1), YClient(ws2)
        await a.handshake()
        await b.handshake()
        await a.edit("hello ")
        await b.pump_until(lambda: b.text == "hello ")
        await b.edit("world")
        await a.pump_until(lambda: a.text == "hello world")
        # Awareness is relayed to the other peer.
        entry = yp.AwarenessEntry(a.doc.client_id, 1, {"user": "ann"})
        await ws1.send(yp.awareness_message(yp.encode_awareness([entry])))
        await b.pump_until(lambda: any(e.client_id == a.doc.client_id for e in b.awareness))
    # The room unloaded when empty and stored its changes in the buffer.
    engine = app.state.collab
    await wait_until(lambda: engine.rooms.is_unloaded("demo", doc_id), message="room unload")
    await engine.flush()
    state = await client.get(f"/api/v1/collab/demo/{doc_id}/state", headers=user["headers"])
    assert text_of(base64.b64decode(state.json()["state"])) == "hello world"


async def test_room_loads_buffered_and_stored_state(
    client: httpx.AsyncClient, app: FastAPI, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for word in ("stored ", "buffered"):
        response = await client.post(
            f"/api/v1/collab/demo/save?id={doc_id}",
            content=text_update(word, doc=doc),
            headers=user["headers"],
        )
        assert response.status_code == 200
        if word == "stored ":
            await app.state.collab.flush()
    url = f"ws://{live}/collab/ws/demo/{doc_id}?token={user['access_token']}"
    async with websockets.connect(url) as ws:
        c = YClient(ws)
        await c.handshake()
        assert c.text == "stored buffered"


async def test_viewers_receive_but_their_updates_are_dropped(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    editor = await signup(client, "ed@example.com")
    viewer = await signup(client, "vi@example.com")
    ROLES.update({"ed@example.com": "editor", "vi@example.com": "viewer"})
    base = f"ws://{live}/collab/ws/wsacl/{doc_id}?token="
    async with (
        websockets.connect(base + editor["access_token"]) as ws1,
        websockets.connect(base + viewer["access_token"]) as ws2,
    ):
        e, v = YClient(ws1), YClient(ws2)
        await e.handshake()
        await v.handshake()
        await v.edit("vandal")
        await e.edit("legit")
        await v.pump_until(lambda: "legit" in v.text)
        with pytest.raises(TimeoutError):
            await e.pump_until(lambda: "vandal" in e.text, timeout=0.5)
    async with websockets.connect(base + editor["access_token"]) as ws3:
        fresh = YClient(ws3)
        await fresh.handshake()
        assert fresh.text == "legit"


async def test_sync_socket_refuses_anonymous_strangers_and_bad_tokens(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    stranger = await signup(client, "st@example.com")
    cases = [
        (f"ws://{live}/collab/ws/wsacl/{doc_id}", 4401),
        (f"ws://{live}/collab/ws/wsacl/{doc_id}?token={stranger['access_token']}", 4403),
        (f"ws://{live}/collab/ws/wsacl/{doc_id}?token=not-a-token", 4401),
        (f"ws://{live}/collab/ws/nope/{doc_id}?token={stranger['access_token']}", 4403),
    ]
    for url, code in cases:
        async with websockets.connect(url) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == code


async def test_garbage_frames_close_the_socket_without_harming_the_room(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    url = f"ws://{live}/collab/ws/demo/{doc_id}?token={user['access_token']}"
    async with websockets.connect(url) as good:
        g = YClient(good)
        await g.handshake()
        for frame in (b"\x07", bytes([0, 2, 50, 1]), yp.sync_update(b"garbage")):
            async with websockets.connect(url) as bad:
                await bad.send(frame)
                assert (await _until_closed(bad)).code == 1008
        await g.edit("still fine")
        async with websockets.connect(url) as again:
            c = YClient(again)
            await c.handshake()
            assert c.text == "still fine"


async def test_an_oversized_update_frame_closes_with_1009_and_is_not_applied(
    client: httpx.AsyncClient, app: FastAPI, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    limit = app.state.collab.settings.collab_max_update_bytes
    url = f"ws://{live}/collab/ws/demo/{doc_id}?token={user['access_token']}"
    async with websockets.connect(url) as good:
        g = YClient(good)
        await g.handshake()
        async with websockets.connect(url) as big:
            b = YClient(big)
            await b.handshake()
            await b.edit("x" * (limit + 100))  # the frame limit allows 64 bytes of header
            assert (await _until_closed(big)).code == 1009
        await g.edit("small")
        async with websockets.connect(url) as again:
            c = YClient(again)
            await c.handshake()
            assert c.text == "small"


# Signaling.


async def _until_closed(ws: Any) -> Any:
    """Read until the server closes; returns the close frame it sent."""
    with pytest.raises(ConnectionClosed) as info:  # noqa: PT012
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None
    return info.value.rcvd


async def _recv_json(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message.get("type") == kind:
                return message

    return await asyncio.wait_for(loop(), timeout)


async def test_signaling_relays_verbatim_to_every_subscriber_including_sender(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    url = f"ws://{live}/collab/signaling?token={user['access_token']}"
    topic = f"townhall:demo:{doc_id}"
    async with websockets.connect(url) as a, websockets.connect(url) as b:
        await a.send(json.dumps({"type": "ping"}))
        assert await _recv_json(a, "pong") == {"type": "pong"}
        for ws in (a, b):
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic, 42]}))
        await a.send(json.dumps({"type": "ping"}))
        await _recv_json(a, "pong")  # subscribe processed
        await b.send(json.dumps({"type": "ping"}))
        await _recv_json(b, "pong")
        data = {"type": "announce", "from": "peer-a"}
        await a.send(json.dumps({"type": "publish", "topic": topic, "data": data}))
        for ws in (a, b):
            got = await _recv_json(ws, "publish")
            assert got == {"type": "publish", "topic": topic, "data": data, "clients": 2}
        await b.send(json.dumps({"type": "unsubscribe", "topics": [topic]}))
        await b.send(json.dumps({"type": "ping"}))
        await _recv_json(b, "pong")
        await a.send(json.dumps({"type": "publish", "topic": topic, "data": {"n": 2}}))
        assert (await _recv_json(a, "publish"))["clients"] == 1
        with pytest.raises(TimeoutError):
            await _recv_json(b, "publish", timeout=0.3)


async def test_signaling_topics_are_for_editors_only(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    editor = await signup(client, "ed@example.com")
    viewer = await signup(client, "rd@example.com")
    stranger = await signup(client, "st@example.com")
    ROLES.update({"ed@example.com": "editor", "rd@example.com": "viewer"})
    topic = f"townhall:wsacl:{doc_id}"
    base = f"ws://{live}/collab/signaling"
    async with (
        websockets.connect(f"{base}?token={editor['access_token']}") as ok,
        websockets.connect(f"{base}?token={viewer['access_token']}") as reader,
        websockets.connect(f"{base}?token={stranger['access_token']}") as intruder,
        websockets.connect(base) as anonymous,
    ):
        await ok.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        # A viewer may read the document, but WebRTC peers would apply its updates unchecked:
        # refused (not subscribed, an error y-webrtc ignores), the socket stays open.
        await reader.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        assert await _recv_json(reader, "error") == {
            "type": "error",
            "topic": topic,
            "reason": "read-only",
        }
        for ws in (intruder, anonymous):
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic, "room-a"]}))
            first = await _recv_json(ws, "error")
            second = await _recv_json(ws, "error")
            assert {first["topic"], second["topic"]} == {topic, "room-a"}
            assert first["reason"] == second["reason"] == "forbidden"
        for ws in (reader, intruder, anonymous):
            # Publishing to a topic it could not join reaches nobody.
            await ws.send(json.dumps({"type": "publish", "topic": topic, "data": "x"}))
        await reader.send(json.dumps({"type": "ping"}))
        assert await _recv_json(reader, "pong") == {"type": "pong"}
        await ok.send(json.dumps({"type": "publish", "topic": topic, "data": "hello"}))
        got = await _recv_json(ok, "publish")
        assert (got["data"], got["clients"]) == ("hello", 1)  # the viewer is not counted
        for ws in (reader, intruder, anonymous):
            with pytest.raises(TimeoutError):
                await _recv_json(ws, "publish", timeout=0.3)


async def test_signaling_auth_by_first_message_and_bad_token(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    base = f"ws://{live}/collab/signaling"
    async with websockets.connect(base) as ws:
        await ws.send(json.dumps({"type": "auth", "token": user["access_token"]}))
        assert (await _recv_json(ws, "authenticated"))["anonymous"] is False
        topic = f"townhall:demo:{doc_id}"
        await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        await ws.send(json.dumps({"type": "publish", "topic": topic, "data": 1}))
        assert (await _recv_json(ws, "publish"))["data"] == 1
    async with websockets.connect(base) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "forged"}))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4401


async def test_signaling_limits_topics_size_and_rate(
    client: httpx.AsyncClient, app: FastAPI, live: str
) -> None:
    user = await signup(client, "ann@example.com")
    settings = app.state.collab.settings
    url = f"ws://{live}/collab/signaling?token={user['access_token']}"
    too_many = [f"townhall:demo:t{i}" for i in range(settings.collab_signaling_max_topics + 2)]
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "topics": too_many}))
        error = await _recv_json(ws, "error")
        assert error["reason"] == "too many topics"
    async with websockets.connect(url, max_size=None) as ws:
        big = "x" * (settings.collab_signaling_max_message_bytes + 1)
        await ws.send(json.dumps({"type": "publish", "topic": "t", "data": big}))
        assert (await _until_closed(ws)).code == 1009
    async with websockets.connect(url) as ws:
        with contextlib.suppress(ConnectionClosed):
            for _ in range(settings.collab_signaling_messages_per_second * 10):
                await ws.send(json.dumps({"type": "ping"}))
        assert (await _until_closed(ws)).code == 1008


async def test_a_signaling_client_gone_before_its_first_message_logs_no_error(
    live: str, caplog: pytest.LogCaptureFixture
) -> None:
    # No token in the URL: the relay waits for a first (auth) message that never comes.
    async with websockets.connect(f"ws://{live}/collab/signaling"):
        pass
    await asyncio.sleep(0.5)
    async with websockets.connect(f"ws://{live}/collab/signaling") as ws:
        await ws.send(json.dumps({"type": "ping"}))  # still served afterwards
        assert await _recv_json(ws, "pong") == {"type": "pong"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_silent_signaling_connections_are_closed(
    client: httpx.AsyncClient, app: FastAPI, live: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await signup(client, "ann@example.com")
    # Two silent ping periods (at least 1 s) and the relay drops the connection.
    monkeypatch.setattr(app.state.collab.settings, "collab_signaling_ping_seconds", 0.5)
    url = f"ws://{live}/collab/signaling?token={user['access_token']}"
    async with websockets.connect(url) as silent, websockets.connect(url) as chatty:
        for _ in range(6):  # 1.5 s of pings every 0.25 s keep this one open
            await chatty.send(json.dumps({"type": "ping"}))
            assert await _recv_json(chatty, "pong") == {"type": "pong"}
            await asyncio.sleep(0.25)
        closed = await _until_closed(silent)
        assert (closed.code, closed.reason) == (1008, "idle")
        await chatty.send(json.dumps({"type": "ping"}))
        assert await _recv_json(chatty, "pong") == {"type": "pong"}


async def test_on_load_and_debounced_on_change_hooks(
    client: httpx.AsyncClient, app: FastAPI, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    changes: list[str] = []

    async def allow(
        principal: Principal | None, service: str, doc: str, session: AsyncSession
    ) -> Role | None:
        return "editor"

    async def on_load(service: str, doc: str, session: AsyncSession) -> bytes | None:
        return text_update("template;")

    async def on_change(service: str, doc: str, ydoc: pycrdt.Doc[Any]) -> None:
        changes.append(str(ydoc.get("text", type=pycrdt.Text)))

    register_service(ServiceHooks("hooked", allow, on_load=on_load, on_change=on_change))
    settings = app.state.collab.settings
    settings.collab_store_debounce_seconds = 0.5
    try:
        url = f"ws://{live}/collab/ws/hooked/{doc_id}?token={user['access_token']}"
        async with websockets.connect(url) as ws:
            c = YClient(ws)
            await c.handshake()
            assert c.text == "template;"
            for word in ("a", "b", "c"):
                await c.edit(word)
            for _ in range(100):
                if changes:
                    break
                await asyncio.sleep(0.05)
            # One debounced call for the burst, with the room's current document.
            assert changes == ["template;abc"]
    finally:
        settings.collab_store_debounce_seconds = 2.0
        unregister_service("hooked")


async def test_a_save_reaches_the_clients_of_an_open_room(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    url = f"ws://{live}/collab/ws/demo/{doc_id}?token={user['access_token']}"
    async with websockets.connect(url) as ws:
        c = YClient(ws)
        await c.handshake()
        await c.edit("live;")
        # A leader elsewhere (e.g. over WebRTC) saves the document with one more edit.
        leader: pycrdt.Doc[Any] = pycrdt.Doc()
        leader.apply_update(c.doc.get_update())
        response = await client.post(
            f"/api/v1/collab/demo/save?id={doc_id}",
            content=text_update("saved;", doc=leader),
            headers=user["headers"],
        )
        assert response.status_code == 200, response.text
        await c.pump_until(lambda: c.text == "live;saved;")


async def test_room_is_kept_until_the_buffer_takes_its_last_edits(
    client: httpx.AsyncClient,
    app: FastAPI,
    live: str,
    doc_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = await signup(client, "ann@example.com")
    engine = app.state.collab
    append = engine.store.append
    refusals = 0

    async def failing_append(service: str, doc: str, update: bytes) -> None:
        nonlocal refusals
        if refusals < 2:
            refusals += 1
            raise ConnectionError("buffer unavailable")
        await append(service, doc, update)

    monkeypatch.setattr(engine.store, "append", failing_append)
    monkeypatch.setattr("townhall.collab.rooms.RETRY_STORE_SECONDS", 0.05)
    url = f"ws://{live}/collab/ws/demo/{doc_id}?token={user['access_token']}"
    async with websockets.connect(url) as ws:
        c = YClient(ws)
        await c.handshake()
        await c.edit("kept;")
    await wait_until(lambda: refusals == 2, message="the unload's store to be refused")
    await wait_until(lambda: engine.rooms.is_unloaded("demo", doc_id), message="room unload")
    state = await client.get(f"/api/v1/collab/demo/{doc_id}/state", headers=user["headers"])
    assert text_of(base64.b64decode(state.json()["state"])) == "kept;"
