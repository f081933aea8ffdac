"""Bounded outbound HTTP: guarded connections, checked redirects, size and time limits."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urljoin

import httpcore
import httpx

from townhall.core.http.guard import (
    ALLOWED_SCHEMES,
    BlockedDestination,
    FetchError,
    GuardedBackend,
    OutboundPolicy,
)

USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0 Safari/537.36 townhall/0.1 (+https://github.com/townhall)"
)
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)


class ResponseTooLarge(FetchError):
    """The body is larger than the caller's limit."""

    retryable = False


class TooManyRedirects(FetchError):
    """More redirects than allowed."""

    retryable = False


class FetchTimeout(FetchError):
    """The server did not answer in time."""


class HTTPStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        # 4xx (except throttling/timeouts) will not change by asking again.
        self.retryable = status >= 500 or status in (408, 425, 429)


@dataclass(frozen=True)
class FetchLimits:
    """Limits of one outbound fetch."""

    max_bytes: int = 5 * 1024 * 1024
    timeout: float = 10.0
    connect_timeout: float = 5.0
    max_redirects: int = 5
    user_agent: str = USER_AGENT


@dataclass
class FetchResult:
    """A complete, size-checked response."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        value: str = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        msg = Message()
        msg["content-type"] = self.headers.get("content-type", "")
        value = msg.get_param("charset")
        return value.strip().lower() if isinstance(value, str) else None

    def text(self) -> str:
        """Decode the body: header charset, then <meta charset>, then UTF-8, then detection."""
        return decode_html(self.content, self.charset)


def decode_html(content: bytes, declared: str | None = None) -> str:
    """Decode HTML bytes with the best available charset evidence."""
    candidates: list[str] = []
    if declared:
        candidates.append(declared)
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for name in candidates:
        try:
            return content.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(content[:200_000]).best()
    if best is not None:
        return str(best)
    return content.decode("utf-8", "replace")


def build_client(policy: OutboundPolicy, limits: FetchLimits | None = None) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the SSRF guard."""
    limits = limits or FetchLimits()
    transport = httpx.AsyncHTTPTransport(retries=0)
    pool = transport._pool
    if not isinstance(pool, httpcore.AsyncConnectionPool):  # pragma: no cover
        raise RuntimeError("unexpected httpx transport pool")
    pool._network_backend = GuardedBackend(pool._network_backend, policy)
    return httpx.AsyncClient(
        transport=transport,
        # Proxies from the environment would bypass the address check.
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(limits.timeout, connect=limits.connect_timeout),
        headers={"User-Agent": limits.user_agent, "Accept-Language": "en,ko;q=0.8,*;q=0.5"},
    )


def check_url(url: str) -> httpx.URL:
    """Parse a URL an outbound request may use (http/https with a host), or raise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise BlockedDestination(f"not a valid URL: {url[:200]!r}") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise BlockedDestination(f"scheme {parsed.scheme!r} is not allowed")
    if not parsed.host:
        raise BlockedDestination("URL has no host")
    if parsed.userinfo:
        raise BlockedDestination("URLs with credentials are not fetched")
    return parsed


async def fetch(
    url: str,
    policy: OutboundPolicy,
    *,
    limits: FetchLimits | None = None,
    accept: str = "*/*",
    client: httpx.AsyncClient | None = None,
) -> FetchResult:
    """GET `url` following at most `max_redirects` checked redirects, within size and time."""
    limits = limits or FetchLimits()
    own = client is None
    http = client or build_client(policy, limits)
    try:
        async with asyncio.timeout(limits.timeout * 2):
            return await _fetch(http, url, limits, accept)
    except TimeoutError as exc:
        raise FetchTimeout(f"timed out fetching {url[:200]}") from exc
    finally:
        if own:
            await http.aclose()


async def _fetch(
    http: httpx.AsyncClient, url: str, limits: FetchLimits, accept: str
) -> FetchResult:
    redirects: list[str] = []
    current = url
    while True:
        target = check_url(current)
        try:
            async with http.stream("GET", target, headers={"Accept": accept}) as response:
                if response.status_code in REDIRECT_CODES and "location" in response.headers:
                    if len(redirects) >= limits.max_redirects:
                        raise TooManyRedirects(f"more than {limits.max_redirects} redirects")
                    redirects.append(current)
                    current = urljoin(str(response.url), response.headers["location"])
                    continue
                if response.status_code >= 400:
                    raise HTTPStatusError(
                        f"{target} answered HTTP {response.status_code}", response.status_code
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes:
                    raise ResponseTooLarge(
                        f"response of {declared} bytes exceeds the limit of {limits.max_bytes}"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limits.max_bytes:
                        raise ResponseTooLarge(
                            f"response exceeds the limit of {limits.max_bytes} bytes"
                        )
                return FetchResult(
                    url=str(response.url),
                    status_code=response.status_code,
                    headers=response.headers,
                    content=bytes(body),
                    redirects=redirects,
                )
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"timed out fetching {target}") from exc
        except httpx.TooManyRedirects as exc:  # pragma: no cover - we follow by hand
            raise TooManyRedirects(str(exc)) from exc
        except httpx.HTTPError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, BlockedDestination):
                raise cause from None
            raise FetchError(f"could not fetch {target}: {type(exc).__name__}: {exc}") from exc
