"""Web shell: home page, sign-up and log-in forms, account page, cookie renewal, log-out."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.fixtures.app import make_settings, oauth_only_account, signup
from townhall.core.auth.tokens import issue_access_token
from townhall.core.config import Settings
from townhall.core.platform import Platform
from townhall.modules.registry import PLANNED


@pytest.fixture(scope="session")
def database_url(sqlite_database_url: str) -> str:
    """Pages add no SQL of their own (the auth API tests run on both databases): SQLite only."""
    return sqlite_database_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Pages enqueue no jobs; the in-process job worker can hold SQLite locks at shutdown."""
    return make_settings(tmp_path, database_url=database_url, worker_in_process=False)


FORM = {"email": "web@example.com", "password": "password123", "display_name": "Web User"}


def cookies_set(response: httpx.Response) -> dict[str, str]:
    """name -> raw Set-Cookie header of every cookie the response sets."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


async def signup_form(client: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    return await client.post("/signup", data={**FORM, **overrides})


class TestHome:
    async def test_lists_the_five_apps(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        for app in PLANNED:
            assert app.title in response.text
        assert 'href="/signup"' in response.text
        assert '<html lang="en">' in response.text

    async def test_static_css_is_served(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/static/app.css")
        assert response.status_code == 200
        assert "text/css" in response.headers["content-type"]


class TestSignupForm:
    async def test_sets_cookies_and_redirects_to_account(self, client: httpx.AsyncClient) -> None:
        response = await signup_form(client)
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        cookies = cookies_set(response)
        for name in ("th_access", "th_refresh"):
            assert "HttpOnly" in cookies[name]
            assert "SameSite=lax" in cookies[name]
            assert "Path=/" in cookies[name]
        account = await client.get("/account")
        assert account.status_code == 200
        assert "web@example.com" in account.text
        assert "Web User" in account.text
        # The same cookie authenticates the API.
        assert (await client.get("/api/v1/auth/me")).json()["email"] == "web@example.com"

    async def test_invalid_form_shows_the_fields(self, client: httpx.AsyncClient) -> None:
        response = await signup_form(client, email="nope", password="short")
        assert response.status_code == 422
        assert 'role="alert"' in response.text
        assert "email" in response.text
        assert "password" in response.text
        assert "set-cookie" not in response.headers
        # What was typed is kept, except the password.
        assert 'value="Web User"' in response.text

    async def test_duplicate_email_is_shown(self, client: httpx.AsyncClient) -> None:
        await signup_form(client)
        client.cookies.clear()
        again = await signup_form(client)
        assert again.status_code == 409
        assert "already exists" in again.text

    async def test_markup_in_names_is_escaped(self, client: httpx.AsyncClient) -> None:
        await signup_form(client, display_name="<script>alert(1)</script>")
        account = await client.get("/account")
        assert "<script>alert(1)</script>" not in account.text
        assert "&lt;script&gt;" in account.text


class TestLoginForm:
    async def test_wrong_password_shows_the_error(self, client: httpx.AsyncClient) -> None:
        await signup(client, "form@example.com")
        response = await client.post(
            "/login", data={"email": "form@example.com", "password": "wrong-password"}
        )
        assert response.status_code == 401
        assert 'role="alert"' in response.text
        assert "wrong email or password" in response.text
        assert 'value="form@example.com"' in response.text
        assert "th_access" not in response.headers.get("set-cookie", "")

    async def test_success_redirects_to_next(self, client: httpx.AsyncClient) -> None:
        await signup(client, "next@example.com")
        response = await client.post(
            "/login",
            data={"email": "next@example.com", "password": "password123", "next": "/account"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        assert {"th_access", "th_refresh"} <= set(cookies_set(response))

    async def test_next_cannot_point_off_site(self, client: httpx.AsyncClient) -> None:
        await signup(client, "evil@example.com")
        for target in ("https://evil.example.com/", "//evil.example.com/", "/\\evil.example.com"):
            response = await client.post(
                "/login",
                data={"email": "evil@example.com", "password": "password123", "next": target},
            )
            assert response.headers["location"] == "/"
            client.cookies.clear()

    async def test_rate_limit_is_shown_with_retry_after(self, client: httpx.AsyncClient) -> None:
        await signup(client, "many@example.com")
        for _ in range(5):
            await client.post("/login", data={"email": "many@example.com", "password": "nope"})
        response = await client.post(
            "/login", data={"email": "many@example.com", "password": "nope"}
        )
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        assert "too many attempts" in response.text


class TestAccountPage:
    async def test_redirects_to_login_when_signed_out(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/account"

    async def test_stale_access_cookie_is_renewed_from_refresh(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        await signup_form(client)
        old_refresh = client.cookies["th_refresh"]
        user_id = (await client.get("/api/v1/auth/me")).json()["id"]
        expired = issue_access_token(
            settings.secret(), uuid.UUID(user_id), uuid.uuid4(), minutes=-1
        )
        client.cookies.set("th_access", expired)
        response = await client.get("/account")
        assert response.status_code == 200
        assert "web@example.com" in response.text
        renewed = cookies_set(response)
        assert {"th_access", "th_refresh"} <= set(renewed)
        new_refresh = client.cookies["th_refresh"]
        assert new_refresh != old_refresh
        # The renewal rotated the refresh token: the old one is now spent.
        reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": old_refresh})
        assert reuse.status_code == 401

    async def test_dead_cookies_are_cleared(self, client: httpx.AsyncClient) -> None:
        client.cookies.set("th_access", "garbage")
        client.cookies.set("th_refresh", f"{uuid.uuid4().hex}.garbage")
        response = await client.get("/account")
        assert response.status_code == 303
        cleared = cookies_set(response)
        assert 'th_refresh=""' in cleared["th_refresh"] or "Max-Age=0" in cleared["th_refresh"]

    async def test_home_shows_the_signed_in_user(self, client: httpx.AsyncClient) -> None:
        await signup_form(client)
        home = await client.get("/")
        assert "Web User" in home.text
        assert 'action="/logout"' in home.text


class TestAccountForms:
    async def test_password_change_keeps_this_device_and_signs_out_others(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await signup_form(client)
        page = await client.get("/account")
        assert 'action="/account/password"' in page.text
        assert 'name="current_password"' in page.text
        async with another_browser(app) as laptop:
            other = await laptop.post(
                "/api/v1/auth/login", json={"email": FORM["email"], "password": FORM["password"]}
            )
        other_access = other.json()["access_token"]
        response = await client.post(
            "/account/password",
            data={"current_password": FORM["password"], "new_password": "a-new-password"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/account?saved=password"
        assert "password was saved" in (await client.get(response.headers["location"])).text
        assert (await client.get("/api/v1/auth/me")).status_code == 200
        gone = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {other_access}"}
        )
        assert gone.status_code == 401
        assert await login_status(app, "a-new-password") == 303
        assert await login_status(app, FORM["password"]) == 401

    async def test_wrong_current_password_is_shown_and_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await signup_form(client)
        response = await client.post(
            "/account/password",
            data={"current_password": "not-the-password", "new_password": "a-new-password"},
        )
        assert response.status_code == 401
        assert 'role="alert"' in response.text
        assert "current password is wrong" in response.text
        short = await client.post(
            "/account/password", data={"current_password": FORM["password"], "new_password": "x"}
        )
        assert short.status_code == 422
        assert "new_password" in short.text
        assert await login_status(app, FORM["password"]) == 303

    async def test_oauth_only_account_sets_a_first_password(
        self, app: FastAPI, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        tokens = await oauth_only_account(platform, "first-pw@example.com")
        client.cookies.set("th_access", tokens["access_token"])
        page = await client.get("/account")
        assert "Set a password" in page.text
        assert 'name="current_password"' not in page.text
        response = await client.post("/account/password", data={"new_password": "first-password"})
        assert response.status_code == 303
        page = await client.get("/account")
        assert "Change password" in page.text
        assert await login_status(app, "first-password", "first-pw@example.com") == 303

    async def test_profile_form_updates_name_and_language(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await signup_form(client)
        response = await client.post(
            "/account/profile", data={"display_name": "Renamed <b>", "locale": "ko-KR"}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/account?saved=profile"
        me = (await client.get("/api/v1/auth/me")).json()
        assert (me["display_name"], me["locale"]) == ("Renamed <b>", "ko-KR")
        assert "Renamed &lt;b&gt;" in (await client.get("/account")).text
        bad = await client.post("/account/profile", data={"display_name": "", "locale": "!!"})
        assert bad.status_code == 422
        assert "locale" in bad.text
        assert (await client.get("/api/v1/auth/me")).json()["display_name"] == "Renamed <b>"

    async def test_forms_need_a_signed_in_same_site_user(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        for path in ("/account/password", "/account/profile"):
            signed_out = await client.post(path, data={"new_password": "a-new-password"})
            assert signed_out.status_code == 303
            assert signed_out.headers["location"] == "/login?next=/account"
        await signup_form(client)
        forged = await client.post(
            "/account/password",
            data={"current_password": FORM["password"], "new_password": "attacker-password"},
            headers={"Origin": "https://evil.example.com"},
        )
        assert forged.status_code == 403
        renamed = await client.post(
            "/account/profile",
            data={"display_name": "Pwned", "locale": "en"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert renamed.status_code == 403
        assert (await client.get("/api/v1/auth/me")).json()["display_name"] == FORM["display_name"]
        assert await login_status(app, FORM["password"]) == 303


@contextlib.asynccontextmanager
async def another_browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second client of the same app with its own cookie jar (another device)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        yield other


async def login_status(app: FastAPI, password: str, email: str = FORM["email"]) -> int:
    """Status of a log-in form post from another browser (303 = logged in)."""
    async with another_browser(app) as other:
        response = await other.post("/login", data={"email": email, "password": password})
        return response.status_code


class TestLogoutForm:
    async def test_clears_cookies_and_revokes_the_session(self, client: httpx.AsyncClient) -> None:
        await signup_form(client)
        tokens: dict[str, Any] = {
            "access": client.cookies["th_access"],
            "refresh": client.cookies["th_refresh"],
        }
        response = await client.post("/logout")
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert set(cookies_set(response)) == {"th_access", "th_refresh"}
        client.cookies.clear()
        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access']}"}
        )
        assert me.status_code == 401
        again = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh"]})
        assert again.status_code == 401


class TestCrossSiteForms:
    async def test_foreign_origin_cannot_log_you_in_or_out(self, client: httpx.AsyncClient) -> None:
        await signup(client, "csrf@example.com")
        login = {"email": "csrf@example.com", "password": "password123"}
        for headers in (
            {"Origin": "https://evil.example.com"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            refused = await client.post("/login", data=login, headers=headers)
            assert refused.status_code == 403, headers
            assert "set-cookie" not in refused.headers
            assert (await client.post("/signup", data=FORM, headers=headers)).status_code == 403
        ok = await client.post(
            "/login",
            data=login,
            headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        )
        assert ok.status_code == 303
        forced = await client.post("/logout", headers={"Origin": "https://evil.example.com"})
        assert forced.status_code == 403
        assert (await client.get("/account")).status_code == 200
