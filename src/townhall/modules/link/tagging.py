"""AI tags (the seed's category, content_type, keywords, mood, difficulty), offline heuristic."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from townhall.modules.link.repository import tag_key


class LinkTags(BaseModel):
    """What the tagger answers (the seed's OpenAI response shape)."""

    category: str = Field(max_length=40)
    content_type: str = Field(max_length=40)
    keywords: list[str] = Field(default_factory=list, max_length=10)
    mood: str = Field(default="", max_length=40)
    difficulty: str = Field(default="", max_length=40)


@dataclass(frozen=True)
class TagContext:
    """The link as the tagger sees it."""

    url: str
    title: str
    description: str
    text: str
    media_type: str | None
    existing_tags: Sequence[str]
    user_tags: Sequence[str] = ()


_STOPWORDS_TEXT = """
a an and are as at be but by for from has have how i in into is it its of on or our that
the their this to was we what when where which who why will with you your can do does
not all any more most new one two use using used about after before over than then there
these those they them his her he she my me us also just like get got make made via vs
page site home www com http https html video watch youtube read article blog post posts
part guide 및 그리고 그 이 저 것 수 등 더 를 을 에 의 가 은 는 으로 에서 하는 있는 합니다 입니다
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
CATEGORIES: dict[str, tuple[str, ...]] = {
    "tech": (
        "react",
        "javascript",
        "python",
        "programming",
        "code",
        "software",
        "api",
        "developer",
        "web",
        "database",
        "linux",
        "rust",
        "typescript",
        "css",
        "html",
        "ai",
        "cloud",
        "docker",
        "kubernetes",
        "개발",
        "프로그래밍",
        "리액트",
        "코딩",
        "웹개발",
        "기술",
    ),
    "science": (
        "science",
        "research",
        "physics",
        "biology",
        "chemistry",
        "space",
        "study",
        "과학",
        "연구",
    ),
    "business": (
        "business",
        "startup",
        "market",
        "finance",
        "economy",
        "investing",
        "sales",
        "경제",
        "투자",
    ),
    "design": ("design", "ux", "ui", "typography", "figma", "color", "디자인"),
    "cooking": ("recipe", "cooking", "food", "bake", "kitchen", "요리", "레시피"),
    "travel": ("travel", "trip", "hotel", "flight", "city", "여행"),
    "music": ("music", "song", "album", "band", "concert", "음악"),
    "health": ("health", "fitness", "diet", "sleep", "medical", "건강", "운동"),
    "news": ("news", "breaking", "politics", "election", "government", "뉴스", "정치"),
    "education": (
        "learn",
        "course",
        "lecture",
        "education",
        "school",
        "university",
        "강의",
        "교육",
    ),
}
CONTENT_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "tutorial",
        (
            "tutorial",
            "how to",
            "how-to",
            "guide",
            "step by step",
            "learn",
            "튜토리얼",
            "강좌",
            "따라하기",
        ),
    ),
    ("documentation", ("docs", "documentation", "reference", "api reference", "문서")),
    ("recipe", ("recipe", "ingredients", "레시피")),
    ("news", ("breaking", "reported", "announced", "뉴스", "속보")),
    ("review", ("review", "vs", "comparison", "리뷰", "비교")),
)
ADVANCED = ("advanced", "internals", "deep dive", "architecture", "performance", "고급", "심화")
BEGINNER = (
    "beginner",
    "introduction",
    "intro",
    "basics",
    "getting started",
    "101",
    "입문",
    "기초",
    "초보",
)
_WORDS = re.compile(r"[^\W\d_][\w+#.\-]*[\w+#]|[^\W\d_]", re.UNICODE)


def build_prompt(ctx: TagContext) -> str:
    """The user message of the seed's tagging call, reusing the user's tags to avoid sprawl."""
    existing = ", ".join(ctx.existing_tags[:50]) or "(none)"
    return (
        "You tag bookmarks for a read-it-later app. Answer JSON with category, content_type, "
        "keywords (3-5 concrete 1-3 word tags), mood and difficulty. Prefer these existing tags "
        f"when they fit: {existing}. For error, CAPTCHA, cookie or login pages answer "
        "empty keywords.\n"
        f"URL: {ctx.url}\nTitle: {ctx.title}\nDescription: {ctx.description}\n"
        f"<TEXT_CONTENT>{ctx.text[:6000]}</TEXT_CONTENT>"
    )


def _words(text: str) -> list[str]:
    return [w.strip(".-").lower() for w in _WORDS.findall(text)]


def offline_tags(ctx: TagContext) -> LinkTags:
    """A deterministic keyword heuristic: runs without any AI provider."""
    head = f"{ctx.title} {ctx.title} {ctx.description}"
    body = f"{head} {ctx.text[:20000]}"
    lower = body.lower()
    words = _words(body)
    counts = Counter(w for w in words if len(w) > 1 and w not in STOPWORDS and not w.isdigit())
    for w in _words(head):
        if w in counts:
            counts[w] += 2  # words of the title and description say most
    existing = {tag_key(t): t for t in ctx.existing_tags}
    keywords: list[str] = []
    # The user's own tags first (at most 3): reuse beats inventing a near-duplicate.
    for name in ctx.user_tags:
        key = tag_key(name)
        found = key in counts or f" {name.lower()} " in f" {lower} "
        if key and found and name not in keywords and len(keywords) < 3:
            keywords.append(name)
    for word, _ in counts.most_common(20):
        if len(keywords) >= 5:
            break
        if tag_key(word) not in {tag_key(k) for k in keywords} and len(word) <= 40:
            keywords.append(existing.get(tag_key(word), word))
    scores = {
        cat: sum(counts.get(k, 0) + (3 if k in lower and " " in k else 0) for k in terms)
        for cat, terms in CATEGORIES.items()
    }
    category = max(scores, key=lambda c: scores[c]) if any(scores.values()) else "general"
    if ctx.media_type == "video":
        content_type = "video"
    else:
        content_type = next(
            (name for name, cues in CONTENT_TYPES if any(c in lower for c in cues)), "article"
        )
    difficulty = (
        "advanced"
        if any(c in lower for c in ADVANCED)
        else "beginner"
        if any(c in lower for c in BEGINNER)
        else "intermediate"
    )
    mood = {
        "tutorial": "practical",
        "documentation": "practical",
        "recipe": "practical",
        "news": "informative",
        "review": "critical",
        "video": "entertaining",
    }.get(content_type, "informative")
    return LinkTags(
        category=category,
        content_type=content_type,
        keywords=keywords[:5],
        mood=mood,
        difficulty=difficulty,
    )


def tag_names(result: LinkTags) -> list[tuple[str, str]]:
    """(name, field) pairs to store: keywords plus the seed's classification fields."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for field, values in (
        ("category", [result.category]),
        ("content_type", [result.content_type]),
        ("keyword", result.keywords),
        ("mood", [result.mood]),
        ("difficulty", [result.difficulty]),
    ):
        for value in values:
            name = " ".join(str(value).lstrip("#").split())[:100]
            key = tag_key(name)
            if key and key not in seen:
                seen.add(key)
                pairs.append((name, field))
    return pairs


def match_existing(name: str, existing: set[str] | dict[str, str]) -> str | None:
    """The user's tag key this name means (exact key, or singular/plural)."""
    key = tag_key(name)
    for candidate in (key, key.rstrip("s"), key + "s", key[:-2] if key.endswith("es") else key):
        if candidate in existing:
            return candidate
    return None
