"""A whole game with real python-socketio clients against uvicorn (embedded Redis-less mode)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_tables
from tests.modules.quiz.helpers import (
    PNG,
    QUESTIONS,
    Client,
    live_server,
    signup_and_quiz,
    stored_game,
)

# What Ann (always right) and Bob (wrong, except true/false) answer, per question.
ANN = [1, [0, 2], 0, "  paris ", 91, None, 0]
BOB = [0, [0], 0, "Lyon", 120, [0, 1, 2], 1]


def _ordering_answer(question: dict[str, Any]) -> list[int]:
    """The display positions of the items sorted by their true order ('1' < '10' < '100')."""
    items: list[str] = question["items"]
    return sorted(range(len(items)), key=lambda i: int(items[i]))


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[str]:
    """The app on uvicorn; results are stored in SQLite and in PostgreSQL."""
    settings = make_settings(tmp_path, database_url=database_url)
    async with live_server(settings) as base:
        yield base
    await empty_tables(database_url)


async def test_full_game(server: str) -> None:
    token, quiz_id = await signup_and_quiz(server)
    host = await Client().connect(server, token)
    created = await host.call("host_create", {"quiz_id": quiz_id})
    assert created["ok"], created
    pin = created["pin"]
    assert len(pin) == 6
    assert pin.isdigit()

    ann_token, _ = await signup_and_quiz(server, "ann@example.com")
    ann, bob, cy = Client(), Client(), Client()
    await ann.connect(server, ann_token)  # Ann plays signed in: the result joins her history
    for c in (bob, cy):
        await c.connect(server)
    # Bad input is rejected with an error event, and nothing else changes.
    wrong = await ann.call(
        "join", {"pin": "000000" if pin != "000000" else "111111", "nickname": "Ann"}
    )
    assert wrong["error"] == "no_game"
    assert (await ann.wait("error"))["code"] == "no_game"
    assert (await ann.call("join", {"pin": "12ab", "nickname": "Ann"}))["error"] == "bad_pin"
    assert (await ann.call("join", {"pin": pin, "nickname": "sh1t"}))["error"] == "bad_nickname"
    joined = await ann.call("join", {"pin": pin, "nickname": "Ann"})
    assert joined["ok"]
    assert joined["status"] == "lobby"
    assert (await bob.call("join", {"pin": pin, "nickname": " ANN"}))["error"] == "nickname_taken"
    bob_join = await bob.call("join", {"pin": pin, "nickname": "Bob"})
    cy_join = await cy.call("join", {"pin": pin, "nickname": "Cy"})
    assert (await host.wait("player_joined", 3))["nickname"] == "Cy"

    # Only the host controls the game; chat works in the lobby; the host moderates.
    assert (await ann.call("next"))["error"] == "not_host"
    assert (await ann.call("chat", {"text": "hello all"}))["ok"]
    assert (await bob.wait("chat"))["text"] == "hello all"
    assert (await host.call("mute", {"player": bob_join["player"]}))["ok"]
    assert (await bob.call("chat", {"text": "hi"}))["error"] == "muted"
    assert (await host.call("kick", {"player": cy_join["player"]}))["ok"]
    assert (await cy.wait("kicked"))["player"] == cy_join["player"]
    assert (await host.call("sync"))["players"] == 2

    # Malformed, unknown and cross-game events: error events, the game goes on.
    assert (await ann.call("answer", "junk"))["error"] == "malformed"
    seen = len(ann.events["error"])
    await ann.emit("no_such_event", {})
    assert (await ann.wait("error", seen + 1))["code"] == "unknown_event"
    assert (await ann.call("chat", {"pin": "999999", "text": "x"}))["error"] == "wrong_game"

    expected = {"ann": 0, "bob": 0}
    bob_base = 0  # questions Bob saw on an earlier socket
    for index, question in enumerate(QUESTIONS):
        opened = await host.call("next")
        assert opened["ok"], opened
        shown = await ann.wait("question", index + 1)
        await bob.wait("question", index + 1 - bob_base)
        assert shown["index"] == index
        assert "key" not in shown
        assert 0 < shown["remaining_ms"] <= question["time_limit"] * 1000
        ann_answer = ANN[index] if ANN[index] is not None else _ordering_answer(shown)
        if index == 3:
            # An answer for another question is refused.
            assert (await bob.call("answer", {"index": 2, "answer": 0}))[
                "error"
            ] == "wrong_question"
        first = await ann.call("answer", {"index": index, "answer": ann_answer})
        assert first["ok"], first
        assert (await ann.call("answer", {"index": index, "answer": ann_answer}))["error"] == (
            "already_answered"
        )
        expected["ann"] += first["points"] + first["bonus"]
        if question["type"] == "poll":
            assert first["points"] == first["bonus"] == 0
            # Bob stays silent: the server's timer closes the question at the deadline.
        else:
            base = question.get("points", 1000)
            assert base / 2 <= first["points"] <= base
            assert first["first"]
            assert first["streak"] == index + 1
            assert first["bonus"] == 100 + min(100 * index, 500)
            second = await bob.call("answer", {"index": index, "answer": BOB[index]})
            assert second["ok"], second
            assert not second["first"]
            expected["bob"] += second["points"] + second["bonus"]
            if question["type"] == "true_false":
                assert second["points"] > 0
            else:
                assert second["points"] == 0
        results = await ann.wait("question_results", index + 1, timeout=15)
        assert results["index"] == index
        assert results["distribution"]["answered"] == (1 if question["type"] == "poll" else 2)
        ranking = {row[0]: row[1] for row in results["ranking"]}
        assert ranking[joined["player"]] == expected["ann"]
        assert results["top"][0]["nickname"] == "Ann"
        assert (await ann.call("answer", {"index": index, "answer": ann_answer}))["error"] in (
            "not_open",
            "already_answered",
        )
        if index == 4:
            # Bob reloads: a new socket with his token gets his score and the game back.
            await bob.close()
            bob = await Client().connect(server)
            bob_base = index + 1
            restored = await bob.call("rejoin", {"token": bob_join["token"]})
            assert restored["ok"], restored
            assert restored["score"] == expected["bob"]
            assert restored["status"] == "results"
            assert restored["question"]["index"] == 4
            me = await bob.call("me")
            assert (me["rank"], me["score"]) == (2, expected["bob"])
    assert results["final"]
    assert results["correct"] is None  # the poll has no correct answer

    over = await host.call("finish")
    assert over["ok"], over
    podium = (await ann.wait("game_over"))["podium"]
    assert [p["nickname"] for p in podium] == ["Ann", "Bob"]
    assert podium[0]["score"] == expected["ann"]
    assert (await host.call("finish"))["error"] == "game_over"

    async with httpx.AsyncClient(
        base_url=server, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        stored = (await http.get(f"/api/v1/quizzes/games/{created['game_id']}")).json()
        assert stored["status"] == "ended"
        by_name = {p["nickname"]: p for p in stored["players"]}
        assert by_name["Ann"]["score"] == expected["ann"]
        assert by_name["Ann"]["correct_count"] == 6
        assert by_name["Bob"]["correct_count"] == 1
        assert by_name["Bob"]["rank"] == 2
        assert by_name["Cy"]["score"] == 0
        report = await http.get(f"/api/v1/quizzes/games/{created['game_id']}/results.csv")
        rows = list(csv.DictReader(io.StringIO(report.text)))
        assert len(rows) == 3 * len(QUESTIONS)
        assert {r["outcome"] for r in rows if r["nickname"] == "Ann"} == {"correct", "poll"}
        quiz = (await http.get(f"/api/v1/quizzes/{quiz_id}")).json()
        assert quiz["play_count"] == 1
        history = await http.get(
            "/api/v1/quizzes/games/played", headers={"Authorization": f"Bearer {ann_token}"}
        )
        assert [(g["id"], g["me"]["rank"]) for g in history.json()] == [(created["game_id"], 1)]
        assert (
            await http.get("/api/v1/quizzes/games/played")
        ).json() == []  # the host did not play
    for c in (host, ann, bob):
        await c.close()


async def test_host_needs_an_account_and_a_visible_quiz(server: str) -> None:
    _, quiz_id = await signup_and_quiz(server)
    anonymous = await Client().connect(server)
    assert (await anonymous.call("host_create", {"quiz_id": quiz_id}))["error"] == "unauthorized"
    other_token, _ = await signup_and_quiz(server, "other@example.com")
    other = await Client().connect(server, other_token)
    refused = await other.call("host_create", {"quiz_id": quiz_id})  # private quiz of another
    assert refused["error"] == "rejected"
    assert (await other.call("host_create", {"quiz_id": "nope"}))["error"] == "malformed"
    await anonymous.close()
    await other.close()


async def test_floods_are_cut_and_the_game_goes_on(server: str) -> None:
    token, quiz_id = await signup_and_quiz(server, questions=QUESTIONS[:1])
    host = await Client().connect(server, token)
    pin = (await host.call("host_create", {"quiz_id": quiz_id}))["pin"]
    flooder, calm = await Client().connect(server), await Client().connect(server)
    assert (await flooder.call("join", {"pin": pin, "nickname": "Flo"}))["ok"]
    assert (await calm.call("join", {"pin": pin, "nickname": "Cal"}))["ok"]
    for _ in range(100):
        await flooder.emit("me", {})
    await flooder.wait("error")
    assert any(e["code"] == "rate_limited" for e in flooder.events["error"])
    assert (await calm.call("me"))["ok"]  # others are untouched
    assert (await host.call("next"))["ok"]
    await calm.wait("question")
    assert (await calm.call("answer", {"index": 0, "answer": 1}))["ok"]
    await asyncio.sleep(1.0)  # the flooder's bucket refills
    assert (await flooder.call("answer", {"index": 0, "answer": 1}))["ok"]
    assert (await calm.wait("question_results"))["distribution"]["correct"] == 2
    for c in (host, flooder, calm):
        await c.close()


async def test_question_image_reaches_players(server: str) -> None:
    """A question's image goes to players as a signed URL, never as its storage key."""
    token, quiz_id = await signup_and_quiz(server, questions=QUESTIONS[:1])
    async with httpx.AsyncClient(
        base_url=server, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        uploaded = await http.post(
            f"/api/v1/quizzes/{quiz_id}/images", files={"file": ("a.png", PNG, "image/png")}
        )
        assert uploaded.status_code == 201, uploaded.text
        body = {"title": "Pic", "questions": [dict(QUESTIONS[0], image_key=uploaded.json()["key"])]}
        assert (await http.put(f"/api/v1/quizzes/{quiz_id}", json=body)).status_code == 200
        host = await Client().connect(server, token)
        pin = (await host.call("host_create", {"quiz_id": quiz_id}))["pin"]
        player = await Client().connect(server)
        assert (await player.call("join", {"pin": pin, "nickname": "Pia"}))["ok"]
        assert (await host.call("next"))["ok"]
        shown = await player.wait("question")
        assert "image_key" not in shown
        signed = urlsplit(shown["image_url"])
        fetched = await http.get(f"{signed.path}?{signed.query}", headers={"Authorization": ""})
        assert fetched.status_code == 200
        assert fetched.content == PNG
        await player.close()
        await host.close()


async def test_kicking_the_last_silent_player_closes_the_question(server: str) -> None:
    token, quiz_id = await signup_and_quiz(server, questions=QUESTIONS[:1])
    host = await Client().connect(server, token)
    pin = (await host.call("host_create", {"quiz_id": quiz_id}))["pin"]
    ann, bob = await Client().connect(server), await Client().connect(server)
    assert (await ann.call("join", {"pin": pin, "nickname": "Ann"}))["ok"]
    bob_no = (await bob.call("join", {"pin": pin, "nickname": "Bob"}))["player"]
    assert (await host.call("next"))["ok"]  # 10 s to answer
    await ann.wait("question")
    assert (await ann.call("answer", {"index": 0, "answer": 1}))["ok"]
    assert (await host.call("kick", {"player": bob_no}))["ok"]
    results = await ann.wait("question_results", timeout=3)  # long before the deadline
    assert results["distribution"]["answered"] == 1
    for c in (host, ann, bob):
        await c.close()


async def test_results_are_stored_once_without_finish(server: str) -> None:
    """The host leaves during the last question and never finishes: results are stored once."""
    token, quiz_id = await signup_and_quiz(server, questions=QUESTIONS[:2])
    host = await Client().connect(server, token)
    created = await host.call("host_create", {"quiz_id": quiz_id})
    ann, bob = await Client().connect(server), await Client().connect(server)
    assert (await ann.call("join", {"pin": created["pin"], "nickname": "Ann"}))["ok"]
    assert (await bob.call("join", {"pin": created["pin"], "nickname": "Bob"}))["ok"]
    for index in range(2):
        assert (await host.call("next"))["ok"]
        await ann.wait("question", index + 1)
        if index == 1:
            await host.close()  # gone for good: no finish will ever come
        for player, answer in ((ann, ANN[index]), (bob, BOB[index])):
            assert (await player.call("answer", {"index": index, "answer": answer}))["ok"]
        results = await ann.wait("question_results", index + 1)  # everyone answered
    assert results["final"]
    async with httpx.AsyncClient(
        base_url=server, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        stored = await stored_game(http, created["game_id"])
        assert {p["nickname"]: p["correct_count"] for p in stored["players"]} == {
            "Ann": 2,
            "Bob": 0,
        }
        ranking = {row[0]: row[1] for row in results["ranking"]}
        assert sorted(p["score"] for p in stored["players"]) == sorted(ranking.values())
        # The host comes back and finishes: the podium is sent, nothing is written twice.
        again = await Client().connect(server, token)
        assert (await again.call("host_join", {"pin": created["pin"]}))["ok"]
        assert (await again.call("finish"))["ok"]
        await ann.wait("game_over")
        report = await http.get(f"/api/v1/quizzes/games/{created['game_id']}/results.csv")
        rows = list(csv.DictReader(io.StringIO(report.text)))
        assert sorted((r["nickname"], r["question"]) for r in rows) == sorted(
            (name, q) for name in ("Ann", "Bob") for q in ("1", "2")
        )
        assert (await http.get(f"/api/v1/quizzes/{quiz_id}")).json()["play_count"] == 1
    for c in (again, ann, bob):
        await c.close()
