"""The real npm socket.io-client (Node) joins and plays a game."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_tables
from tests.modules.quiz.helpers import QUESTIONS, Client, live_server, signup_and_quiz

INTEROP = Path(__file__).parent / "interop"

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(tmp_path: Path, sqlite_database_url: str) -> AsyncIterator[str]:
    async with live_server(make_settings(tmp_path, database_url=sqlite_database_url)) as base:
        yield base
    await empty_tables(sqlite_database_url)


async def test_node_socket_io_client_plays(server: str) -> None:
    node = shutil.which("node")
    assert node, "node is missing: run scripts/test-deps.sh"
    assert (INTEROP / "node_modules" / "socket.io-client").is_dir(), "run scripts/test-deps.sh"
    token, quiz_id = await signup_and_quiz(server, questions=QUESTIONS[:1])
    host = await Client().connect(server, token)
    pin = (await host.call("host_create", {"quiz_id": quiz_id}))["pin"]

    proc = await asyncio.create_subprocess_exec(
        node,
        str(INTEROP / "play.mjs"),
        server,
        pin,
        "Nodey",
        "1",  # the correct option of "2 + 2?"
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=INTEROP,
    )
    try:
        assert (await host.wait("player_joined", timeout=30))["nickname"] == "Nodey"
        assert (await host.call("next"))["ok"]
        results = await host.wait("question_results", timeout=20)  # closed: everyone answered
        assert results["top"][0]["nickname"] == "Nodey"
        assert (await host.call("finish"))["ok"]
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, stderr.decode()
    lines = {e["event"]: e["data"] for e in map(json.loads, stdout.decode().splitlines())}
    assert lines["joined"]["ok"]
    assert lines["answered"]["ok"]
    assert lines["answered"]["first"]
    assert lines["question_results"]["index"] == 0
    assert lines["game_over"]["podium"][0]["nickname"] == "Nodey"
    assert lines["game_over"]["podium"][0]["score"] == (
        lines["answered"]["points"] + lines["answered"]["bonus"]
    )
    await host.close()
