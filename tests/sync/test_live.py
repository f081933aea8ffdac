"""Live transports on a real server: SSE with Last-Event-ID resume, WebSocket subscribe/resync."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI

from tests.fixtures.app import make_settings, signup
from tests.fixtures.services import free_port
from tests.sync.conftest import API
from townhall.core.config import Settings

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
    )


@pytest.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    server.force_exit = True
    await asyncio.wait_for(task, 10)


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
        for n in range(1, 60):
            await bump(http, ann, n)
        async with http.stream(
            "GET", f"{API}/board/events?since=2", headers=ann["headers"]
        ) as response:
            (snap,) = await read_sse(response, 1)
        assert snap[1] == "snapshot"
        assert snap[2]["documents"]["t"]["data"] == {"n": 59}
        assert int(snap[0]) == 60

    async def test_non_member_and_anonymous_refused(self, http: httpx.AsyncClient) -> None:
        _, bob = await setup_board(http)
        url = f"{API}/board/events"
        assert (await http.get(url, headers=bob["headers"])).status_code == 404
        assert (await http.get(url + f"?token={bob['access_token']}")).status_code == 404
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url + "?token=garbage")).status_code == 401
        bad_id = await http.get(url, headers={**bob["headers"], "Last-Event-ID": "x"})
        assert bad_id.status_code in (404, 422)


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
        async with websockets.connect(ws_url(base_url, ann["access_token"]), max_queue=1) as ws:
            await ws.send(json.dumps({"type": "subscribe", "streams": {"board": 1}}))
            await recv(ws, "subscribed")
            # Many writes while this client reads nothing: its follower queue (4) overflows.
            await asyncio.gather(*(bump(http, ann, n) for n in range(1, 30)))
            seqs: list[int] = []
            while not seqs or seqs[-1] < 30:
                message = await recv(ws)
                if message["type"] == "event" or message["type"] == "snapshot":
                    seqs.append(message["seq"])
            assert seqs == sorted(set(seqs))
            assert seqs[-1] == 30
