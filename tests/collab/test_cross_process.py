"""Two `townhall serve` processes sharing Redis: rooms and signaling topics span processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from tests.collab.helpers import text_update
from tests.collab.test_sockets import YClient, _recv_json, edits_meet
from tests.fixtures.services import REDIS_URL, free_port, require

# Starting processes is slow on a loaded machine; the timeout covers migrate + two starts.
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def two_townhalls(tmp_path: Path, **env: str) -> AsyncIterator[list[str]]:
    """Two `townhall serve` processes on one SQLite file and one Redis; yields their hosts."""
    require("Redis", REDIS_URL, 6379)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "TOWNHALL_ENV": "test",
        "TOWNHALL_VAR_DIR": str(tmp_path / "var"),
        "TOWNHALL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "TOWNHALL_REDIS_URL": REDIS_URL,
        "TOWNHALL_SECRET_KEY": "cross-process-test-secret-key-long-enough",
        "TOWNHALL_COLLAB_KEY_PREFIX": f"xproc-{uuid.uuid4().hex[:8]}:",
        "TOWNHALL_COLLAB_STORE_DEBOUNCE_SECONDS": "0.2",
        "TOWNHALL_LOG_LEVEL": "WARNING",
        "TOWNHALL_SIGNUP_PER_IP_PER_HOUR": "1000",
        **env,
    }
    cli = [sys.executable, "-m", "townhall.cli"]
    subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [*cli, "serve", "--port", str(port), "--no-migrate"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        async with httpx.AsyncClient() as client:
            for port in ports:
                for _ in range(600):
                    try:
                        if (
                            await client.get(f"http://127.0.0.1:{port}/healthz")
                        ).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"townhall serve on {port} did not start")
        yield [f"127.0.0.1:{port}" for port in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
async def two_servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[str]]:
    """One pair for the module (starting it is most of the time of these tests)."""
    # A store debounce far beyond any test: edits stay in a room until it closes.
    slow_store = {
        "TOWNHALL_COLLAB_STORE_DEBOUNCE_SECONDS": "120",
        "TOWNHALL_COLLAB_STORE_MAX_DEBOUNCE_SECONDS": "240",
    }
    async with two_townhalls(tmp_path_factory.mktemp("two-townhalls"), **slow_store) as hosts:
        yield hosts


async def _signup(host: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        response = await http.post(
            "/api/v1/auth/signup",
            json={
                "email": f"x-{uuid.uuid4().hex[:8]}@example.com",
                "password": "password123",
                "display_name": "X",
            },
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["access_token"]
        return token


async def test_clients_on_different_processes_converge(two_servers: list[str]) -> None:
    a_host, b_host = two_servers
    token = await _signup(a_host)
    doc_id = uuid.uuid4().hex
    path = f"/collab/ws/demo/{doc_id}?token={token}"
    async with (
        websockets.connect(f"ws://{a_host}{path}") as ws_a,
        websockets.connect(f"ws://{b_host}{path}") as ws_b,
    ):
        await edits_meet(ws_a, ws_b, "from A;", "from B;")

    # Signaling peers on different processes see each other.
    topic = f"townhall:demo:{doc_id}"
    async with (
        websockets.connect(f"ws://{a_host}/collab/signaling?token={token}") as sig_a,
        websockets.connect(f"ws://{b_host}/collab/signaling?token={token}") as sig_b,
    ):
        for ws in (sig_a, sig_b):
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
            await ws.send(json.dumps({"type": "ping"}))
            await _recv_json(ws, "pong")
        data = {"type": "announce", "from": "peer-on-a"}
        # `clients` counts both processes' subscribers once their counts crossed pub/sub.
        for _ in range(50):
            await sig_a.send(json.dumps({"type": "publish", "topic": topic, "data": data}))
            got = await _recv_json(sig_b, "publish", timeout=10)
            if got["clients"] == 2:
                break
            await asyncio.sleep(0.1)
        assert got["data"] == data
        assert got["topic"] == topic
        assert got["clients"] == 2
        # A learned B's count before B learned A's (A's answer followed it), so A counts 2 too.
        final = {"type": "announce", "from": "peer-on-a", "n": "final"}
        await sig_a.send(json.dumps({"type": "publish", "topic": topic, "data": final}))
        echo = await _recv_json(sig_a, "publish", timeout=10)
        while echo["data"] != final:
            echo = await _recv_json(sig_a, "publish", timeout=10)
        assert echo["clients"] == 2

    # A third client joining later on process B loads everything (buffer + database).
    await asyncio.sleep(0.5)
    async with websockets.connect(f"ws://{b_host}{path}") as ws_c:
        c = YClient(ws_c)
        await c.handshake()
        assert "from A;" in c.text
        assert "from B;" in c.text


async def test_late_joiner_on_another_process_sees_edits_not_yet_stored(
    two_servers: list[str],
) -> None:
    # The store debounce outlasts the test: A's edits stay in A's room, not in the buffer.
    a_host, b_host = two_servers
    token = await _signup(a_host)
    doc_id = uuid.uuid4().hex
    path = f"/collab/ws/demo/{doc_id}?token={token}"
    async with (
        websockets.connect(f"ws://{a_host}{path}") as ws_a,
        websockets.connect(f"ws://{a_host}{path}") as ws_watch,
    ):
        a, watch = YClient(ws_a), YClient(ws_watch)
        await a.handshake()
        await watch.handshake()
        await a.edit("only in A's room;")
        # A's room has applied it (it relayed it to another client) before B's room exists.
        await watch.pump_until(lambda: watch.text == "only in A's room;", timeout=10)
        async with websockets.connect(f"ws://{b_host}{path}") as ws_b:
            b = YClient(ws_b)
            await b.handshake()
            await b.pump_until(lambda: b.text == "only in A's room;", timeout=10)

        # A save through B (no room there now, or one that relays) reaches A's clients.
        leader = YClient(None)
        leader.doc.apply_update(a.doc.get_update())
        async with httpx.AsyncClient(base_url=f"http://{b_host}") as http:
            response = await http.post(
                f"/api/v1/collab/demo/save?id={doc_id}",
                content=text_update("saved via B;", doc=leader.doc),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
        await a.pump_until(lambda: a.text == "only in A's room;saved via B;", timeout=10)
