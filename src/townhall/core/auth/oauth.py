"""OAuth 2.0 / OIDC log-in through Authlib for Google, Kakao and Naver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc.errors import JoseError

from townhall.core.auth.endpoints import safe_next, set_auth_cookies
from townhall.core.config import Settings
from townhall.core.deps import Auth, Client, DbSession
from townhall.core.errors import AppError, NotFound
from townhall.core.secrets.deps import EffectiveSettings
from townhall.web.templating import render

log = structlog.get_logger(__name__)

# Holds Authlib's state, nonce and PKCE verifier between the two redirects, signed.
STATE_COOKIE = "th_oauth"
STATE_COOKIE_PATH = "/auth/oauth/"
STATE_MAX_AGE = 600
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str


PROVIDERS = (
    ProviderInfo("google", "Google"),
    ProviderInfo("kakao", "Kakao"),
    ProviderInfo("naver", "Naver"),
)


@dataclass(frozen=True)
class Identity:
    """Who the provider says the user is."""

    subject: str
    email: str | None
    email_verified: bool
    display_name: str


def configured_providers(settings: Settings) -> list[ProviderInfo]:
    """Providers with a client id and secret; the others are hidden."""
    return [
        p
        for p in PROVIDERS
        if getattr(settings, f"oauth_{p.name}_client_id")
        and getattr(settings, f"oauth_{p.name}_client_secret")
    ]


def build_oauth(settings: Settings) -> OAuth:
    """An Authlib registry holding every configured provider."""
    oauth = OAuth()
    for provider in configured_providers(settings):
        name = provider.name
        secret = getattr(settings, f"oauth_{name}_client_secret").get_secret_value()
        common: dict[str, Any] = {
            "name": name,
            "client_id": getattr(settings, f"oauth_{name}_client_id"),
            "client_secret": secret,
        }
        if name == "google":
            oauth.register(
                **common,
                server_metadata_url=settings.oauth_google_metadata_url,
                client_kwargs={
                    "scope": "openid email profile",
                    "code_challenge_method": "S256",
                    "timeout": HTTP_TIMEOUT,
                },
            )
        elif name == "kakao":
            # Kakao only accepts the client secret in the token request body.
            oauth.register(
                **common,
                server_metadata_url=settings.oauth_kakao_metadata_url,
                client_kwargs={
                    "scope": "openid account_email profile_nickname",
                    "token_endpoint_auth_method": "client_secret_post",
                    "timeout": HTTP_TIMEOUT,
                },
            )
        else:
            # Naver speaks plain OAuth 2.0 (no OIDC discovery, no id_token).
            oauth.register(
                **common,
                authorize_url=settings.oauth_naver_authorize_url,
                access_token_url=settings.oauth_naver_token_url,
                userinfo_endpoint=settings.oauth_naver_userinfo_url,
                client_kwargs={
                    "token_endpoint_auth_method": "client_secret_post",
                    "timeout": HTTP_TIMEOUT,
                },
            )
    return oauth


def _registry(request: Request, settings: Settings) -> OAuth:
    """The app's Authlib registry, built once per settings object (it caches provider metadata)."""
    # Effective settings are a new object only when an admin changed a stored client secret.
    cached: tuple[Settings, OAuth] | None = getattr(request.app.state, "oauth", None)
    if cached is None or cached[0] is not settings:
        cached = (settings, build_oauth(settings))
        request.app.state.oauth = cached
    return cached[1]


def _client(request: Request, settings: Settings, provider: str) -> tuple[Any, ProviderInfo]:
    for info in configured_providers(settings):
        if info.name == provider:
            return _registry(request, settings).create_client(provider), info
    raise NotFound(f"log-in with {provider!r} is not available")


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret(), salt="townhall.oauth.state")


def _truthy(value: Any) -> bool:
    # Some providers send email_verified as the string "true".
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _email(value: Any) -> str | None:
    """The provider's email when it looks like one and fits the users table."""
    if isinstance(value, str) and "@" in value and len(value) <= 320:
        return value.strip().lower()
    return None


def _subject(value: Any) -> str:
    subject = str(value or "")
    if not subject or len(subject) > 255:
        raise ValueError("the provider returned no usable subject")
    return subject


def _display_name(claims: dict[str, Any], email: str | None) -> str:
    for key in ("name", "nickname", "preferred_username"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:100]
    return (email or "user").split("@")[0][:100]


