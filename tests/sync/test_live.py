"""Live transports on a real server: SSE with Last-Event-ID resume, WebSocket subscribe/resync."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI

from tests.fixtures.app import make_settings, signup
from tests.fixtures.services import free_port
from tests.sync.conftest import API
from tests.sync.helpers import make_collection, principal_for, replay
from townhall.core.config import Settings
from townhall.core.platform import Platform
from townhall.sync import realtime
from townhall.sync.client import Replica
from townhall.sync.live import Follower, Item, StreamFeed, WireEvent, follow, hub_of
from townhall.sync.patching import MergePatch
from townhall.sync.service import SyncService

MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        worker_in_process=False,
        sync_catchup_max_events=40,
        sync_subscriber_queue=4,
        sync_poll_seconds=0.5,
        realtime_heartbeat_seconds=0.5,  # membership is re-checked this often
    )


class LiveServer:
    """The app on a real port; it can be stopped and started again (a network outage)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        assert self.server is not None
        assert self.task is not None
        # Drop every open connection, as an outage would (uvicorn alone lets streams run on).
        for connection in list(self.server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        self.server.should_exit = True
        self.server.force_exit = True
        await asyncio.wait_for(self.task, 10)
        self.server = self.task = None


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[LiveServer]:
    server = LiveServer(app)
    await server.start()
    yield server
    if server.server is not None:
        await server.stop()


@pytest.fixture
def base_url(live_server: LiveServer) -> str:
    return live_server.url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as c:
        yield c


async def setup_board(http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    ann = await signup(http, "ann@example.com")
    bob = await signup(http, "bob@example.com")
    made = await http.post(API, json={"name": "B", "slug": "board"}, headers=ann["headers"])
    assert made.status_code == 201
    created = await http.post(
        f"{API}/board/documents", json={"id": "t", "data": {"n": 0}}, headers=ann["headers"]
    )
    assert created.status_code == 201
    return ann, bob


async def bump(http: httpx.AsyncClient, who: dict[str, Any], n: int) -> None:
    response = await http.patch(
        f"{API}/board/documents/t", json={"n": n}, headers={**who["headers"], **MERGE}
    )
    assert response.status_code == 200, response.text


async def read_sse(response: httpx.Response, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The next `count` (id, event, data) triples from an open SSE response."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    lines = response.extensions.get("sse_lines")
    if lines is None:  # one line iterator per response: aiter_lines() can start only once
        lines = response.extensions["sse_lines"] = response.aiter_lines()
    async with asyncio.timeout(15):
        async for line in lines:
            if line == "":
                if "data" in fields:
                    out.append(
                        (fields.get("id", ""), fields.get("event", ""), json.loads(fields["data"]))
                    )
                    if len(out) == count:
                        return out
                fields = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.lstrip(" ")
    return out


class TestSSE:
    async def test_resume_with_last_event_id_misses_nothing(self, http: httpx.AsyncClient) -> None:
        ann, _ = await setup_board(http)
        url = f"{API}/board/events"
        seen: list[int] = []
        async with http.stream("GET", url, headers=ann["headers"]) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            first = await read_sse(response, 1)
            assert first[0][1] == "event"
            seen.append(int(first[0][0]))
            for n in range(1, 4):
                await bump(http, ann, n)
            seen += [int(i) for i, _, _ in await read_sse(response, 3)]
        for n in range(4, 9):  # written while disconnected
            await bump(http, ann, n)
        headers = {**ann["headers"], "Last-Event-ID": str(seen[-1])}
        async with http.stream("GET", url, headers=headers) as response:
            resumed = await read_sse(response, 5)
            seen += [int(i) for i, _, _ in resumed]
            await bump(http, ann, 9)
            live = await read_sse(response, 1)
            seen.append(int(live[0][0]))
            assert live[0][2]["patch"] == {"n": 9}
        assert seen == list(range(1, 11))

    async def test_far_behind_gets_snapshot_then_tail(self, http: httpx.AsyncClient) -> None:
        ann, _ = await setup_board(http)
        for n in range(1, 51):
            await bump(http, ann, n)
        snapped = await http.post(f"{API}/board/snapshots", headers=ann["headers"])
        assert snapped.json()["seq"] == 51
        for n in range(51, 60):  # the tail after the snapshot: seqs 52..60
            await bump(http, ann, n)
        async with http.stream(
            "GET", f"{API}/board/events?since=2", headers=ann["headers"]
        ) as response:
            (snap, *tail) = await read_sse(response, 10)
            assert (snap[0], snap[1]) == ("51", "snapshot")
            assert snap[2]["documents"]["t"]["data"] == {"n": 50}
            assert [(int(i), kind) for i, kind, _ in tail] == [(s, "event") for s in range(52, 61)]
            await bump(http, ann, 60)  # and then live
            (live,) = await read_sse(response, 1)
        assert (live[0], live[2]["patch"]) == ("61", {"n": 60})
        documents = replay(snap[2]["documents"], [data for _, _, data in [*tail, live]])
        served = await http.get(f"{API}/board/documents/t", headers=ann["headers"])
        assert documents == {"t": served.json()["data"]} == {"t": {"n": 60}}

    async def test_non_member_and_anonymous_refused(self, http: httpx.AsyncClient) -> None:
        _, bob = await setup_board(http)
        url = f"{API}/board/events"
        assert (await http.get(url, headers=bob["headers"])).status_code == 404
        assert (await http.get(url + f"?token={bob['access_token']}")).status_code == 404
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url + "?token=garbage")).status_code == 401

    async def test_garbage_last_event_id_is_422(self, http: httpx.AsyncClient) -> None:
        ann, _ = await setup_board(http)
        url = f"{API}/board/events"
        for garbage in ("x", "-1", "1.5", "9" * 30):
            response = await http.get(url, headers={**ann["headers"], "Last-Event-ID": garbage})
            assert response.status_code == 422, garbage
            assert "Last-Event-ID" in response.json()["detail"]

    async def test_removed_member_is_cut_off(self, http: httpx.AsyncClient) -> None:
        ann, bob = await add_reader(http)
        async with http.stream("GET", f"{API}/board/events", headers=bob["headers"]) as response:
            (first,) = await read_sse(response, 1)
            assert first[1] == "event"
            await revoke(http, ann, bob)
            while True:  # at most a heartbeat of events may still arrive, then the error
                (item,) = await read_sse(response, 1)
                if item[1] == "error":
                    break
            assert item[2]["status"] == 404
            assert await read_sse(response, 1) == []  # and the stream ends

    async def test_resync_when_the_position_is_ahead(self, http: httpx.AsyncClient) -> None:
        ann, _ = await setup_board(http)
        await bump(http, ann, 1)
        async with http.stream(
            "GET", f"{API}/board/events", headers={**ann["headers"], "Last-Event-ID": "500"}
        ) as response:
            (snap, *tail) = await read_sse(response, 3)
        assert snap[1] == "snapshot"
        assert snap[2]["reason"].startswith("ahead")
        assert replay(snap[2]["documents"], [d for _, _, d in tail]) == {"t": {"n": 1}}


async def add_reader(http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """The board with Bob as a read member."""
    ann, bob = await setup_board(http)
    added = await http.post(
        f"{API}/board/members",
        json={"email": "bob@example.com", "role": "read"},
        headers=ann["headers"],
    )
    assert added.status_code == 201
    bob["user_id"] = added.json()["user_id"]
    return ann, bob


async def revoke(http: httpx.AsyncClient, ann: dict[str, Any], bob: dict[str, Any]) -> None:
    """Remove Bob, then write so a live event is pending for him."""
    removed = await http.delete(f"{API}/board/members/{bob['user_id']}", headers=ann["headers"])
    assert removed.status_code == 204
    await bump(http, ann, 1)


def ws_url(base_url: str, token: str) -> str:
    return base_url.replace("http://", "ws://") + f"/api/v1/sync/ws?token={token}"


async def recv(ws: Any, kind: str | None = None) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if kind is None or message["type"] == kind:
                return message


class TestWebSocket:
    async def test_subscribe_events_ack_and_resync(
        self, http: httpx.AsyncClient, base_url: str
    ) -> None:
        ann, _ = await setup_board(http)
        async with websockets.connect(ws_url(base_url, ann["access_token"])) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 0}}))
            assert (await recv(ws))["type"] == "subscribed"
            first = await recv(ws, "event")
            assert (first["seq"], first["op"]) == (1, "create")
            await bump(http, ann, 1)
            second = await recv(ws, "event")
            assert (second["seq"], second["patch"]) == (2, {"n": 1})
            await ws.send(
                json.dumps({"type": "ack", "client_id": "tab-1", "streams": {"board": 2}})
            )
            assert (await recv(ws, "ack"))["streams"] == {"board": 2}
            await ws.send(
                json.dumps({"type": "ack", "client_id": "tab-1", "streams": {"board": 99}})
            )
            assert "ahead" in (await recv(ws, "error"))["message"]
            await ws.send(json.dumps({"type": "put", "doc": {}}))
            assert "read-only" in (await recv(ws, "error"))["message"]
            await ws.send("not json")
            assert "malformed" in (await recv(ws, "error"))["message"]
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": "x"}}))
            assert (await recv(ws, "error"))["status"] == 422
        clients = (await http.get(f"{API}/board/clients", headers=ann["headers"])).json()
        assert [(c["client_id"], c["seq"]) for c in clients] == [("tab-1", 2)]
        for n in range(2, 60):
            await bump(http, ann, n)
        await http.post(f"{API}/board/snapshots", headers=ann["headers"])
        async with websockets.connect(ws_url(base_url, ann["access_token"])) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 2}}))
            assert (await recv(ws, "resync"))["stream"] == "board"
            snap = await recv(ws, "snapshot")
            assert snap["documents"]["t"]["data"] == {"n": 59}
            # A future vector (server was reset) also resyncs instead of failing.
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 10_000}}))
            assert (await recv(ws, "resync"))["reason"].startswith("ahead")

    async def test_non_member_and_bad_token(self, http: httpx.AsyncClient, base_url: str) -> None:
        _, bob = await setup_board(http)
        async with websockets.connect(ws_url(base_url, bob["access_token"])) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 0}}))
            error = await recv(ws)
            assert error["type"] == "error"
            assert error["status"] == 404
        async with websockets.connect(ws_url(base_url, "garbage")) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401

    async def test_slow_consumer_catches_up_in_order(
        self, http: httpx.AsyncClient, base_url: str
    ) -> None:
        ann, _ = await setup_board(http)
        replica = Replica()
        async with websockets.connect(ws_url(base_url, ann["access_token"]), max_queue=1) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 0}}))
            await recv(ws, "subscribed")
            # Many writes while this client reads nothing: its follower queue (4) overflows.
            await asyncio.gather(*(bump(http, ann, n) for n in range(1, 30)))
            while replica.vector.get("board", 0) < 30:
                message = await recv(ws)
                if message["type"] == "snapshot":
                    replica.reset("board", message["seq"], message["documents"])
                elif message["type"] == "event":
                    replica.apply("board", message)  # raises on a hole or a reordering
        served = await http.get(f"{API}/board/documents/t", headers=ann["headers"])
        assert replica.streams["board"] == {"t": served.json()["data"]}

    async def test_removed_member_is_cut_off(self, http: httpx.AsyncClient, base_url: str) -> None:
        ann, bob = await add_reader(http)
        async with websockets.connect(ws_url(base_url, bob["access_token"])) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 0}}))
            assert (await recv(ws, "event"))["seq"] == 1
            await revoke(http, ann, bob)
            error = await recv(ws, "error")
            assert (error["stream"], error["status"]) == ("board", 404)
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv(ws))["type"] == "pong"  # only the subscription ended

    async def test_unsubscribe_stops_events(
        self, http: httpx.AsyncClient, base_url: str, platform: Platform
    ) -> None:
        ann, _ = await setup_board(http)
        async with websockets.connect(ws_url(base_url, ann["access_token"])) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 1}}))
            await recv(ws, "subscribed")
            await ws.send(json.dumps({"type": "unsubscribe", "streams": ["board"]}))
            await ws.send(json.dumps({"type": "ping"}))
            await recv(ws, "pong")  # the unsubscribe was handled before this reply
            hub = hub_of(platform)
            async with asyncio.timeout(10):
                while "board" in hub.feeds:  # the last follower left: the feed stopped
                    await asyncio.sleep(0.02)
            await bump(http, ann, 1)
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv(ws))["type"] == "pong"  # and no event came before it
            await ws.send(json.dumps({"type": "unsubscribe", "streams": "board"}))
            assert (await recv(ws, "error"))["status"] == 422

    async def test_server_failure_is_reported(
        self, http: httpx.AsyncClient, base_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ann, _ = await setup_board(http)

        async def broken(*args: Any, **kwargs: Any) -> AsyncIterator[Item]:
            yield Item("event", 1, json.dumps({"type": "event", "seq": 1}))
            raise KeyError("a bug in the feed")

        monkeypatch.setattr(realtime, "follow", broken)
        async with websockets.connect(ws_url(base_url, ann["access_token"])) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 0}}))
            assert (await recv(ws, "event"))["seq"] == 1
            error = await recv(ws, "error")
            assert (error["stream"], error["status"], error["resubscribe"]) == ("board", 500, True)


