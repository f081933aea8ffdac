"""AI: routes each task to a provider, and falls back to the offline provider on failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import httpx
import structlog
from prometheus_client import Counter
from pydantic import BaseModel

from townhall.core.ai._offline import Offline
from townhall.core.ai._openai import OpenAICompatible
from townhall.core.ai._roboflow import Roboflow
from townhall.core.ai._types import AIError, AIResult, Detection
from townhall.core.config import ConfigurationError, Settings

M = TypeVar("M", bound=BaseModel)
Kind = Literal["llm", "vision"]

log = structlog.get_logger(__name__)

AI_CALLS = Counter("townhall_ai_calls_total", "AI provider calls", ["task", "provider", "outcome"])
_PROVIDERS: dict[Kind, frozenset[str]] = {
    "llm": frozenset({"openai", "offline"}),
    "vision": frozenset({"roboflow", "offline"}),
}
DETECT_TASK = "vision.detect"


class AI:
    """complete_json() and detect_objects() over the configured providers."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        source: Callable[[], Awaitable[Settings]] | None = None,
    ):
        timeout = httpx.Timeout(
            settings.ai_timeout_seconds, connect=min(5.0, settings.ai_timeout_seconds)
        )
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        # `source` gives the current settings (admin-stored keys over Settings, core/secrets).
        self._source = source
        self._configure(settings)
        self.offline = Offline()
        for task, spec in settings.ai_routes.items():
            provider = spec.partition(":")[0]
            if provider not in _PROVIDERS["llm"] | _PROVIDERS["vision"]:
                raise ConfigurationError(
                    f"TOWNHALL_AI_ROUTES[{task!r}] names unknown provider {provider!r}; "
                    "use openai[:model], roboflow[:model] or offline"
                )

    def _configure(self, settings: Settings) -> None:
        self._settings = settings
        self.llm = OpenAICompatible(self._client, settings) if settings.ai_base_url else None
        self.vision = Roboflow(self._client, settings) if settings.roboflow_api_key else None

    async def _refresh(self) -> None:
        """Rebuild the providers when the current settings are a new object (a key changed)."""
        if self._source is not None:
            current = await self._source()
            if current is not self._settings:
                self._configure(current)

    def route(self, task: str, kind: Kind) -> tuple[str, str | None]:
        """(provider, model override) for a task: exact route, then 'app.*', then '*'."""
        routes = self._settings.ai_routes
        app = task.split(".", 1)[0]
        spec = routes.get(task) or routes.get(f"{app}.*") or routes.get("*")
        configured = {"openai": self.llm is not None, "roboflow": self.vision is not None}
        if spec is not None:
            provider, _, model = spec.partition(":")
            if provider in _PROVIDERS[kind] and (provider == "offline" or configured[provider]):
                return provider, model or None
        default = "openai" if kind == "llm" else "roboflow"
        return (default, None) if configured[default] else ("offline", None)

    async def complete_json(
        self,
        prompt: str,
        schema: type[M],
        *,
        offline: Callable[[str], BaseModel],
        task: str,
        system: str | None = None,
    ) -> AIResult[M]:
        """A schema instance from the task's model, or from the offline heuristic."""
        await self._refresh()
        provider, model = self.route(task, "llm")
        reason: str | None = None
        if provider == "openai" and self.llm is not None:
            try:
                value, used_model = await self.llm.complete_json(
                    prompt, schema, system=system, model=model
                )
            except AIError as exc:
                AI_CALLS.labels(task, provider, "error").inc()
                if not self._settings.ai_fallback_offline:
                    raise
                reason = exc.message
                log.warning("ai.fallback_offline", task=task, provider=provider, reason=reason)
            else:
                AI_CALLS.labels(task, provider, "ok").inc()
                return AIResult(
                    value=value,
                    provider=provider,
                    model=used_model,
                    offline=False,
                    confidence=_confidence_of(value),
                )
        value = self.offline.complete_json(prompt, schema, offline)
        AI_CALLS.labels(task, "offline", "ok").inc()
        return AIResult(
            value=value,
            provider="offline",
            model=self.offline.model,
            offline=True,
            confidence=_confidence_of(value),
            details={"fallback_reason": reason} if reason else {},
        )

    async def detect_objects(
        self, image: bytes, *, task: str = DETECT_TASK
    ) -> AIResult[list[Detection]]:
        """Objects in an image from Roboflow, or a local offline analysis."""
        await self._refresh()
        provider, model = self.route(task, "vision")
        reason: str | None = None
        if provider == "roboflow" and self.vision is not None:
            try:
                detections, details, used_model = await self.vision.detect(image, model=model)
            except AIError as exc:
                AI_CALLS.labels(task, provider, "error").inc()
                if not self._settings.ai_fallback_offline:
                    raise
                reason = exc.message
                log.warning("ai.fallback_offline", task=task, provider=provider, reason=reason)
            else:
                AI_CALLS.labels(task, provider, "ok").inc()
                return AIResult(
                    value=detections,
                    provider=provider,
                    model=used_model,
                    offline=False,
                    confidence=max((d.confidence for d in detections), default=None),
                    details=details,
                )
        detections, details = await self.offline.detect(image)
        AI_CALLS.labels(task, "offline", "ok").inc()
        if reason:
            details["fallback_reason"] = reason
        return AIResult(
            value=detections,
            provider="offline",
            model=self.offline.model,
            offline=True,
            confidence=max((d.confidence for d in detections), default=None),
            details=details,
        )

    async def close(self) -> None:
        """Close the shared HTTP client."""
        await self._client.aclose()


def _confidence_of(value: BaseModel) -> float | None:
    confidence = getattr(value, "confidence", None)
    return float(confidence) if isinstance(confidence, int | float) else None


def build_ai(settings: Settings, *, source: Callable[[], Awaitable[Settings]] | None = None) -> AI:
    """The AI facade for these settings (offline only when nothing is configured)."""
    return AI(settings, source=source)