async def fetch_identity(client: Any, provider: str, token: dict[str, Any]) -> Identity:
    """Read the user's identity from the id_token (OIDC) or the userinfo endpoint (Naver)."""
    if provider == "naver":
        profile = dict(await client.userinfo(token=token)).get("response") or {}
        email = _email(profile.get("email"))
        # Naver shares the account's contact address unverified, except its own mailboxes.
        verified = email is not None and email.endswith("@naver.com")
        return Identity(
            subject=_subject(profile.get("id")),
            email=email,
            email_verified=verified,
            display_name=_display_name(profile, email),
        )
    claims: dict[str, Any] = dict(token.get("userinfo") or {})
    if not claims.get("sub"):
        raise ValueError("the provider returned no id_token")
    if "email_verified" not in claims:
        # Kakao puts email_verified only in its userinfo response.
        extra = dict(await client.userinfo(token=token))
        if extra.get("sub") == claims["sub"]:
            claims = {**extra, **claims, "email_verified": extra.get("email_verified")}
    email = _email(claims.get("email"))
    return Identity(
        subject=_subject(claims["sub"]),
        email=email,
        email_verified=bool(email) and _truthy(claims.get("email_verified")),
        display_name=_display_name(claims, email),
    )


def _failure(request: Request, settings: Settings, message: str, status: int) -> Response:
    response = render(
        request,
        "login.html",
        status,
        error=message,
        providers=configured_providers(settings),
        next="/",
    )
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return response


router = APIRouter(prefix="/auth/oauth", include_in_schema=False)


@router.get("/{provider}/login")
async def oauth_login(
    request: Request, provider: str, settings: EffectiveSettings, next: str = "/"
) -> Response:
    """Redirect to the provider; state, nonce and PKCE verifier go into a signed cookie."""
    client, info = _client(request, settings, provider)
    redirect_uri = f"{settings.base_url.rstrip('/')}/auth/oauth/{provider}/callback"
    # Authlib keeps its flow data in request.session; here that is the signed cookie.
    request.scope["session"] = {"next": safe_next(next)}
    try:
        response: Response = await client.authorize_redirect(request, redirect_uri)
    except (AuthlibBaseError, httpx.HTTPError, RuntimeError, ValueError) as exc:
        log.warning("oauth provider unreachable", provider=provider, error=str(exc))
        return _failure(request, settings, f"{info.label} cannot be reached; try again later", 502)
    response.set_cookie(
        STATE_COOKIE,
        _serializer(settings).dumps(request.scope["session"]),
        max_age=STATE_MAX_AGE,
        httponly=True,
        secure=settings.cookie_secure,
        # Lax: the cookie must come back on the provider's top-level redirect to us.
        samesite="lax",
        path=STATE_COOKIE_PATH,
    )
    return response


@router.get("/{provider}/callback")
async def oauth_callback(
    request: Request,
    provider: str,
    settings: EffectiveSettings,
    session: DbSession,
    auth: Auth,
    client_info: Client,
) -> Response:
    """Check state and nonce, fetch the identity, log in (linking by verified email)."""
    client, info = _client(request, settings, provider)
    try:
        flow = _serializer(settings).loads(
            request.cookies.get(STATE_COOKIE, ""), max_age=STATE_MAX_AGE
        )
    except BadSignature:
        flow = {}
    request.scope["session"] = flow if isinstance(flow, dict) else {}
    if request.query_params.get("error"):
        return _failure(request, settings, f"log-in with {info.label} was cancelled", 400)
    try:
        token = await client.authorize_access_token(request)
        identity = await fetch_identity(client, provider, token)
    except (AuthlibBaseError, JoseError, KeyError, ValueError, TypeError) as exc:
        log.warning("oauth callback refused", provider=provider, error=repr(exc))
        return _failure(
            request, settings, f"log-in with {info.label} failed or expired; try again", 400
        )
    except httpx.HTTPError as exc:
        log.warning("oauth provider unreachable", provider=provider, error=repr(exc))
        return _failure(request, settings, f"{info.label} cannot be reached; try again later", 502)
    try:
        issued = await auth.oauth_login(
            session,
            provider=provider,
            subject=identity.subject,
            email=identity.email,
            email_verified=identity.email_verified,
            display_name=identity.display_name,
            client=client_info,
        )
    except AppError as exc:
        return _failure(request, settings, exc.message, exc.status_code)
    redirect = RedirectResponse(safe_next(str(flow.get("next", "/"))), status_code=303)
    set_auth_cookies(redirect, issued, settings)
    redirect.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return redirect
