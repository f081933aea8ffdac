"""HMAC-signed expiring URLs for blobs served by townhall itself (the local backend)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from townhall.core.errors import Forbidden


class UrlSigner:
    """Signs (method, key, expiry) with a key derived from the app secret."""

    def __init__(self, secret: str) -> None:
        # A purpose-specific key: a leaked file signature says nothing about JWTs.
        self._key = hmac.new(secret.encode(), b"townhall.storage.files.v1", hashlib.sha256).digest()

    def signature(self, method: str, key: str, expires_at: int) -> str:
        """The URL-safe signature of one request."""
        message = f"{method.upper()}\n{key}\n{expires_at}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, method: str, key: str, expires_at: str | None, sig: str | None) -> None:
        """Raise Forbidden unless the signature matches and has not expired."""
        if not expires_at or not sig or not expires_at.isdigit():
            raise Forbidden("this file link is not signed")
        expected = self.signature(method, key, int(expires_at))
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise Forbidden("this file link's signature is invalid")
        if int(expires_at) < int(time.time()):
            raise Forbidden("this file link has expired")
