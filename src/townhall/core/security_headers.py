"""Security headers on every HTTP response: CSP with a per-request script nonce, HSTS, nosniff."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from townhall.core.config import Settings

NONCE_KEY = "csp_nonce"  # request.state.csp_nonce: templates put it on their inline scripts
HSTS = b"max-age=31536000; includeSubDomains"
# FastAPI's interactive API docs load Swagger UI / ReDoc from a CDN with an inline script.
API_DOCS_PATHS = ("/api/docs", "/api/redoc")
API_DOCS_CDN = "https://cdn.jsdelivr.net"


def _origin(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def page_policy(settings: Settings, nonce: str) -> str:
    """The Content-Security-Policy of townhall's own pages."""
    # Presigned uploads and signed downloads go to the S3 endpoint, or to BASE_URL's /files
    # (which is a different origin when the site is reached under another name).
    storage = f"{_origin(settings.base_url)} {_origin(settings.s3_endpoint)}".strip()
    tiles = _origin(settings.report_tile_url)
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            # Inline style attributes are used for layout; styles cannot run script.
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob: https: {storage} {tiles}".rstrip(),
            f"connect-src 'self' ws: wss: {storage}".rstrip(),
            f"media-src 'self' blob: {storage}",
            "font-src 'self' data:",
            "worker-src 'self'",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def api_docs_policy() -> str:
    """Swagger UI and ReDoc need their CDN and their own inline bootstrap script."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'unsafe-inline' {API_DOCS_CDN}",
            f"style-src 'self' 'unsafe-inline' {API_DOCS_CDN} https://fonts.googleapis.com",
            "img-src 'self' data: https:",
            "font-src 'self' data: https://fonts.gstatic.com",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """Add the security headers a route did not set itself (file downloads set stricter ones)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.always_https = settings.base_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})[NONCE_KEY] = nonce
        path = scope.get("path", "")
        docs = path.startswith(API_DOCS_PATHS)
        policy = api_docs_policy() if docs else page_policy(self.settings, nonce)
        https = self.always_https or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                wanted = [
                    (b"content-security-policy", policy.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"strict-origin-when-cross-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if https:
                    wanted.append((b"strict-transport-security", HSTS))
                headers += [(name, value) for name, value in wanted if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
