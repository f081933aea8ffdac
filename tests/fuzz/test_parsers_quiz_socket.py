"""Socket.IO payloads of /quiz: every rejection is a GameError/AppError ack, never "internal"."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.app import make_settings
from tests.fuzz.strategies import fuzz, json_values, run, texts
from townhall.modules.quiz import game as rules
from townhall.modules.quiz.realtime import NAMESPACE, Conn, QuizServer
from townhall.modules.quiz.store import GameInfo

PIN = "123456"
SETTINGS = make_settings(Path(tempfile.gettempdir()) / "townhall-fuzz", quiz_events_per_second=1000)
SPECS: list[tuple[str, dict[str, Any]]] = [
    ("single", {"options": [{"text": "a", "correct": True}, {"text": "b"}]}),
    ("multiple", {"options": [{"text": "a", "correct": True}, {"text": "b", "correct": True}]}),
    ("true_false", {"options": [{"text": "True"}, {"text": "False", "correct": True}]}),
    ("type_answer", {"accepted": ["Paris", "paris "], "case_sensitive": False}),
    ("slider", {"min": 0, "max": 100, "step": 1, "correct": 50, "tolerance": 2}),
    ("poll", {"options": [{"text": "x"}, {"text": "y"}, {"text": "z"}]}),
    ("ordering", {"items": ["1", "2", "3"]}),
]
QUESTIONS = [
    rules.runtime_question(
        f"q{n}", kind, "?", spec, time_limit=20, points=1000, image_key=None, seed="fuzz"
    )
    for n, (kind, spec) in enumerate(SPECS)
]

numbers = st.integers(-2, 8) | st.sampled_from([2**63, -(2**63), 10**400 // 10**90]) | st.floats()
answers = numbers | st.lists(numbers, max_size=4) | st.booleans() | texts | json_values
payload_values = {
    "pin": st.sampled_from([PIN, " 123456 ", "000000", "12345", "１２３４５６"]) | json_values,
    "nickname": st.sampled_from(["Ann", " Bob ", "sh1t", "\u200b", "a" * 21]) | texts | json_values,
    "index": numbers | json_values,
    "answer": answers,
    "text": texts | json_values,
    "token": texts | json_values,
    "player": numbers | json_values,
    "muted": json_values,
    "quiz_id": st.uuids().map(str) | json_values,
}
payloads = st.none() | json_values | st.fixed_dictionaries({}, optional=payload_values)
# host_create is left out: it needs the database (the quiz); everything else runs on the store.
events = st.sampled_from(
    [
        "host_join",
        "next",
        "skip",
        "finish",
        "kick",
        "mute",
        "join",
        "rejoin",
        "answer",
        "chat",
        "me",
        "sync",
    ]
)
sids = st.sampled_from(["host", "p1", "p2"])
# Most runs start with a player in and the host past n questions: answers reach each type.
openings = st.integers(-1, len(QUESTIONS)).map(
    lambda n: (
        []
        if n < 0
        else [("host", "host_join", {"pin": PIN}), ("p1", "join", {"pin": PIN, "nickname": "Ann"})]
        + [("host", "next", {})] * n
    )
)


class _Server(QuizServer):
    async def _persist(self, game: GameInfo) -> None:
        return None  # results go to the database, which these runs do without


async def _play(script: list[tuple[str, str, Any]]) -> list[Any]:
    server = _Server(SETTINGS)
    info = GameInfo(PIN, str(uuid.uuid4()), str(uuid.uuid4()), "host", "Fuzz", len(QUESTIONS))
    assert await server.store.create_game(info, QUESTIONS)
    sids = {}
    for name in ("host", "p1", "p2"):
        # Known to the Socket.IO manager, as after a handshake (no transport: emits go nowhere).
        sids[name] = await server.sio.manager.connect(f"eio-{name}", NAMESPACE)
        server.conns[sids[name]] = Conn(user_id=name, tokens=2000)
    acks = []
    for name, event, data in script:
        handler = server.sio.handlers[NAMESPACE][event]
        acks.append(await handler(sids[name], data))
    return acks


@given(openings, st.lists(st.tuples(sids, events, payloads), min_size=1, max_size=5))
@fuzz
def test_events(opening: list[tuple[str, str, Any]], script: list[tuple[str, str, Any]]) -> None:
    for ack in run(_play(opening + script)):
        assert isinstance(ack, dict)
        assert ack.get("error") != "internal", ack


@given(payload_values["nickname"])
@fuzz
def test_clean_nickname(raw: Any) -> None:
    try:
        nickname = rules.clean_nickname(raw)
    except ValueError:
        return
    assert 1 <= len(nickname) <= 20


@given(st.sampled_from(QUESTIONS), answers)
@fuzz
def test_check_answer(question: dict[str, Any], answer: Any) -> None:
    try:
        kind, _ = rules.check_answer(question, answer)
    except rules.AnswerInvalid:
        return
    assert kind in (rules.CORRECT, rules.WRONG, rules.POLL)
