"""Object keys: relative, '/'-separated paths that cannot escape the store."""

from __future__ import annotations

import re

from townhall.core.errors import BadRequest

MAX_KEY_BYTES = 1024
# Printable characters only: no control bytes, no backslashes (Windows separators).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")
# Segments starting with "." are reserved (".meta/" holds content types of local blobs).
RESERVED_PREFIX = "."


class InvalidKey(BadRequest):
    """A key that is empty, absolute, escapes its root or uses reserved names."""


def validate_key(key: str) -> str:
    """Return the key if it is a safe relative object path, else raise InvalidKey."""
    if not key:
        raise InvalidKey("storage key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"storage key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidKey("storage key must be relative, not an absolute path")
    if _FORBIDDEN.search(key):
        raise InvalidKey("storage key contains control characters or backslashes")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey(f"storage key has an empty, '.' or '..' segment: {key!r}")
        if segment.startswith(RESERVED_PREFIX):
            raise InvalidKey(f"storage key segments may not start with '.': {key!r}")
    return key
