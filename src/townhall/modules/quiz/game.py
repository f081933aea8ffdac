"""Pure game rules: question keys, answer checking, Kahoot scoring, distributions, nicknames."""

from __future__ import annotations

import math
import random
import re
import secrets
import unicodedata
from collections import Counter
from typing import Any

QUESTION_TYPES = ("single", "multiple", "true_false", "type_answer", "slider", "poll", "ordering")
CHOICE_TYPES = ("single", "multiple", "true_false", "poll")
POINTS_ALLOWED = (0, 1000, 2000)

# Kahoot: correct answers under half a second score the full points.
FULL_POINTS_MS = 500
STREAK_STEP = 100
STREAK_MAX = 500

# Outcome kinds recorded per answer (and the Lua script's `kind` argument).
CORRECT = "c"
WRONG = "w"
POLL = "p"


class AnswerInvalid(ValueError):
    """An answer payload that does not fit the question (wrong type, out of range)."""


def kahoot_points(elapsed_ms: int, limit_ms: int, points: int) -> int:
    """round((1 - (t/limit)/2) * points), full points under 0.5 s; mirrored in answer.lua."""
    if points <= 0:
        return 0
    if elapsed_ms <= FULL_POINTS_MS:
        return points
    t = min(max(elapsed_ms, 0), limit_ms)
    # floor(x + 0.5) instead of round(): Lua has no banker's rounding, both stores must agree.
    return math.floor((1 - (t / limit_ms) / 2) * points + 0.5)


def streak_bonus(streak: int) -> int:
    """+100 per consecutive correct answer after the first, capped at +500."""
    return min(STREAK_STEP * max(streak - 1, 0), STREAK_MAX)


def new_pin() -> str:
    """A random 6-digit game PIN (no leading zero, so it reads as a number)."""
    return str(secrets.randbelow(900_000) + 100_000)


def normalise_text(value: str, *, case_sensitive: bool = False) -> str:
    """Compare typed answers leniently: width, accents, case, punctuation and spacing."""
    text = unicodedata.normalize("NFKD", value)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    if not case_sensitive:
        text = text.casefold()
    text = re.sub(r"[^\w\s]", "", text)
    return " ".join(text.split())


# A deliberately small list: it stops the obvious, not the creative.
_BLOCKED = {
    "fuck",
    "shit",
    "bitch",
    "cunt",
    "asshole",
    "nigger",
    "faggot",
    "whore",
    "slut",
    "dick",
    "pussy",
    "nazi",
    "hitler",
    "rape",
    "penis",
    "vagina",
}
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)


def is_profane(text: str) -> bool:
    """True when a nickname or chat line contains a blocked word (also in leetspeak)."""
    flat = normalise_text(text.translate(_LEET)).replace(" ", "").replace("_", "")
    return any(word in flat for word in _BLOCKED)


def nickname_key(nickname: str) -> str:
    """The uniqueness key of a nickname: 'Ann', 'ann ' and 'ＡＮＮ' are the same player."""
    return normalise_text(nickname)


def clean_nickname(raw: Any) -> str:
    """Validate a nickname; raises ValueError with a message for the player."""
    if not isinstance(raw, str):
        raise ValueError("nickname must be text")
    nickname = " ".join(raw.split())
    if not 1 <= len(nickname) <= 20:
        raise ValueError("nickname must have 1 to 20 characters")
    if not nickname_key(nickname):
        raise ValueError("nickname needs letters or digits")
    if any(unicodedata.category(ch).startswith("C") for ch in nickname):
        raise ValueError("nickname has control characters")
    if is_profane(nickname):
        raise ValueError("please choose another nickname")
    return nickname


def runtime_question(
    question_id: str,
    qtype: str,
    text: str,
    spec: dict[str, Any],
    *,
    time_limit: int,
    points: int,
    image_key: str | None,
    seed: str,
) -> dict[str, Any]:
    """The question as a game holds it: public fields plus the private answer key."""
    public: dict[str, Any] = {
        "id": question_id,
        "type": qtype,
        "text": text,
        "limit_ms": time_limit * 1000,
        "points": 0 if qtype == "poll" else points,
        "image_key": image_key,
    }
    key: dict[str, Any] = {}
    if qtype in CHOICE_TYPES:
        options = spec.get("options", [])
        public["options"] = [o["text"] for o in options]
        key["correct"] = [i for i, o in enumerate(options) if o.get("correct")]
    elif qtype == "type_answer":
        sensitive = bool(spec.get("case_sensitive", False))
        key["accepted"] = [normalise_text(a, case_sensitive=sensitive) for a in spec["accepted"]]
        key["case_sensitive"] = sensitive
        key["display"] = spec["accepted"][0]
    elif qtype == "slider":
        for name in ("min", "max", "step"):
            public[name] = spec[name]
        key["correct"] = spec["correct"]
        key["tolerance"] = spec.get("tolerance", 0)
    elif qtype == "ordering":
        items = list(spec["items"])
        order = list(range(len(items)))
        # Shuffled per game and question, never left in the correct order.
        rng = random.Random(f"{seed}:{question_id}")
        while len(order) > 1 and order == sorted(order):
            rng.shuffle(order)
        public["items"] = [items[i] for i in order]
        key["display"] = order  # display position -> original position
    public["key"] = key
    return public


