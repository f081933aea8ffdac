"""Two `townhall serve` processes sharing Redis: rooms and signaling topics span processes."""

from __future__ import annotations

import asyncio
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
from tests.collab.test_sockets import YClient, _recv_json
from tests.fixtures.services import REDIS_URL, free_port, require

# Starting processes is slow on a loaded machine; the timeout covers migrate + two starts.
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def two_servers(tmp_path: Path) -> AsyncIterator[list[str]]:
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


async def test_clients_on_different_processes_converge(two_servers: list[str]) -> None:
    a_host, b_host = two_servers
    async with httpx.AsyncClient(base_url=f"http://{a_host}") as http:
        response = await http.post(
            "/api/v1/auth/signup",
            json={"email": "x@example.com", "password": "password123", "display_name": "X"},
        )
        assert response.status_code == 201, response.text
        token = response.json()["access_token"]
    doc_id = uuid.uuid4().hex
    path = f"/collab/ws/demo/{doc_id}?token={token}"
    async with (
        websockets.connect(f"ws://{a_host}{path}") as ws_a,
        websockets.connect(f"ws://{b_host}{path}") as ws_b,
    ):
        a, b = YClient(ws_a), YClient(ws_b)
        await a.handshake()
        await b.handshake()
        await a.edit("from A;")
        await b.pump_until(lambda: "from A;" in b.text, timeout=10)
        await b.edit("from B;")
        await a.pump_until(lambda: "from B;" in a.text, timeout=10)
        assert a.text == b.text

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
        await sig_a.send(json.dumps({"type": "publish", "topic": topic, "data": data}))
        got = await _recv_json(sig_b, "publish", timeout=10)
        assert got["data"] == data
        assert got["topic"] == topic

    # A third client joining later on process B loads everything (buffer + database).
    await asyncio.sleep(0.5)
    async with websockets.connect(f"ws://{b_host}{path}") as ws_c:
        c = YClient(ws_c)
        await c.handshake()
        assert "from A;" in c.text
        assert "from B;" in c.text