class TestFeed:
    """The per-process feed: recovery from read failures, replacement, slow followers."""

    async def test_feed_recovers_from_a_read_failure(
        self, client: httpx.AsyncClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ann = await principal_for(client, platform, "ann@example.com")
        await make_collection(platform, ann, "s1")
        async with platform.db.session() as session:
            service = SyncService(session, platform.settings)
            await service.create(ann, "s1", "d", {"n": 0})
            access = await service.access(ann, "s1")
        real = platform.db.read_sessionmaker
        failures = 3

        def flaky() -> Any:
            nonlocal failures
            if failures:
                failures -= 1
                raise OSError("the database went away")
            return real()

        monkeypatch.setattr(platform.db, "read_sessionmaker", flaky)
        items = follow(platform, ann, access, 1, heartbeat=60)
        first = asyncio.ensure_future(anext(items))
        await asyncio.sleep(0.05)  # the feed starts (and fails) while the follower waits
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).find_one_and_update(
                ann, "s1", "d", MergePatch({"n": 1})
            )
        async with asyncio.timeout(15):
            item = await first
        assert (item.kind, item.seq) == ("event", 2)
        assert failures == 0
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).find_one_and_update(
                ann, "s1", "d", MergePatch({"n": 2})
            )
        async with asyncio.timeout(15):
            item = await anext(items)
        assert (item.kind, item.seq) == ("event", 3)
        await items.aclose()

    async def test_join_replaces_a_finished_feed(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        hub = hub_of(platform)
        old = hub.join("s1", uuid.uuid4())
        dead = old.feed
        assert dead.task is not None
        dead.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dead.task
        new = hub.join("s1", dead.stream_id)
        assert new.feed is not dead
        assert new.feed.task is not None
        assert not new.feed.task.done()
        assert old.feed is new.feed  # the dead feed's followers moved over
        hub.leave(old)
        hub.leave(new)
        assert "s1" not in hub.feeds

    def test_overflow_marks_a_follower_lagging(self) -> None:
        follower = Follower(cast(StreamFeed, None), maxsize=2)
        batches = [[WireEvent(seq, {}, "")] for seq in (1, 2, 3)]
        follower.deliver(batches[0])
        follower.deliver(batches[1])
        assert not follower.lagging
        follower.deliver(batches[2])  # full: drop the queue, wake it with an empty batch
        assert follower.lagging
        assert follower.queue.qsize() == 1
        assert follower.queue.get_nowait() == []
        follower.deliver(batches[0])  # ignored until it has caught up from the database
        assert follower.queue.empty()
