"""OpenAI-compatible chat completions (OpenAI, OpenRouter, Ollama, vLLM) with JSON output."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from townhall.core.ai._http import post_with_retries
from townhall.core.ai._types import AIError, AIInvalidOutput
from townhall.core.config import Settings

M = TypeVar("M", bound=BaseModel)

DEFAULT_SYSTEM = "You are a careful assistant that answers with data, not prose."
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_json_reply(content: str, schema: type[M]) -> M:
    """Validate a model's reply (tolerating a ```json fence) against the schema."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    return schema.model_validate(json.loads(text))


def _schema_name(schema: type[BaseModel]) -> str:
    # OpenAI allows [a-zA-Z0-9_-]{1,64} here.
    return re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64] or "result"


class OpenAICompatible:
    """One OpenAI-compatible endpoint; falls back to json_object mode where json_schema fails."""

    name = "openai"

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self._client = client
        self._url = str(settings.ai_base_url).rstrip("/") + "/chat/completions"
        self._key = settings.ai_api_key.get_secret_value() if settings.ai_api_key else None
        self.model = settings.ai_model
        self._max_retries = settings.ai_max_retries
        self._backoff = settings.ai_retry_backoff_seconds
        self._max_invalid = max(1, settings.ai_max_invalid_outputs)
        # Learned once per process: many local servers reject json_schema response formats.
        self.json_schema_supported = True

    async def complete_json(
        self, prompt: str, schema: type[M], *, system: str | None, model: str | None
    ) -> tuple[M, str]:
        """The validated value and the model that produced it."""
        messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
        invalid = 0
        while True:
            data = await self._chat(messages, schema, system, model or self.model)
            used_model = str(data.get("model") or model or self.model)
            content, finish = _reply(data)
            try:
                if finish == "length":
                    raise ValueError("the reply was cut off (finish_reason=length)")
                return parse_json_reply(content, schema), used_model
            except (ValueError, ValidationError) as exc:
                invalid += 1
                problem = _short_error(exc)
                if invalid >= self._max_invalid:
                    raise AIInvalidOutput(
                        f"{self.name} model {used_model} returned no valid {schema.__name__} "
                        f"after {invalid} attempts: {problem}",
                        provider=self.name,
                    ) from exc
                messages += [
                    {"role": "assistant", "content": content[:4000]},
                    {
                        "role": "user",
                        "content": f"That reply was invalid ({problem}). Answer again with only "
                        "a JSON object that matches the schema.",
                    },
                ]

    async def _chat(
        self,
        messages: list[dict[str, str]],
        schema: type[BaseModel],
        system: str | None,
        model: str,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        while True:
            body = self._body(messages, schema, system, model)
            try:
                response = await post_with_retries(
                    self._client,
                    self._url,
                    provider=self.name,
                    max_retries=self._max_retries,
                    backoff=self._backoff,
                    secrets=[self._key],
                    json=body,
                    headers=headers,
                )
            except AIError as exc:
                if self.json_schema_supported and exc.status in (400, 422):
                    # Structured outputs unsupported here: ask for a JSON object instead.
                    self.json_schema_supported = False
                    continue
                raise
            try:
                data = response.json()
            except ValueError as exc:
                raise AIError(f"{self.name} answered with non-JSON", provider=self.name) from exc
            if not isinstance(data, dict):
                raise AIError(f"{self.name} answered with an unexpected body", provider=self.name)
            return data

    def _body(
        self,
        messages: list[dict[str, str]],
        schema: type[BaseModel],
        system: str | None,
        model: str,
    ) -> dict[str, Any]:
        json_schema = schema.model_json_schema()
        instructions = (system or DEFAULT_SYSTEM) + " Reply with one JSON object only."
        if self.json_schema_supported:
            response_format: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(schema),
                    "schema": json_schema,
                    "strict": False,
                },
            }
        else:
            response_format = {"type": "json_object"}
            instructions += " It must match this JSON Schema: " + json.dumps(json_schema)
        return {
            "model": model,
            "messages": [{"role": "system", "content": instructions}, *messages],
            "response_format": response_format,
            "temperature": 0,
        }


def _reply(data: dict[str, Any]) -> tuple[str, str | None]:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise AIError("openai answered without choices", provider="openai") from exc
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        refusal = message.get("refusal") if isinstance(message, dict) else None
        if refusal:
            raise AIError(f"openai model refused: {str(refusal)[:200]}", provider="openai")
        content = ""
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    return content, finish if isinstance(finish, str) else None


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "value"
        return f"{exc.error_count()} validation error(s), first at {where}: {first.get('msg')}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at position {exc.pos})"
    return str(exc)[:200]
