"""POST with retries and exponential backoff on 429/5xx, timeouts and connection errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from typing import Any

import httpx

from townhall.core.ai._types import AIError

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_DELAY_SECONDS = 30.0


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Remove API keys from text that may end up in logs or error messages."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:200]
        return str(error)[:200]
    return str(body)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(MAX_DELAY_SECONDS, max(0.0, float(value)))
    except ValueError:
        return None


async def post_with_retries(
    client: httpx.AsyncClient,
    url: str,
    *,
    provider: str,
    max_retries: int,
    backoff: float,
    secrets: Iterable[str | None] = (),
    **kwargs: Any,
) -> httpx.Response:
    """POST, retrying transient failures; raise AIError with a clear message otherwise."""
    hidden = list(secrets)
    for attempt in range(max_retries + 1):
        wait: float | None = None
        try:
            response = await client.post(url, **kwargs)
        except httpx.TimeoutException as exc:
            error = AIError(f"{provider} timed out ({type(exc).__name__})", provider=provider)
        except httpx.TransportError as exc:
            detail = redact(f"{type(exc).__name__}: {exc}", hidden)[:200]
            error = AIError(f"{provider} is unreachable: {detail}", provider=provider)
        else:
            if response.status_code < 400:
                return response
            detail = redact(_error_detail(response), hidden)
            error = AIError(
                f"{provider} answered HTTP {response.status_code}: {detail}",
                provider=provider,
                status=response.status_code,
            )
            if response.status_code not in RETRY_STATUSES:
                raise error
            wait = _retry_after(response)
        if attempt == max_retries:
            raise error
        if wait is None:
            # Full jitter keeps many workers from retrying in lockstep.
            wait = min(MAX_DELAY_SECONDS, backoff * 2**attempt) * (0.5 + random.random() / 2)
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
