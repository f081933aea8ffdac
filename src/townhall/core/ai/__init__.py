"""AI providers: OpenAI-compatible JSON completions, Roboflow detection, offline by default."""

from townhall.core.ai._offline import OFFLINE_MODEL
from townhall.core.ai._openai import parse_json_reply
from townhall.core.ai._service import AI, DETECT_TASK, build_ai
from townhall.core.ai._types import (
    AIError,
    AIInvalidInput,
    AIInvalidOutput,
    AIResult,
    Box,
    Detection,
)

__all__ = [
    "AI",
    "DETECT_TASK",
    "OFFLINE_MODEL",
    "AIError",
    "AIInvalidInput",
    "AIInvalidOutput",
    "AIResult",
    "Box",
    "Detection",
    "build_ai",
    "parse_json_reply",
]
