"""Annotated dependencies: every handler gets infrastructure and the acting user from here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from cashews import Cache as CashewsCache
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from townhall.core.auth.models import User
from townhall.core.auth.rbac import Grants, load_grants
from townhall.core.auth.service import AuthService, ClientInfo
from townhall.core.cache import hit_action_limit
from townhall.core.config import Settings
from townhall.core.db import commit, session_wrote
from townhall.core.errors import AppError, Forbidden, Unauthorized
from townhall.core.platform import Platform

log = structlog.get_logger(__name__)

ACCESS_COOKIE = "th_access"
REFRESH_COOKIE = "th_refresh"

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


async def get_platform(conn: HTTPConnection) -> Platform:
    platform: Platform = conn.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_settings_dep(platform: PlatformDep) -> Settings:
    return platform.settings


async def get_cache(platform: PlatformDep) -> CashewsCache:
    return platform.cache


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
Cache = Annotated[CashewsCache, Depends(get_cache)]


def recent_writer_key(user_id: uuid.UUID) -> str:
    return f"db:recent-writer:{user_id}"


async def get_db_session(
    conn: HTTPConnection, platform: PlatformDep
) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response is sent."""
    async with platform.db.sessionmaker() as session:
        try:
            yield session
        except AppError as exc:
            if exc.commit_changes:
                await commit(session)
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        await commit(session)
        writer: uuid.UUID | None = getattr(conn.state, "principal_id", None)
        if writer is not None and platform.db.has_replica and session_wrote(session):
            # Noted before the response leaves, so the writer's next request reads the primary.
            lag = platform.settings.database_replica_lag_seconds
            try:
                await platform.cache.set(recent_writer_key(writer), 1, expire=lag)
            except Exception:
                # The write is committed: answer it; only this user's next lists may lag.
                log.warning("could not note a recent writer", user_id=str(writer), exc_info=True)


DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_auth_service(platform: PlatformDep) -> AuthService:
    return AuthService(platform.settings, platform.cache)


Auth = Annotated[AuthService, Depends(get_auth_service)]


async def client_info(conn: HTTPConnection) -> ClientInfo:
    ip = conn.client.host if conn.client else ""
    return ClientInfo(ip=ip, user_agent=conn.headers.get("user-agent", ""))


Client = Annotated[ClientInfo, Depends(client_info)]


def token_from(
    conn: HTTPConnection, credentials: HTTPAuthorizationCredentials | None
) -> str | None:
    """The access token from the Authorization header, the cookie or `?token=`."""
    if credentials is not None:
        return credentials.credentials
    cookie = conn.cookies.get(ACCESS_COOKIE)
    if cookie:
        return cookie
    if conn.scope["type"] == "websocket":
        return conn.query_params.get("token")
    return None


@dataclass(frozen=True)
class Principal:
    """The acting user, their session family and their RBAC grants."""

    user: User
    family_id: uuid.UUID
    grants: Grants

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def is_admin(self) -> bool:
        return self.grants.has_role("admin")


async def authenticate(auth: AuthService, session: AsyncSession, token: str) -> Principal:
    """Resolve a token to a Principal; used by HTTP, WebSocket, SSE and Socket.IO alike."""
    user, family = await auth.authenticate(session, token)
    return Principal(user=user, family_id=family, grants=await load_grants(session, user.id))


async def get_optional_principal(
    conn: HTTPConnection,
    auth: Auth,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    # HTTPConnection, not Request: the same dependency guards WebSocket routes.
    token = token_from(conn, credentials)
    if token is None:
        return None
    try:
        principal = await authenticate(auth, session, token)
    except Unauthorized:
        if credentials is not None:
            raise
        return None  # a stale browser cookie is treated as signed out
    conn.state.principal_id = principal.id  # read-your-writes: see get_db_session
    return principal


async def get_principal(
    principal: Annotated[Principal | None, Depends(get_optional_principal)],
    conn: HTTPConnection,
    auth: Auth,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if principal is not None:
        return principal
    token = token_from(conn, credentials)
    if token is not None:
        await authenticate(auth, session, token)  # raises the precise 401
    raise Unauthorized()


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


def action_limit(action: str, limit_of: Callable[[Settings], int], window: int) -> Any:
    """A route dependency counting `action` per user and per client IP (429 + Retry-After)."""

    async def check(principal: OptionalPrincipal, platform: PlatformDep, client: Client) -> None:
        await hit_action_limit(
            platform.cache,
            action,
            limit=limit_of(platform.settings),
            window=window,
            user_id=principal.id if principal else None,
            ip=client.ip,
        )

    return Depends(check)


async def get_read_session(
    platform: PlatformDep, principal: OptionalPrincipal
) -> AsyncIterator[AsyncSession]:
    """A read-only session: on the replica, unless the caller wrote within the replica's lag."""
    maker = platform.db.read_sessionmaker
    if (
        principal is not None
        and platform.db.has_replica
        and await platform.cache.get(recent_writer_key(principal.id))
    ):
        maker = platform.db.sessionmaker
    async with maker() as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_permission(
    permission: str, scope: str | None = None
) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only principals holding `permission`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.grants.allows(permission, scope):
            raise Forbidden(f"missing permission {permission!r}")
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_permission("*"))]