def public_question(question: dict[str, Any]) -> dict[str, Any]:
    """What players may see before answering."""
    return {k: v for k, v in question.items() if k not in ("key", "image_key")}


def check_answer(question: dict[str, Any], answer: Any) -> tuple[str, Any]:
    """(kind, canonical answer): kind is CORRECT, WRONG or POLL; raises AnswerInvalid."""
    qtype = question["type"]
    key = question["key"]
    if qtype in ("single", "true_false", "poll"):
        choice = _index(answer, len(question["options"]))
        if qtype == "poll":
            return POLL, choice
        return (CORRECT if choice in key["correct"] else WRONG), choice
    if qtype == "multiple":
        if not isinstance(answer, list) or not answer:
            raise AnswerInvalid("choose at least one option")
        choices = sorted({_index(a, len(question["options"])) for a in answer})
        return (CORRECT if choices == sorted(key["correct"]) else WRONG), choices
    if qtype == "type_answer":
        if not isinstance(answer, str) or not 1 <= len(answer) <= 200:
            raise AnswerInvalid("type an answer of 1 to 200 characters")
        typed = normalise_text(answer, case_sensitive=key["case_sensitive"])
        return (CORRECT if typed in key["accepted"] else WRONG), answer.strip()[:200]
    if qtype == "slider":
        if isinstance(answer, bool) or not isinstance(answer, int | float):
            raise AnswerInvalid("answer with a number")
        try:
            value = float(answer)
        except OverflowError as exc:  # an int beyond any float (JSON ints are unbounded)
            raise AnswerInvalid("number out of range") from exc
        if not math.isfinite(value) or not question["min"] <= value <= question["max"]:
            raise AnswerInvalid("number out of range")
        hit = abs(value - float(key["correct"])) <= float(key["tolerance"])
        return (CORRECT if hit else WRONG), value
    if qtype == "ordering":
        size = len(question["items"])
        if not isinstance(answer, list) or len(answer) != size:
            raise AnswerInvalid(f"order all {size} items")
        picked = [_index(a, size) for a in answer]
        if len(set(picked)) != size:
            raise AnswerInvalid("each item once")
        original = [key["display"][i] for i in picked]
        return (CORRECT if original == sorted(original) else WRONG), picked
    raise AnswerInvalid("unknown question type")


def _index(value: Any, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise AnswerInvalid(f"choose an option from 0 to {size - 1}")
    return value


def correct_answer(question: dict[str, Any]) -> Any:
    """The answer revealed after the question closes."""
    qtype = question["type"]
    key = question["key"]
    if qtype == "poll":
        return None
    if qtype in CHOICE_TYPES:
        return key["correct"]
    if qtype == "type_answer":
        return key["display"]
    if qtype == "slider":
        return {"value": key["correct"], "tolerance": key["tolerance"]}
    # ordering: the display positions in the right order
    display: list[int] = key["display"]
    return sorted(range(len(display)), key=lambda i: display[i])


def distribution(question: dict[str, Any], answers: list[tuple[str, Any]]) -> dict[str, Any]:
    """Counts for the results chart from (kind, answer) pairs."""
    qtype = question["type"]
    correct = sum(1 for kind, _ in answers if kind == CORRECT)
    result: dict[str, Any] = {"answered": len(answers), "correct": correct}
    if qtype in CHOICE_TYPES:
        counts = [0] * len(question["options"])
        for _, answer in answers:
            for choice in answer if isinstance(answer, list) else [answer]:
                if isinstance(choice, int) and 0 <= choice < len(counts):
                    counts[choice] += 1
        result["counts"] = counts
    elif qtype in ("type_answer", "slider"):
        values = Counter(
            normalise_text(str(a)) if qtype == "type_answer" else a for _, a in answers
        )
        result["top"] = [[value, n] for value, n in values.most_common(10)]
    else:
        result["counts"] = [correct, len(answers) - correct]
    return result
