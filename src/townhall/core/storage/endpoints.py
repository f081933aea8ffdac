"""GET/PUT /files/{key}: blobs of the local backend behind HMAC-signed expiring URLs."""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from townhall.core.deps import PlatformDep
from townhall.core.errors import Forbidden
from townhall.core.storage._keys import InvalidKey, validate_key
from townhall.core.storage._sniff import OCTET_STREAM, normalise_type

router = APIRouter(tags=["files"])

# Passive types a browser may show inline; everything else is downloaded.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/tiff",
        "application/pdf",
        "text/plain",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/mp4",
        "video/mp4",
        "video/webm",
    }
)
# Types that run script when rendered by a browser: never served as themselves.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/css",
    }
)
FILE_RESPONSES: dict[int | str, dict[str, str]] = {
    403: {"description": "signature missing, invalid or expired"},
    404: {"description": "no such file"},
}

Exp = Annotated[str | None, Query(description="expiry, Unix seconds")]
Sig = Annotated[str | None, Query(description="HMAC-SHA256 signature")]


def safe_headers(key: str, content_type: str) -> dict[str, str]:
    """Response headers that keep uploaded HTML/SVG from running in our origin."""
    media = normalise_type(content_type) or OCTET_STREAM
    if media in ACTIVE_TYPES or media.endswith("+xml"):
        media = OCTET_STREAM
    served = f"{media}; charset=utf-8" if media == "text/plain" else media
    disposition = "inline" if media in INLINE_TYPES else "attachment"
    filename = key.rsplit("/", 1)[-1]
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return {
        "Content-Type": served,
        "Content-Disposition": (
            f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "same-site",
    }


def _checked_key(key: str) -> str:
    try:
        return validate_key(key)
    except InvalidKey as exc:
        # Never signed by us, so it is a forged link rather than a bad request.
        raise Forbidden("this file link's signature is invalid") from exc


@router.get("/files/{key:path}", responses=FILE_RESPONSES, summary="Download a signed file")
async def get_file(platform: PlatformDep, key: str, exp: Exp = None, sig: Sig = None) -> Response:
    """Serve a blob to the holder of a signed, unexpired URL."""
    key = _checked_key(key)
    platform.storage.signer.verify("GET", key, exp, sig)
    info, chunks = await platform.storage.open(key)
    headers = safe_headers(key, info.content_type)
    headers["Content-Length"] = str(info.size)
    remaining = max(0, int(exp or 0) - int(time.time()))
    headers["Cache-Control"] = f"private, max-age={min(remaining, 3600)}"
    media_type = headers.pop("Content-Type")
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@router.put(
    "/files/{key:path}",
    status_code=201,
    responses={**FILE_RESPONSES, 413: {"description": "too large"}, 422: {"description": "type"}},
    summary="Upload to a signed URL",
)
async def put_file(
    platform: PlatformDep, request: Request, key: str, exp: Exp = None, sig: Sig = None
) -> dict[str, str | int]:
    """Store the request body under a key signed for PUT; the bytes must match Content-Type."""
    key = _checked_key(key)
    platform.storage.signer.verify("PUT", key, exp, sig)
    info = await platform.storage.put_stream(
        key,
        request.stream(),
        max_bytes=platform.settings.max_body_bytes,
        declared_type=request.headers.get("content-type"),
    )
    return {"key": info.key, "size": info.size, "content_type": info.content_type}
