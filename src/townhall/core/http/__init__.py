"""Outbound HTTP for every app: SSRF-guarded, size- and time-bounded fetches."""

from townhall.core.http.fetch import (
    USER_AGENT,
    FetchLimits,
    FetchResult,
    FetchTimeout,
    HTTPStatusError,
    ResponseTooLarge,
    TooManyRedirects,
    build_client,
    check_url,
    decode_html,
    fetch,
)
from townhall.core.http.guard import (
    BlockedDestination,
    FetchError,
    GuardedBackend,
    OutboundPolicy,
    is_public,
)

__all__ = [
    "USER_AGENT",
    "BlockedDestination",
    "FetchError",
    "FetchLimits",
    "FetchResult",
    "FetchTimeout",
    "GuardedBackend",
    "HTTPStatusError",
    "OutboundPolicy",
    "ResponseTooLarge",
    "TooManyRedirects",
    "build_client",
    "check_url",
    "decode_html",
    "fetch",
    "is_public",
]
