"""Offline text classifier (Korean and English keywords) and the analysis schema."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

# category code -> keywords; the demo categories use these codes.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "pothole": ("pothole", "road damage", "asphalt", "crack", "도로", "포트홀", "파손", "균열"),
    "streetlight": ("streetlight", "street light", "lamp", "light out", "가로등", "조명", "전등"),
    "trash": ("trash", "garbage", "litter", "waste", "dumping", "쓰레기", "무단투기", "폐기물"),
    "graffiti": ("graffiti", "vandal", "spray paint", "낙서", "스프레이"),
    "water": ("water leak", "leak", "pipe", "flood", "sewer", "누수", "수도", "하수", "침수"),
    "traffic": ("traffic light", "signal", "sign", "신호등", "표지판", "교통"),
    "parking": ("illegal parking", "parked", "불법주차", "주차"),
    "tree": ("fallen tree", "tree", "branch", "나무", "가지", "쓰러진"),
}
URGENT = (
    "danger",
    "urgent",
    "accident",
    "injur",
    "emergency",
    "flood",
    "fire",
    "위험",
    "긴급",
    "사고",
    "부상",
    "화재",
)
MINOR = ("minor", "small", "cosmetic", "작은", "경미")
# object-detector labels -> category code
LABELS: dict[str, str] = {
    "pothole": "pothole",
    "crack": "pothole",
    "street light": "streetlight",
    "streetlight": "streetlight",
    "trash": "trash",
    "garbage": "trash",
    "bottle": "trash",
    "graffiti": "graffiti",
    "traffic light": "traffic",
    "stop sign": "traffic",
    "car": "parking",
    "tree": "tree",
}


class Analysis(BaseModel):
    """What the text model answers."""

    category: str | None = Field(default=None, max_length=60)
    category_confidence: float = Field(ge=0, le=1)
    priority: int = Field(ge=1, le=5)
    priority_confidence: float = Field(ge=0, le=1)
    summary: str = Field(max_length=300)
    summary_confidence: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)


def _count(text: str, words: tuple[str, ...]) -> int:
    return sum(1 for w in words if w in text)


def classify_text(text: str, labels: list[str] | None = None) -> Analysis:
    """Keyword scores over the report text plus detector labels."""
    low = text.lower()
    scores = {code: float(_count(low, words)) for code, words in KEYWORDS.items()}
    for label in labels or []:
        code = LABELS.get(label.lower())
        if code:
            scores[code] += 1.5
    best = max(scores, key=lambda c: scores[c])
    top = scores[best]
    total = sum(scores.values())
    if top <= 0:
        category, cat_conf = None, 0.0
    else:
        # share of the evidence, scaled up with the amount of evidence
        cat_conf = round(min(0.95, (top / total) * min(1.0, 0.45 + 0.25 * top)), 2)
        category = best
    urgent = _count(low, URGENT)
    priority = 5 if urgent >= 2 else 4 if urgent == 1 else 2 if _count(low, MINOR) else 3
    prio_conf = 0.7 if urgent or priority == 2 else 0.4
    first = re.split(r"(?<=[.!?。])\s|\n", text.strip(), maxsplit=1)[0] if text.strip() else ""
    summary = (first[:117] + "...") if len(first) > 120 else first
    return Analysis(
        category=category,
        category_confidence=cat_conf,
        priority=priority,
        priority_confidence=prio_conf,
        summary=summary or "(no description)",
        summary_confidence=0.5 if summary else 0.1,
        confidence=cat_conf,
    )


def offline_from_prompt(prompt: str) -> Analysis:
    """The offline provider's heuristic: the prompt carries the text and the detector labels."""
    labels: list[str] = []
    match = re.search(r"^Detected objects: (.*)$", prompt, re.MULTILINE)
    if match and match.group(1) != "none":
        labels = [x.strip() for x in match.group(1).split(",") if x.strip()]
    text = prompt.split("\n---\n", 1)[1] if "\n---\n" in prompt else prompt
    return classify_text(text, labels)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of word and character-bigram sets (works for Korean without spaces)."""

    def grams(s: str) -> set[str]:
        s = re.sub(r"\s+", " ", s.lower()).strip()
        words = set(re.findall(r"\w+", s))
        compact = s.replace(" ", "")
        return words | {compact[i : i + 2] for i in range(len(compact) - 1)}

    ga, gb = grams(a), grams(b)
    if not ga or not gb:
        return 0.0
    return len(ga & gb) / len(ga | gb)
