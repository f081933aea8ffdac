"""Server-rendered pages of the shell: home, sign-up, log-in, account."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from townhall.core.auth import oauth
from townhall.core.auth.endpoints import clear_auth_cookies, safe_next, set_auth_cookies
from townhall.core.auth.schemas import (
    LoginRequest,
    PasswordChangeRequest,
    SignupRequest,
    UserUpdate,
)
from townhall.core.deps import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    Auth,
    Client,
    DbSession,
    Principal,
    SettingsDep,
    authenticate,
)
from townhall.core.errors import AppError, Forbidden, Unauthorized
from townhall.core.secrets.deps import EffectiveSettings
from townhall.web.templating import render

router = APIRouter(include_in_schema=False)
router.include_router(oauth.router)


async def page_principal(
    request: Request,
    response: Response,
    auth: Auth,
    session: DbSession,
    client: Client,
    settings: SettingsDep,
) -> Principal | None:
    """The signed-in browser user; a stale access cookie is renewed from the refresh cookie."""
    token = request.cookies.get(ACCESS_COOKIE)
    if token:
        try:
            principal = await authenticate(auth, session, token)
        except Unauthorized:
            principal = None
        if principal is not None:
            request.state.user = principal.user
            return principal
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        return None
    try:
        issued = await auth.refresh(session, refresh, client)
    except Unauthorized:
        clear_auth_cookies(response)
        return None
    set_auth_cookies(response, issued, settings)
    principal = await authenticate(auth, session, issued.access_token)
    request.state.user = principal.user
    return principal


PageUser = Annotated[Principal | None, Depends(page_principal)]


async def same_origin(request: Request, settings: SettingsDep) -> None:
    """Refuse form posts sent by other sites (log-in CSRF, forced log-out)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("cross-site form submission refused")
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or one too old to say; SameSite cookies still apply
    allowed = {settings.base_url.rstrip("/"), f"{request.url.scheme}://{request.url.netloc}"}
    if origin.rstrip("/") not in allowed:
        raise Forbidden("cross-site form submission refused")


SameOrigin = [Depends(same_origin)]


def _with_cookies(target: Response, source: Response) -> Response:
    """Copy cookies set on the dependency's response onto the returned one."""
    for key, value in source.headers.items():
        if key.lower() == "set-cookie":
            target.headers.append("set-cookie", value)
    return target


def _form_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def _refused(
    request: Request, name: str, exc: ValidationError | AppError, **context: Any
) -> Response:
    """Show the form again with what went wrong (and when to retry after a 429)."""
    if isinstance(exc, ValidationError):
        return render(request, name, 422, error=_form_errors(exc), **context)
    response = render(request, name, exc.status_code, error=exc.message, **context)
    if "Retry-After" in exc.headers:
        response.headers["Retry-After"] = exc.headers["Retry-After"]
    return response


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, response: Response, principal: PageUser) -> Response:
    return _with_cookies(render(request, "home.html"), response)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, settings: EffectiveSettings, next: str = "/") -> Response:
    return render(
        request, "login.html", providers=oauth.configured_providers(settings), next=safe_next(next)
    )


@router.post("/login", response_class=HTMLResponse, dependencies=SameOrigin)
async def login_submit(
    request: Request,
    session: DbSession,
    auth: Auth,
    client: Client,
    settings: EffectiveSettings,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    providers = oauth.configured_providers(settings)
    try:
        body = LoginRequest(email=email, password=password)
        issued = await auth.login(session, email=body.email, password=body.password, client=client)
    except (ValidationError, AppError) as exc:
        return _refused(request, "login.html", exc, email=email, providers=providers, next=next)
    redirect = RedirectResponse(safe_next(next), status_code=303)
    set_auth_cookies(redirect, issued, settings)
    return redirect


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, settings: EffectiveSettings) -> Response:
    return render(request, "signup.html", providers=oauth.configured_providers(settings))


@router.post("/signup", response_class=HTMLResponse, dependencies=SameOrigin)
async def signup_submit(
    request: Request,
    session: DbSession,
    auth: Auth,
    client: Client,
    settings: EffectiveSettings,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
) -> Response:
    providers = oauth.configured_providers(settings)
    try:
        body = SignupRequest(email=email, password=password, display_name=display_name)
        issued = await auth.signup(
            session,
            email=body.email,
            password=body.password,
            display_name=body.display_name,
            locale=body.locale,
            client=client,
        )
    except (ValidationError, AppError) as exc:
        return _refused(
            request,
            "signup.html",
            exc,
            email=email,
            display_name=display_name,
            providers=providers,
        )
    redirect = RedirectResponse("/account", status_code=303)
    set_auth_cookies(redirect, issued, settings)
    return redirect


@router.post("/logout", dependencies=SameOrigin)
async def logout_submit(principal: PageUser, session: DbSession, auth: Auth) -> Response:
    if principal is not None:
        await auth.logout(session, principal.user.id, principal.family_id)
    redirect = RedirectResponse("/", status_code=303)
    clear_auth_cookies(redirect)
    return redirect


ACCOUNT_NOTICES = {"password": "Your password was saved.", "profile": "Your profile was saved."}


def _to_login(response: Response) -> Response:
    # Keeps the dependency's cookie clearing when the refresh cookie was dead.
    return _with_cookies(RedirectResponse("/login?next=/account", status_code=303), response)


def _account_context(principal: Principal) -> dict[str, Any]:
    return {
        "roles": sorted({name for name, _ in principal.grants.roles}),
        "has_password": principal.user.password_hash is not None,
    }


@router.get("/account", response_class=HTMLResponse)
async def account(
    request: Request, response: Response, principal: PageUser, saved: str = ""
) -> Response:
    if principal is None:
        return _to_login(response)
    page = render(
        request, "account.html", notice=ACCOUNT_NOTICES.get(saved), **_account_context(principal)
    )
    return _with_cookies(page, response)


@router.post("/account/profile", response_class=HTMLResponse, dependencies=SameOrigin)
async def profile_submit(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    auth: Auth,
    display_name: Annotated[str, Form()] = "",
    locale: Annotated[str, Form()] = "",
) -> Response:
    if principal is None:
        return _to_login(response)
    user = await session.merge(principal.user)
    try:
        body = UserUpdate(display_name=display_name, locale=locale)
    except ValidationError as exc:
        return _refused(request, "account.html", exc, **_account_context(principal))
    await auth.update_profile(session, user, display_name=body.display_name, locale=body.locale)
    return _with_cookies(RedirectResponse("/account?saved=profile", status_code=303), response)


@router.post("/account/password", response_class=HTMLResponse, dependencies=SameOrigin)
async def password_submit(
    request: Request,
    response: Response,
    principal: PageUser,
    session: DbSession,
    auth: Auth,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    """Change the password, or set a first one on an account made by an OAuth log-in."""
    if principal is None:
        return _to_login(response)
    user = await session.merge(principal.user)
    try:
        body = PasswordChangeRequest(
            current_password=current_password or None, new_password=new_password
        )
        await auth.change_password(
            session,
            user,
            current=body.current_password,
            new=body.new_password,
            keep_family=principal.family_id,
        )
    except (ValidationError, AppError) as exc:
        return _refused(request, "account.html", exc, **_account_context(principal))
    return _with_cookies(RedirectResponse("/account?saved=password", status_code=303), response)
