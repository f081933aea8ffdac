"""Request and response bodies of the quiz API (inputs forbid unknown fields)."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

QuestionType = Literal[
    "single", "multiple", "true_false", "type_answer", "slider", "poll", "ordering"
]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=40)
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Only keys the image upload hands out (quiz/<quiz id>/<random>): a free-form key would make
# the API sign URLs for any blob in the store, including other apps' private files.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
IMAGE_KEY_PATTERN = rf"^quiz/{_UUID}/[0-9a-f]{{32}}$"
ImageKey = Annotated[str, StringConstraints(pattern=IMAGE_KEY_PATTERN)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptionIn(Input):
    text: ShortText
    correct: bool = False


class QuestionIn(Input):
    """One question in the editor's flat shape; only the fields of its type are kept."""

    type: QuestionType
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    image_key: ImageKey | None = None
    time_limit: int = Field(20, ge=5, le=240)
    points: Literal[0, 1000, 2000] = 1000
    options: list[OptionIn] | None = None
    accepted: list[ShortText] | None = None
    case_sensitive: bool = False
    min: float | None = None
    max: float | None = None
    step: float | None = None
    correct: float | None = None
    tolerance: float = Field(0, ge=0)
    items: list[ShortText] | None = None

    @model_validator(mode="after")
    def _check_type(self) -> QuestionIn:
        kind = self.type
        if kind in ("single", "multiple", "true_false", "poll"):
            options = self.options or []
            wanted = (2, 2) if kind == "true_false" else (2, 6)
            if not wanted[0] <= len(options) <= wanted[1]:
                raise ValueError(f"{kind} needs {wanted[0]} to {wanted[1]} options")
            correct = sum(o.correct for o in options)
            if kind in ("single", "true_false") and correct != 1:
                raise ValueError(f"{kind} needs exactly one correct option")
            if kind == "multiple" and correct < 1:
                raise ValueError("multiple needs at least one correct option")
            if kind == "poll":
                self.options = [OptionIn(text=o.text) for o in options]
                self.points = 0
        elif kind == "type_answer":
            if not self.accepted or len(self.accepted) > 10:
                raise ValueError("type_answer needs 1 to 10 accepted answers")
        elif kind == "slider":
            values = (self.min, self.max, self.step, self.correct)
            if any(v is None or not math.isfinite(v) for v in values):
                raise ValueError("slider needs finite min, max, step and correct")
            low, high, step, right = (float(v or 0) for v in values)
            if not (low < high and step > 0 and low <= right <= high):
                raise ValueError("slider needs min < max, step > 0 and min <= correct <= max")
            if (high - low) / step > 10_000:
                raise ValueError("slider has too many steps")
        elif kind == "ordering" and not (self.items and 2 <= len(self.items) <= 8):
            raise ValueError("ordering needs 2 to 8 items")
        return self

    def spec(self) -> dict[str, Any]:
        """The type-specific part stored in Question.spec."""
        if self.type in ("single", "multiple", "true_false", "poll"):
            return {"options": [o.model_dump() for o in self.options or []]}
        if self.type == "type_answer":
            return {"accepted": list(self.accepted or []), "case_sensitive": self.case_sensitive}
        if self.type == "slider":
            return {
                "min": self.min,
                "max": self.max,
                "step": self.step,
                "correct": self.correct,
                "tolerance": self.tolerance,
            }
        return {"items": list(self.items or [])}


class QuizIn(Input):
    """A whole quiz as the editor saves it; also the JSON import/export format."""

    title: ShortText
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    is_public: bool = False
    cover_image_key: ImageKey | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=10)
    questions: list[QuestionIn] = Field(default_factory=list, max_length=100)


class QuizImport(QuizIn):
    format: Literal["townhall-quiz/1"] = "townhall-quiz/1"


class QuestionOut(BaseModel):
    id: uuid.UUID
    position: int
    type: str
    text: str
    image_key: str | None
    image_url: str | None = None
    time_limit: int
    points: int
    options: list[OptionIn] | None = None
    accepted: list[str] | None = None
    case_sensitive: bool | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    correct: float | None = None
    tolerance: float | None = None
    items: list[str] | None = None


class QuizSummary(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    owner_name: str = ""
    title: str
    description: str
    is_public: bool
    is_hidden: bool
    tags: list[str]
    play_count: int
    like_count: int
    question_count: int
    updated_at: datetime


class QuizOut(QuizSummary):
    cover_image_key: str | None
    liked: bool = False
    questions: list[QuestionOut]


class QuizPage(BaseModel):
    items: list[QuizSummary]
    total: int


class ReorderIn(Input):
    order: list[uuid.UUID] = Field(max_length=100)


class ImageOut(BaseModel):
    key: str
    url: str


class UploadUrlIn(Input):
    content_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    # The file's size as the browser reports it: refused early when over the limit.
    size: int | None = Field(None, ge=1)


class UploadConfirmIn(Input):
    """The key a presigned PUT wrote to: checked, then usable as an image_key."""

    key: ImageKey


class UploadUrlOut(BaseModel):
    """A presigned PUT: send the bytes with this method, URL and headers, then save the key."""

    key: str
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    max_bytes: int
    expires_in: int


class CommentIn(Input):
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    parent_id: uuid.UUID | None = None


class CommentEdit(Input):
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class CommentOut(BaseModel):
    id: uuid.UUID
    quiz_id: uuid.UUID
    author_id: uuid.UUID
    author_name: str
    parent_id: uuid.UUID | None
    body: str
    is_deleted: bool
    edited: bool
    created_at: datetime
    replies: list[CommentOut] = Field(default_factory=list)


class LikeOut(BaseModel):
    liked: bool
    like_count: int


class ReportIn(Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
    comment_id: uuid.UUID | None = None


class ReportOut(BaseModel):
    id: uuid.UUID
    quiz_id: uuid.UUID
    quiz_title: str = ""
    comment_id: uuid.UUID | None
    comment_body: str | None = None
    reporter_id: uuid.UUID
    reason: str
    status: str
    resolution: str | None
    created_at: datetime


class ResolveIn(Input):
    action: Literal["dismiss", "hide_quiz", "delete_comment"]


class GameSummary(BaseModel):
    id: uuid.UUID
    quiz_id: uuid.UUID
    quiz_title: str
    pin: str
    status: str
    player_count: int
    question_count: int
    created_at: datetime
    ended_at: datetime | None


class PlayerResult(BaseModel):
    number: int
    nickname: str
    score: int
    rank: int
    correct_count: int


class GameResults(GameSummary):
    players: list[PlayerResult]


class PlayedGame(GameSummary):
    me: PlayerResult
