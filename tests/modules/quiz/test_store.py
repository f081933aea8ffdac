"""Scoring and state rules, identical on the memory store and the Redis Lua store."""

from __future__ import annotations

import asyncio

from townhall.modules.quiz.game import CORRECT, POLL, WRONG, kahoot_points, streak_bonus
from townhall.modules.quiz.store import (
    ENDED,
    RESULTS,
    GameInfo,
    GameStore,
    PlayerInfo,
    Session,
)


def test_kahoot_formula() -> None:
    assert kahoot_points(0, 20_000, 1000) == 1000
    assert kahoot_points(500, 20_000, 1000) == 1000  # under half a second: full points
    assert kahoot_points(10_000, 20_000, 1000) == 750
    assert kahoot_points(20_000, 20_000, 1000) == 500
    assert kahoot_points(99_999, 20_000, 2000) == 1000  # clamped to the limit
    assert kahoot_points(5_000, 20_000, 0) == 0
    assert kahoot_points(1_000, 20_000, 1000) == 975  # 0.975 * 1000


def test_streak_bonus_caps_at_500() -> None:
    assert [streak_bonus(s) for s in range(8)] == [0, 0, 100, 200, 300, 400, 500, 500]


async def _game(store: GameStore, pin: str = "123456", q_count: int = 5) -> GameInfo:
    info = GameInfo(pin, "g1", "q1", "host", "Demo", q_count)
    assert await store.create_game(info, [{"type": "single"}] * q_count)
    return info


async def _join(store: GameStore, pin: str, nick: str) -> int:
    status, no = await store.join(pin, nick.lower(), PlayerInfo(0, nick))
    assert status == "ok"
    return no


async def test_create_is_once_per_pin(store: GameStore) -> None:
    await _game(store)
    assert not await store.create_game(GameInfo("123456", "g2", "q", "h", "t", 1), [])
    game = await store.game("123456")
    assert game is not None
    assert game.game_id == "g1"
    assert await store.questions("123456") == [{"type": "single"}] * 5


async def test_join_unique_nickname(store: GameStore) -> None:
    await _game(store)
    assert await _join(store, "123456", "Ann") == 1
    assert await store.join("123456", "ann", PlayerInfo(0, "ANN")) == ("nickname_taken", 0)
    assert await _join(store, "123456", "Bob") == 2
    assert (await store.join("999999", "x", PlayerInfo(0, "x")))[0] == "no_game"
    game = await store.game("123456")
    assert game is not None
    assert game.player_count == 2
    assert {p.nickname for p in (await store.players("123456")).values()} == {"Ann", "Bob"}


async def test_answer_rules_and_scoring(store: GameStore) -> None:
    await _game(store)
    ann = await _join(store, "123456", "Ann")
    bob = await _join(store, "123456", "Bob")
    assert (await store.answer("123456", ann, 0, CORRECT, 1)).status == "not_open"
    status, opened, deadline = await store.open_question("123456", 0, 20_000, 1000)
    assert status == "ok"
    assert deadline - opened == 20_000
    assert (await store.open_question("123456", 0, 20_000, 1000))[0] == "bad_state"
    assert (await store.answer("123456", ann, 1, CORRECT, 1)).status == "wrong_question"

    first = await store.answer("123456", ann, 0, CORRECT, 1)
    assert first.status == "ok"
    assert first.points == 1000  # answered within half a second
    assert first.first
    assert first.bonus == 100  # first-correct bonus, no streak yet
    assert first.score == 1100
    assert (first.answered, first.players) == (1, 2)
    assert (await store.answer("123456", ann, 0, CORRECT, 1)).status == "already_answered"

    second = await store.answer("123456", bob, 0, CORRECT, 1)
    assert (second.first, second.bonus, second.score) == (False, 0, 1000)
    assert await store.close_question("123456", 0)
    assert not await store.close_question("123456", 0)
    assert (await store.game("123456")).status == RESULTS  # type: ignore[union-attr]
    assert (await store.answer("123456", bob, 0, CORRECT, 1)).status == "not_open"

    # Streak: Ann correct again (+100), Bob wrong (reset); then a poll leaves streaks alone.
    await store.open_question("123456", 1, 20_000, 2000)
    ann2 = await store.answer("123456", ann, 1, CORRECT, [0, 1])
    assert (ann2.points, ann2.streak, ann2.bonus) == (2000, 2, 200)  # streak 100 + first 100
    bob2 = await store.answer("123456", bob, 1, WRONG, [0])
    assert (bob2.points, bob2.bonus, bob2.streak) == (0, 0, 0)
    await store.close_question("123456", 1)
    await store.open_question("123456", 2, 20_000, 0)
    poll = await store.answer("123456", ann, 2, POLL, 0)
    assert (poll.points, poll.bonus, poll.streak) == (0, 0, 2)
    assert await store.streak_of("123456", ann) == 2
    assert await store.ranking("123456") == [(ann, 3300), (bob, 1000)]
    assert await store.rank_of("123456", bob) == (2, 1000)
    records = await store.answers("123456", 1)
    assert records[ann].answer == [0, 1]
    assert records[bob].kind == WRONG


