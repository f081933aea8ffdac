"""A game whose host leaves is ended by whichever worker notices: scores kept, lobby discarded.

The database does not matter here (results storage runs on both in test_game_flow): the
game stores do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_tables
from tests.fixtures.services import REDIS_URL, require
from tests.modules.quiz.conftest import SESSION_PREFIX, _drop_prefix
from tests.modules.quiz.helpers import Client, live_server, signup_and_quiz, stored_game

ABSENT_SECONDS = 1.0
QUESTIONS = [
    {
        "type": "true_false",
        "text": "The sky is blue?",
        "time_limit": 30,
        "options": [{"text": "True", "correct": True}, {"text": "False"}],
    },
    {
        "type": "true_false",
        "text": "Water is dry?",
        "time_limit": 30,
        "options": [{"text": "True"}, {"text": "False", "correct": True}],
    },
]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def server(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_database_url: str
) -> AsyncIterator[str]:
    """The app with a host-absence limit short enough for a test, on both game stores."""
    stores: dict[str, str] = {}
    prefix = f"{SESSION_PREFIX}{uuid.uuid4().hex[:6]}:"
    if request.param == "redis":
        require("Redis", REDIS_URL, 6379)
        stores = {"redis_url": REDIS_URL, "quiz_key_prefix": prefix}
    settings = make_settings(
        tmp_path,
        database_url=sqlite_database_url,
        quiz_host_absent_seconds=ABSENT_SECONDS,
        **stores,
    )
    async with live_server(settings) as base:
        yield base
    await empty_tables(sqlite_database_url)
    if stores:
        await _drop_prefix(prefix)


async def game_with_player(server: str) -> tuple[str, Client, Client, dict[str, str]]:
    """A host's game with one player joined; returns (host token, host, player, created)."""
    token, quiz_id = await signup_and_quiz(server, questions=QUESTIONS)
    host = await Client().connect(server, token)
    created = await host.call("host_create", {"quiz_id": quiz_id})
    assert created["ok"], created
    player = await Client().connect(server)
    assert (await player.call("join", {"pin": created["pin"], "nickname": "Ann"}))["ok"]
    return token, host, player, created


async def test_a_game_whose_host_left_mid_question_ends_with_the_scores_so_far(
    server: str,
) -> None:
    token, host, player, created = await game_with_player(server)
    assert (await host.call("next"))["ok"]
    await player.wait("question")
    answered = await player.call("answer", {"index": 0, "answer": 0})
    assert answered["ok"], answered
    assert (await host.call("next"))["ok"]  # the second question is open when the host goes
    await player.wait("question", 2)
    await host.close()

    over = await player.wait("game_over", timeout=ABSENT_SECONDS + 15)
    assert over["reason"] == "host_left"
    assert [p["nickname"] for p in over["podium"]] == ["Ann"]
    # The open question was closed first, so the player saw its results.
    assert (await player.wait("question_results", 2))["index"] == 1
    async with httpx.AsyncClient(
        base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        stored = await stored_game(http, created["game_id"])
    assert [(p["nickname"], p["score"]) for p in stored["players"]] == [("Ann", answered["score"])]
    await player.close()


async def test_a_lobby_whose_host_left_is_discarded(server: str) -> None:
    token, host, player, created = await game_with_player(server)
    await host.close()

    over = await player.wait("game_over", timeout=ABSENT_SECONDS + 15)
    assert over == {"podium": [], "ranking": [], "players": 0, "reason": "host_left"}
    late = await Client().connect(server)
    assert (await late.call("join", {"pin": created["pin"], "nickname": "Bo"}))[
        "error"
    ] == "game_over"
    async with httpx.AsyncClient(
        base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        stored = (await http.get(f"/api/v1/quizzes/games/{created['game_id']}")).json()
    assert stored["status"] == "abandoned"
    assert stored["players"] == []
    for client in (player, late):
        await client.close()


async def test_a_host_who_stays_or_comes_back_keeps_the_game(server: str) -> None:
    token, host, player, created = await game_with_player(server)
    await asyncio.sleep(ABSENT_SECONDS * 2)  # connected the whole time: nothing ends
    await host.close()
    again = await Client().connect(server, token)  # a reload: back well within the limit
    assert (await again.call("host_join", {"pin": created["pin"]}))["ok"]
    await asyncio.sleep(ABSENT_SECONDS * 2)
    assert player.events["game_over"] == []
    assert (await again.call("next"))["ok"]
    await player.wait("question")
    for client in (player, again):
        await client.close()
