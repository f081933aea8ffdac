"""Per-user limits on open real-time connections: WebSocket (feeds, Yjs, signaling) and SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from tests.core.test_realtime import closed_with, serving
from tests.fixtures.app import signup
from townhall.core.platform import Platform
from townhall.core.realtime import CLOSE_TRY_AGAIN, TOO_MANY_CONNECTIONS

LIMIT = 2


@pytest.fixture
async def base(app: FastAPI, platform: Platform) -> AsyncIterator[str]:
    platform.settings.realtime_connections_per_user = LIMIT
    async with serving(app) as port:
        yield f"127.0.0.1:{port}"


async def feed(base: str, token: str) -> ClientConnection:
    """An open reports feed (it answers `ready` once the socket holds its slot)."""
    ws = await connect(f"ws://{base}/api/v1/reports/ws?token={token}")
    assert json.loads(await ws.recv())["type"] == "ready"
    return ws


async def refused(url: str) -> tuple[int, str]:
    async with connect(url) as ws:
        return await closed_with(ws)


async def slots_become(platform: Platform, user_id: str, count: int) -> None:
    async with asyncio.timeout(5):
        while platform.connections.held_by(user_id) != count:
            await asyncio.sleep(0.02)


async def user(client: httpx.AsyncClient, email: str) -> tuple[str, str]:
    tokens = await signup(client, email)
    me = (await client.get("/api/v1/auth/me", headers=tokens["headers"])).json()
    return str(tokens["access_token"]), str(me["id"])


async def test_one_user_holds_at_most_the_limit_and_others_are_unaffected(
    base: str, client: httpx.AsyncClient, platform: Platform
) -> None:
    token, ann = await user(client, "limit-ann@example.com")
    bob_token, _ = await user(client, "limit-bob@example.com")
    held = [await feed(base, token) for _ in range(LIMIT)]
    over = (CLOSE_TRY_AGAIN, TOO_MANY_CONNECTIONS)
    assert await refused(f"ws://{base}/api/v1/reports/ws?token={token}") == over
    assert await refused(f"ws://{base}/collab/signaling?token={token}") == over
    assert await refused(f"ws://{base}/collab/ws/doc/{'a' * 32}?token={token}") == over
    assert platform.connections.held_by(ann) == LIMIT  # refusals hold nothing
    other = await feed(base, bob_token)  # the limit is per user
    await held[0].close()
    await slots_become(platform, ann, LIMIT - 1)
    held[0] = await feed(base, token)  # a freed slot is usable again
    for ws in [*held, other]:
        await ws.close()
    await slots_become(platform, ann, 0)


async def test_anonymous_signaling_is_not_counted(base: str, platform: Platform) -> None:
    sockets = [await connect(f"ws://{base}/collab/signaling") for _ in range(LIMIT + 1)]
    for ws in sockets:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.close()


async def test_sse_streams_count_and_free_their_slot_when_they_end(
    base: str, client: httpx.AsyncClient, platform: Platform
) -> None:
    token, ann = await user(client, "limit-sse@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    made = await client.post(
        "/api/v1/sync/collections", json={"name": "Board", "slug": "limits"}, headers=headers
    )
    assert made.status_code == 201, made.text
    url = f"http://{base}/api/v1/sync/collections/limits/events"
    async with httpx.AsyncClient(timeout=10, headers=headers) as http:
        streams: list[Any] = []
        for _ in range(LIMIT):
            stream = http.stream("GET", url)
            response = await stream.__aenter__()
            assert response.status_code == 200
            streams.append(stream)
        await slots_become(platform, ann, LIMIT)
        over = await http.get(url)
        assert over.status_code == 429, over.text
        assert over.headers["retry-after"] == "5"
        assert over.headers["content-type"].startswith("application/problem+json")
        for stream in streams:
            await stream.__aexit__(None, None, None)
    await slots_become(platform, ann, 0)
