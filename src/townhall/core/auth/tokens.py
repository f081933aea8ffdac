"""JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt

from townhall.core.db import utcnow
from townhall.core.errors import Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    family_id: uuid.UUID


def issue_access_token(secret: str, user_id: uuid.UUID, family_id: uuid.UUID, minutes: int) -> str:
    now = utcnow()
    payload = {
        "sub": str(user_id),
        "sid": str(family_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Verify signature, expiry and type; raise 401 with the reason otherwise."""
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("access token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid access token") from exc
    if payload.get("typ") != "access":
        raise Unauthorized("not an access token")
    try:
        return AccessClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("invalid access token") from exc


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_refresh_token(session_id: uuid.UUID, secret: str) -> str:
    return f"{session_id.hex}.{secret}"


def parse_refresh_token(token: str) -> tuple[uuid.UUID, str]:
    """Split `<session id>.<secret>`; raise 401 if it is not that shape."""
    head, _, secret = token.partition(".")
    try:
        return uuid.UUID(hex=head), secret
    except ValueError as exc:
        raise Unauthorized("invalid refresh token") from exc
