"""Content-type sniffing from magic bytes, and the accept/reject rules of uploads."""

from __future__ import annotations

from collections.abc import Iterable

from townhall.core.errors import AppError, Unprocessable

# Enough to see every signature below and the start of an SVG/HTML document.
SNIFF_BYTES = 4096
OCTET_STREAM = "application/octet-stream"

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
    "application/x-gzip": "application/gzip",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "image/heif": "image/heic",
}
_FTYP_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"mif1": "image/heic",
    b"msf1": "image/heic",
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
    b"M4V ": "video/mp4",
    b"M4A ": "audio/mp4",
    b"qt  ": "video/quicktime",
}
# Every type we can recognise from its bytes; declaring one of these means we verify it.
BINARY_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/tiff",
        "application/pdf",
        "application/zip",
        "application/gzip",
        "audio/wav",
        "audio/ogg",
        "audio/mpeg",
        "video/webm",
        *_FTYP_BRANDS.values(),
    }
)
# Textual kinds the sniffer tells apart (all of them decode as UTF-8 text).
_MARKUP_TYPES = frozenset({"text/html", "image/svg+xml", "application/xml"})
_TEXTUAL_APPLICATION = frozenset(
    {"application/json", "application/xml", "application/javascript", "application/x-ndjson"}
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")


class UnsupportedMediaType(AppError):
    status_code = 415


def normalise_type(content_type: str | None) -> str | None:
    """Lower-case media type without parameters, with common aliases mapped."""
    if content_type is None:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return None
    return _ALIASES.get(media, media)


def is_textual(media: str) -> bool:
    """Text-like types whose bytes we can only check for being text."""
    return (
        media.startswith("text/")
        or media in _TEXTUAL_APPLICATION
        or media in _MARKUP_TYPES
        or media.endswith(("+xml", "+json"))
    )


def _sniff_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still text.
        if exc.start < len(head) - 3:
            return None
        text = head[: exc.start].decode("utf-8")
    start = text.lstrip("\ufeff \t\r\n").lower().encode()
    if start.startswith(_HTML_STARTS):
        return "text/html"
    if start.startswith(b"<svg") or (start.startswith(b"<?xml") and b"<svg" in start):
        return "image/svg+xml"
    if start.startswith(b"<?xml"):
        return "application/xml"
    return "text/plain"


def sniff(head: bytes) -> str | None:
    """The media type the first bytes reveal; None for binary data we do not know."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[head[8:12]]
    return _sniff_text(head)


def _compatible(declared: str, sniffed: str | None) -> bool:
    if sniffed is None:
        # Unknown binary: fine unless we could have recognised the declared type.
        return declared not in BINARY_TYPES and not is_textual(declared)
    if sniffed == declared:
        return True
    if sniffed == "application/zip":
        # Office documents, EPUB, JAR... are zip containers.
        return declared.endswith("+zip") or declared.startswith(
            ("application/vnd.openxmlformats-", "application/vnd.oasis.opendocument.")
        )
    if sniffed in BINARY_TYPES:
        return False
    # Sniffed text: the declared type must be textual, and markup must be declared as markup.
    if declared in _MARKUP_TYPES and declared != "application/xml":
        return False
    return is_textual(declared)


def _allowed(media: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        pattern_n = normalise_type(pattern) or ""
        if pattern_n in ("*/*", media):
            return True
        if pattern_n.endswith("/*") and media.startswith(pattern_n[:-1]):
            return True
    return False


def resolve_content_type(
    head: bytes, declared: str | None, allowed: Iterable[str] | None = None
) -> str:
    """The type to store: the declared one if the bytes agree, else reject with 415 or 422."""
    allowed_list = list(allowed) if allowed is not None else None
    declared_n = normalise_type(declared)
    if declared_n == OCTET_STREAM:
        declared_n = None
    if (
        declared_n is not None
        and allowed_list is not None
        and not _allowed(declared_n, allowed_list)
    ):
        raise UnsupportedMediaType(
            f"content type {declared_n} is not accepted here; allowed: {', '.join(allowed_list)}"
        )
    sniffed = sniff(head)
    if declared_n is None:
        effective = sniffed or OCTET_STREAM
    elif _compatible(declared_n, sniffed):
        effective = declared_n
    else:
        looks_like = sniffed or "unrecognised binary data"
        raise Unprocessable(
            f"the content does not match its declared type {declared_n}: it looks like {looks_like}"
        )
    if allowed_list is not None and not _allowed(effective, allowed_list):
        raise UnsupportedMediaType(
            f"content type {effective} is not accepted here; allowed: {', '.join(allowed_list)}"
        )
    return effective
