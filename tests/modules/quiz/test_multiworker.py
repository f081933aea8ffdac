"""Race and failover tests on real `townhall serve` processes sharing Redis."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fixtures.database import empty_tables
from tests.fixtures.services import REDIS_URL, free_port, require
from tests.modules.quiz.conftest import SESSION_PREFIX, _drop_prefix
from tests.modules.quiz.helpers import (
    Client,
    RawPlayer,
    signup_and_quiz,
    start_serve,
    stop,
    stored_game,
    wait_http,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(400)]

CROWD = 2000
SINGLE = {
    "type": "single",
    "text": "Pick B",
    "time_limit": 60,
    "options": [{"text": "A"}, {"text": "B", "correct": True}],
}
SHORT = {**SINGLE, "time_limit": 5}


@dataclass
class Cluster:
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    env: dict[str, str]
    log: Path
    prefix: str


@pytest.fixture(scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory, sqlite_database_url: str
) -> AsyncIterator[Cluster]:
    """Two `townhall serve` processes on two ports, one SQLite file, one Redis."""
    require("Redis", REDIS_URL, 6379)
    tmp = tmp_path_factory.mktemp("cluster")
    prefix = f"{SESSION_PREFIX}{uuid.uuid4().hex[:6]}:"
    env = {
        "TOWNHALL_ENV": "test",
        "TOWNHALL_VAR_DIR": str(tmp / "var"),
        "TOWNHALL_SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
        "TOWNHALL_DATABASE_URL": sqlite_database_url,
        "TOWNHALL_REDIS_URL": REDIS_URL,
        "TOWNHALL_QUIZ_KEY_PREFIX": prefix,
        "TOWNHALL_COLLAB_KEY_PREFIX": prefix,
        "TOWNHALL_SIGNUP_PER_IP_PER_HOUR": "100000",
        "TOWNHALL_LOG_LEVEL": "WARNING",
        "TOWNHALL_QUIZ_EVENTS_PER_SECOND": "50",
    }
    log = tmp / "serve.log"
    ports = [free_port(), free_port()]
    procs = [start_serve(port, env, log) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, proc in zip(urls, procs, strict=True):
            await wait_http(url, proc)
        yield Cluster(urls, procs, env, log, prefix)
    finally:
        for proc in procs:
            stop(proc)
        await _drop_prefix(prefix)
        await empty_tables(sqlite_database_url)


async def _crowd(urls: list[str], pin: str, count: int) -> list[RawPlayer]:
    """`count` players joined, alternating between the workers."""
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> RawPlayer:
        async with gate:
            player = await RawPlayer().connect(urls[i % len(urls)])
            joined = await player.call("join", {"pin": pin, "nickname": f"p{i}"})
            assert joined["ok"], joined
            player.events["me"].append(joined)
            return player

    return list(await asyncio.gather(*[one(i) for i in range(count)]))


async def _host(url: str, questions: list[dict[str, Any]], email: str) -> tuple[Client, str]:
    token, quiz_id = await signup_and_quiz(url, email, questions)
    host = await Client().connect(url, token)
    created = await host.call("host_create", {"quiz_id": quiz_id})
    assert created["ok"], created
    return host, created["pin"]


async def test_two_thousand_simultaneous_answers(cluster: Cluster) -> None:
    first_host, pin = await _host(cluster.urls[0], [SINGLE], "race@example.com")
    await first_host.close()  # the host returns once the crowd is in (a long join burst)
    players = await _crowd(cluster.urls, pin, CROWD)
    host = await Client().connect(cluster.urls[0], first_host.sio.connection_auth["token"])
    lobby = await host.call("host_join", {"pin": pin})
    assert lobby["players"] == CROWD
    assert len(lobby["roster"]) == CROWD
    assert (await host.call("next"))["ok"]
    await asyncio.gather(*[p.wait("question") for p in players])

    # Every player taps twice at once; the two workers receive half each.
    calls = [p.call("answer", {"index": 0, "answer": 1}) for p in players for _ in range(2)]
    acks = await asyncio.gather(*calls)
    accepted = [a for a in acks if a["ok"]]
    assert len(accepted) == CROWD
    assert sum(a["first"] for a in accepted) == 1
    # A second tap is refused: already answered, or the question had closed (all answered).
    unexpected = [
        a for a in acks if not a["ok"] and a.get("error") not in ("already_answered", "not_open")
    ]
    assert not unexpected, unexpected[:5]

    await asyncio.gather(*[p.wait("question_results") for p in players])
    await asyncio.sleep(1.0)  # a second close would arrive by now
    assert all(len(p.events["question_results"]) == 1 for p in players)
    assert len((await host.wait("question_results"))["ranking"]) == 500  # capped broadcast

    # Each player's stored score is exactly what its one accepted answer earned.
    earned = {}
    for player, pair in zip(players, zip(acks[0::2], acks[1::2], strict=True), strict=True):
        ok = next(a for a in pair if a["ok"])
        earned[player.events["me"][0]["player"]] = ok["points"] + ok["bonus"]
    sample = players[:: CROWD // 50]
    for player in sample:
        me = await player.call("me", {})
        assert me["score"] == earned[player.events["me"][0]["player"]]
    if not host.sio.connected:
        # On a saturated test machine the host client can miss a ping: it reconnects, as a
        # real host's browser would, and the game is still there.
        host = await Client().connect(cluster.urls[1], first_host.sio.connection_auth["token"])
        assert (await host.call("host_join", {"pin": pin}))["status"] == "results"
    over = await host.call("finish", timeout=120)  # writes 2,000 players' results
    assert over["ok"], over
    assert len(over["podium"]) == 3
    await asyncio.gather(*[p.close() for p in players])
    await host.close()


async def test_reconnect_to_the_other_worker_restores_state(cluster: Cluster) -> None:
    host, pin = await _host(cluster.urls[0], [SINGLE, SINGLE], "reconnect@example.com")
    ann = await RawPlayer().connect(cluster.urls[0])
    joined = await ann.call("join", {"pin": pin, "nickname": "Ann"})
    bob = await RawPlayer().connect(cluster.urls[1])
    bob_join = await bob.call("join", {"pin": pin, "nickname": "Bob"})
    cy = await RawPlayer().connect(cluster.urls[1])
    cy_join = await cy.call("join", {"pin": pin, "nickname": "Cy"})

    # Lobby chat crosses workers; the host (worker 0) moderates players on worker 1.
    assert (await ann.call("chat", {"text": "hi from worker 0"}))["ok"]
    assert (await bob.wait("chat"))["text"] == "hi from worker 0"
    assert (await bob.call("chat", {"text": "hi back"}))["ok"]
    assert (await ann.wait("chat", 2))["text"] == "hi back"
    assert (await host.call("mute", {"player": bob_join["player"]}))["ok"]
    assert (await bob.call("chat", {"text": "still here"}))["error"] == "muted"
    assert (await host.call("kick", {"player": cy_join["player"]}))["ok"]
    assert (await cy.wait("kicked"))["player"] == cy_join["player"]
    await cy.wait("disconnected", timeout=10)  # worker 1 dropped Cy's socket for the host
    again_cy = await RawPlayer().connect(cluster.urls[0])
    assert (await again_cy.call("rejoin", {"token": cy_join["token"]}))["error"] == "kicked"
    await again_cy.close()

    assert (await host.call("next"))["ok"]
    await ann.wait("question")
    first = await ann.call("answer", {"index": 0, "answer": 1})
    assert first["ok"]
    assert (await host.call("skip"))["ok"]
    await ann.wait("question_results")
    await ann.close()  # Ann's phone drops while the host opens the next question
    assert (await host.call("next"))["ok"]
    await bob.wait("question", 2)

    again = await RawPlayer().connect(cluster.urls[1])
    state = await again.call("rejoin", {"token": joined["token"]})
    assert state["ok"], state
    assert state["score"] == first["points"] + first["bonus"]
    assert state["streak"] == 1
    assert state["status"] == "question"
    assert state["question"]["index"] == 1
    assert 0 < state["question"]["remaining_ms"] <= 60_000
    assert state["answered"] is False
    second = await again.call("answer", {"index": 1, "answer": 1})
    assert second["ok"]
    assert second["streak"] == 2
    assert (await again.call("me", {}))["rank"] == 1
    await again.close()
    await cy.close()
    await bob.close()
    await host.close()


async def test_question_closes_when_timer_owner_dies(cluster: Cluster) -> None:
    """The host's worker (timer owner) is killed mid-question; another closes on time.

    Runs last in this module: it kills worker 0 of the cluster.
    """
    owner_url, survivor = cluster.urls
    host, pin = await _host(owner_url, [SHORT, SHORT], "failover@example.com")
    players = [await RawPlayer().connect(survivor) for _ in range(3)]
    for i, player in enumerate(players):
        assert (await player.call("join", {"pin": pin, "nickname": f"f{i}"}))["ok"]
    asked_at = time.monotonic()
    assert (await host.call("next"))["ok"]
    shown = await players[0].wait("question")
    # Upper bound of the server's deadline: the question left the server before it arrived.
    deadline = players[0].arrived["question"][0] + shown["remaining_ms"] / 1000
    stop(cluster.procs[0], signal.SIGKILL)
    results = await players[0].wait("question_results", timeout=15)
    closed_at = players[0].arrived["question_results"][0]
    assert results["index"] == 0
    assert closed_at <= deadline + 1.0, f"closed {closed_at - deadline:.2f}s late"
    assert closed_at >= asked_at + 5.0  # closed by the deadline, not early
    await asyncio.sleep(0.5)
    assert all(len(p.events["question_results"]) == 1 for p in players)

    # The host reconnects to the surviving worker and the game goes on.
    host2 = await Client().connect(survivor, host.sio.connection_auth["token"])
    state = await host2.call("host_join", {"pin": pin})
    assert state["ok"], state
    assert state["status"] == "results"
    assert (await host2.call("next"))["ok"]
    assert (await players[1].wait("question", 2))["index"] == 1

    # Everyone answers the last question and the host never finishes: results are stored.
    for player in players:
        assert (await player.call("answer", {"index": 1, "answer": 1}))["ok"]
    assert (await players[0].wait("question_results", 2))["final"]
    token = host.sio.connection_auth["token"]
    async with httpx.AsyncClient(
        base_url=survivor, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        stored = await stored_game(http, state["game_id"])
    assert sorted(p["correct_count"] for p in stored["players"]) == [1, 1, 1]
    await asyncio.gather(*[p.close() for p in players])
    await host2.close()