async def test_late_answer_rejected(store: GameStore) -> None:
    await _game(store)
    ann = await _join(store, "123456", "Ann")
    await store.open_question("123456", 0, 50, 1000)
    await asyncio.sleep(0.12)
    assert (await store.answer("123456", ann, 0, CORRECT, 1)).status == "too_late"
    assert await store.overdue(0) == [("123456", 0)]
    assert await store.close_question("123456", 0)
    assert await store.overdue(0) == []


async def test_kick_and_finish(store: GameStore) -> None:
    await _game(store, q_count=1)
    ann = await _join(store, "123456", "Ann")
    await _join(store, "123456", "Bob")
    assert await store.kick("123456", ann)
    assert not await store.kick("123456", ann)
    await store.open_question("123456", 0, 10_000, 1000)
    assert (await store.answer("123456", ann, 0, CORRECT, 0)).status == "kicked"
    assert not await store.finish("123456")  # a question is open
    assert (await store.open_question("123456", 1, 10_000, 1000))[0] == "bad_state"
    await store.close_question("123456", 0)
    assert (await store.open_question("123456", 1, 10_000, 1000))[0] == "no_more_questions"
    assert await store.finish("123456")
    assert not await store.finish("123456")
    game = await store.game("123456")
    assert game is not None
    assert (game.status, game.player_count) == (ENDED, 1)
    assert (await store.join("123456", "cy", PlayerInfo(0, "Cy")))[0] == "game_over"


async def test_sessions_and_mute(store: GameStore) -> None:
    await _game(store)
    ann = await _join(store, "123456", "Ann")
    await store.save_session("tok", Session("123456", ann, {"nick": "Ann"}))
    loaded = await store.load_session("tok")
    assert loaded is not None
    assert (loaded.pin, loaded.no) == ("123456", ann)
    assert await store.load_session("nope") is None
    await store.set_muted("123456", ann, True)
    await store.set_sid("123456", ann, "sid-1")
    player = await store.player("123456", ann)
    assert player is not None
    assert (player.muted, player.sid) == (True, "sid-1")


async def test_concurrent_answers_score_once_with_one_winner(store: GameStore) -> None:
    """500 players answering at once, each twice: one first-correct, each scored once."""
    await _game(store)
    players = [await _join(store, "123456", f"p{i}") for i in range(500)]
    await store.open_question("123456", 0, 30_000, 1000)
    outcomes = await asyncio.gather(
        *[store.answer("123456", no, 0, CORRECT, 0) for no in players for _ in range(2)]
    )
    accepted = [o for o in outcomes if o.status == "ok"]
    assert len(accepted) == 500
    assert sum(o.first for o in accepted) == 1
    assert sum(o.status == "already_answered" for o in outcomes) == 500
    assert max(o.answered for o in accepted) == 500
    ranking = await store.ranking("123456")
    assert len(ranking) == 500
    assert all(500 <= score <= 1100 for _, score in ranking)  # scored once each
    assert len(await store.answers("123456", 0)) == 500
    closes = await asyncio.gather(*[store.close_question("123456", 0) for _ in range(50)])
    assert sum(closes) == 1


async def test_store_points_follow_the_python_formula(store: GameStore) -> None:
    """The Lua script and kahoot_points agree on a slow answer (elapsed measured by the store)."""
    await _game(store)
    ann = await _join(store, "123456", "Ann")
    await store.open_question("123456", 0, 3_000, 1000)
    await asyncio.sleep(0.6)
    outcome = await store.answer("123456", ann, 0, CORRECT, 0)
    assert outcome.elapsed_ms > 500
    assert outcome.points == kahoot_points(outcome.elapsed_ms, 3_000, 1000)
    assert outcome.points < 1000


async def test_a_host_is_absent_once_no_worker_has_seen_it_for_long_enough(
    store: GameStore,
) -> None:
    await store.host_seen(["111111", "222222"])
    assert await store.absent_hosts(60_000) == []
    await asyncio.sleep(0.05)
    await store.host_seen(["222222"])  # still connected somewhere
    assert await store.absent_hosts(40) == ["111111"]
    await store.forget_host("111111")
    assert await store.absent_hosts(0) == ["222222"]
    await store.host_seen([])  # a worker hosting nothing has nothing to note
