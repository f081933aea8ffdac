"""Interop with the real npm packages: y-websocket clients and y-webrtc signaling."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from tests.collab.helpers import text_of
from tests.fixtures.app import signup
from tests.fixtures.jobs import wait_until
from tests.fixtures.services import IN_CI

from townhall.collab.hooks import Role, ServiceHooks, register_service, unregister_service
from townhall.core.deps import Principal

INTEROP = Path(__file__).parent / "interop"

pytestmark = pytest.mark.slow


def ensure_node_packages() -> str:
    """The node binary, with tests/collab/interop/node_modules installed from the lock file."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        message = "node/npm not found; the npm interop tests need them"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    if not (INTEROP / "node_modules" / "y-webrtc").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=INTEROP,
            check=True,
            timeout=300,
        )
    return node


async def run_node(*args: str, timeout: float = 40) -> list[dict[str, Any]]:
    node = ensure_node_packages()
    proc = await asyncio.create_subprocess_exec(
        node, *args, cwd=INTEROP, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()[-2000:]
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


async def test_npm_y_websocket_clients_converge_with_the_server_copy(
    client: httpx.AsyncClient, app: FastAPI, live: str, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    [result] = await run_node(
        "ywebsocket.mjs", f"ws://{live}/collab/ws/demo", doc_id, user["access_token"]
    )
    assert result["a"] == result["b"]
    assert sorted(result["a"].split(";")[:2]) == ["from-a", "from-b"]
    # The server's live copy (room or buffer) matches what the npm clients hold.
    engine = app.state.collab
    await wait_until(lambda: engine.rooms.is_unloaded("demo", doc_id), message="room unload")
    await engine.flush()
    state = await client.get(f"/api/v1/collab/demo/{doc_id}/state", headers=user["headers"])
    server_state = base64.b64decode(state.json()["state"])
    assert text_of(server_state) == result["a"]
    assert text_of(base64.b64decode(result["state"])) == result["a"]


async def test_npm_y_webrtc_handshake_through_the_signaling_relay(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    first = await signup(client, "ann@example.com")
    second = await signup(client, "bob@example.com")
    topic = f"townhall:demo:{doc_id}"
    url = f"ws://{live}/collab/signaling?token="
    node = ensure_node_packages()

    async def start(token: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            node, "ywebrtc.mjs", url + token, topic, "8", cwd=INTEROP, stdout=subprocess.PIPE
        )

    proc_a = await start(first["access_token"])
    assert proc_a.stdout is not None
    start_a = json.loads(await asyncio.wait_for(proc_a.stdout.readline(), 20))
    await asyncio.sleep(0.5)
    proc_b = await start(second["access_token"])
    out_a, _ = await asyncio.wait_for(proc_a.communicate(), 30)
    out_b, _ = await asyncio.wait_for(proc_b.communicate(), 30)
    events_a = [json.loads(line) for line in out_a.decode().splitlines() if line.startswith("{")]
    events_b = [json.loads(line) for line in out_b.decode().splitlines() if line.startswith("{")]
    id_a = start_a["self"]
    id_b = next(e["self"] for e in events_b if e["event"] == "start")
    # A saw B's announce, created the initiator peer and sent an offer that reached B.
    assert any(e["event"] == "announce" and e["from"] == id_b for e in events_a)
    assert any(e["event"] == "peer" and e["remote"] == id_b for e in events_a)
    offers = [e for e in events_b if e["event"] == "signal" and e["from"] == id_a]
    assert offers
    assert offers[0]["to"] == id_b
    assert offers[0]["kind"] == "offer"
    assert offers[0]["clients"] == 2
    # B answered through the relay and created its side of the connection.
    assert any(e["event"] == "peer" and e["remote"] == id_a for e in events_b)
    assert any(
        e["event"] == "signal" and e["from"] == id_b and e["kind"] == "answer" for e in events_a
    )


async def _rtc_authorize(
    principal: Principal | None, service: str, doc_id: str, session: AsyncSession
) -> Role | None:
    roles: dict[str, Role] = {"ann@example.com": "editor", "bob@example.com": "viewer"}
    return roles.get(principal.user.email) if principal is not None else None


async def test_npm_y_webrtc_viewer_is_kept_out_of_the_mesh(
    client: httpx.AsyncClient, live: str, doc_id: str
) -> None:
    editor = await signup(client, "ann@example.com")
    viewer = await signup(client, "bob@example.com")
    register_service(ServiceHooks("rtcacl", _rtc_authorize))
    topic = f"townhall:rtcacl:{doc_id}"
    url = f"ws://{live}/collab/signaling?token="
    node = ensure_node_packages()

    async def start(token: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            node, "ywebrtc.mjs", url + token, topic, "8", cwd=INTEROP, stdout=subprocess.PIPE
        )

    try:
        proc_a = await start(editor["access_token"])
        assert proc_a.stdout is not None
        start_a = json.loads(await asyncio.wait_for(proc_a.stdout.readline(), 20))
        await asyncio.sleep(0.5)
        proc_b = await start(viewer["access_token"])
        out_a, _ = await asyncio.wait_for(proc_a.communicate(), 30)
        out_b, _ = await asyncio.wait_for(proc_b.communicate(), 30)
    finally:
        unregister_service("rtcacl")
    # The unmodified client shrugs off the refusal (it ignores the error message) ...
    assert (proc_a.returncode, proc_b.returncode) == (0, 0)
    events_a = [json.loads(line) for line in out_a.decode().splitlines() if line.startswith("{")]
    events_b = [json.loads(line) for line in out_b.decode().splitlines() if line.startswith("{")]
    # ... but it is not in the topic: it hears nothing, and the editor never hears of it.
    assert [e["event"] for e in events_b] == ["start"]
    id_b = events_b[0]["self"]
    assert any(e["event"] == "announce" and e["from"] == start_a["self"] for e in events_a)
    assert not [e for e in events_a if id_b in (e.get("from"), e.get("remote"))]
    assert not [e for e in events_a if e["event"] == "peer"]


async def test_leader_election_module_with_real_yjs_awareness() -> None:
    [result] = await run_node("leader.mjs")
    assert result["leaders1"] == [2, 2, 2]  # smallest client id with edit rights; 1 is a viewer
    assert result["saves1"] == [0, 1, 0]  # only the leader saved, once: one unsaved change
    assert result["leaders2"] == [3, 3]  # 2 left: 3 took over
    assert result["saves2"] == [0, 1, 1]  # and saved the change made meanwhile
    assert result["saves3"] == result["saves2"]  # nothing unsaved: no more saves
    # Later saves are diffs from the server's answered state vector, never the whole document.
    assert result["leaderSaves"] == 3
    assert result["docBytes"] > 20000
    assert result["lastSaveBytes"] < 200
    assert result["serverMatches"] is True
