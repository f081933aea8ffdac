"""Socket.IO connect: authenticate the handshake's token and check a permission (RBAC)."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

from socketio.exceptions import ConnectionRefusedError as SocketRefused

from townhall.core.auth.service import AuthService
from townhall.core.deps import ACCESS_COOKIE, Principal, authenticate
from townhall.core.errors import Unauthorized

if TYPE_CHECKING:
    from townhall.core.platform import Platform


def socketio_token(environ: dict[str, Any], auth: Any) -> tuple[str | None, bool]:
    """(token, explicit): `auth.token` from the client (explicit) or the `th_access` cookie."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if isinstance(token, str) and token:
        return token, True
    try:
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    except CookieError:
        return None, False
    return (cookies[ACCESS_COOKIE].value if ACCESS_COOKIE in cookies else None), False


async def authorize_socketio(
    platform: Platform,
    token: str | None,
    permission: str | None = None,
    scope: str | None = None,
) -> Principal:
    """The Principal behind `token` holding `permission` (in `scope`), else refuse the connect.

    The refusal is python-socketio's ConnectionRefusedError: the client's `connect_error`
    receives `{"message": ..., "data": {"status": 401 | 403}}`.
    """
    if not token:
        raise SocketRefused("authentication required", {"status": 401})
    try:
        async with platform.db.session() as session:
            principal = await authenticate(
                AuthService(platform.settings, platform.cache), session, token
            )
    except Unauthorized as exc:
        raise SocketRefused(exc.message, {"status": 401}) from exc
    if permission is not None and not principal.grants.allows(permission, scope):
        raise SocketRefused(f"missing permission {permission!r}", {"status": 403})
    return principal
