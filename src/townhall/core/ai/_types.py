"""Results and errors shared by every AI provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from townhall.core.errors import ServiceUnavailable, Unprocessable

V = TypeVar("V")


@dataclass(frozen=True)
class AIResult(Generic[V]):
    """A provider's answer and where it came from (offline=True: local heuristics, no network)."""

    value: V
    provider: str
    model: str
    offline: bool
    confidence: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels; (x, y) is the top-left corner."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Detection:
    """One detected object."""

    label: str
    confidence: float
    box: Box


class AIError(ServiceUnavailable):
    """A provider failed (unreachable, timed out, refused, or kept answering garbage)."""

    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class AIInvalidOutput(AIError):
    """The model's answer did not parse or validate against the schema, even after retries."""


class AIInvalidInput(Unprocessable):
    """The input cannot be analysed (e.g. bytes that are not a decodable image)."""
