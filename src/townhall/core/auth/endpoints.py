"""Auth API: /api/v1/auth/*."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from townhall.core.auth.rbac import load_grants
from townhall.core.auth.schemas import (
    LoginRequest,
    PasswordChangeRequest,
    RefreshRequest,
    SignupRequest,
    TokenPair,
    UserRead,
    UserUpdate,
)
from townhall.core.auth.service import IssuedTokens
from townhall.core.config import Settings
from townhall.core.deps import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    Auth,
    Client,
    CurrentPrincipal,
    DbSession,
    SettingsDep,
)
from townhall.core.errors import Unauthorized

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def set_auth_cookies(response: Response, issued: IssuedTokens, settings: Settings) -> None:
    """Store both tokens in HttpOnly cookies for browser pages."""
    response.set_cookie(
        ACCESS_COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        issued.refresh_token,
        max_age=settings.refresh_token_days * 86400,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def safe_next(target: str) -> str:
    """Only same-site relative paths, so a log-in cannot redirect elsewhere."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def clear_auth_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path="/")


def _pair(issued: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post("/signup", response_model=TokenPair, status_code=status.HTTP_201_CREATED)
async def signup(
    body: SignupRequest,
    session: DbSession,
    auth: Auth,
    client: Client,
    response: Response,
    settings: SettingsDep,
) -> TokenPair:
    """Create an account and log it in."""
    issued = await auth.signup(
        session,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        locale=body.locale,
        client=client,
    )
    set_auth_cookies(response, issued, settings)
    return _pair(issued)


@router.post("/login", response_model=TokenPair)
async def login(
    body: LoginRequest,
    session: DbSession,
    auth: Auth,
    client: Client,
    response: Response,
    settings: SettingsDep,
) -> TokenPair:
    """Exchange email and password for an access and a refresh token."""
    issued = await auth.login(session, email=body.email, password=body.password, client=client)
    set_auth_cookies(response, issued, settings)
    return _pair(issued)


@router.post("/refresh", response_model=TokenPair)
async def refresh(
    request: Request,
    session: DbSession,
    auth: Auth,
    client: Client,
    response: Response,
    settings: SettingsDep,
    body: RefreshRequest | None = None,
) -> TokenPair:
    """Rotate a refresh token (body or cookie); a reused token revokes its session."""
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthorized("refresh_token missing")
    issued = await auth.refresh(session, token, client)
    set_auth_cookies(response, issued, settings)
    return _pair(issued)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentPrincipal, session: DbSession, auth: Auth, response: Response
) -> Response:
    """Revoke the current session (every token of its family)."""
    await auth.logout(session, principal.user.id, principal.family_id)
    response.status_code = status.HTTP_204_NO_CONTENT
    clear_auth_cookies(response)
    return response


def user_read(principal_user: object, roles: list[str]) -> UserRead:
    read = UserRead.model_validate(principal_user)
    read.roles = sorted(set(roles))
    return read


@router.get("/me", response_model=UserRead)
async def me(principal: CurrentPrincipal) -> UserRead:
    """The signed-in account and its roles."""
    return user_read(principal.user, [name for name, _ in principal.grants.roles])


@router.patch("/me", response_model=UserRead)
async def update_me(
    body: UserUpdate, principal: CurrentPrincipal, session: DbSession, auth: Auth
) -> UserRead:
    """Change display name or locale."""
    user = await auth.update_profile(
        session,
        await session.merge(principal.user),
        display_name=body.display_name,
        locale=body.locale,
    )
    grants = await load_grants(session, user.id)
    return user_read(user, [name for name, _ in grants.roles])


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChangeRequest, principal: CurrentPrincipal, session: DbSession, auth: Auth
) -> Response:
    """Change the password (no current one needed if none is set); other devices sign out."""
    user = await session.merge(principal.user)
    await auth.change_password(
        session,
        user,
        current=body.current_password,
        new=body.new_password,
        keep_family=principal.family_id,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
