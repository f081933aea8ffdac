"""OAuth/OIDC log-in through the real Authlib client against a fake provider on a local port."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import jwt
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_tables
from tests.fixtures.services import free_port
from townhall.main import create_app

CLIENT_ID = "townhall-test-client"
CLIENT_SECRET = "townhall-test-secret"


@dataclass
class FakeProvider:
    """An OIDC provider (plus a Naver-style plain OAuth2 one) answering real HTTP."""

    base_url: str
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    # The identity the next log-in returns; tests set it.
    identity: dict[str, Any] = field(default_factory=dict)
    # Overrides of id_token claims (a wrong nonce, a wrong audience).
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    # Leave email_verified out of the id_token (Kakao style) and serve it from userinfo.
    verified_only_in_userinfo: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
                Route("/userinfo", self.userinfo),
                Route("/naver/me", self.naver_me),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.base_url,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "userinfo_endpoint": f"{self.base_url}/userinfo",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "redirect_uri": q["redirect_uri"],
            "nonce": q.get("nonce"),
            "code_challenge": q.get("code_challenge"),
            "scope": q.get("scope", ""),
            "identity": dict(self.identity),
        }
        target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(form)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if grant["code_challenge"]:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["code_challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access_token = secrets.token_urlsafe(16)
        identity = grant["identity"]
        self.tokens[access_token] = identity
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        if "openid" in grant["scope"].split():
            now = int(time.time())
            claims = {
                "iss": self.base_url,
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                **identity,
                **self.id_token_overrides,
            }
            if self.verified_only_in_userinfo:
                claims.pop("email_verified", None)
            body["id_token"] = jwt.encode(
                claims, self.key, algorithm="RS256", headers={"kid": "test-key"}
            )
        return JSONResponse(body)

    async def jwks(self, request: Request) -> Response:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**public, "kid": "test-key", "use": "sig", "alg": "RS256"}]})

    def _bearer(self, request: Request) -> dict[str, Any] | None:
        header = request.headers.get("authorization", "")
        return self.tokens.get(header.removeprefix("Bearer ").strip())

    async def userinfo(self, request: Request) -> Response:
        identity = self._bearer(request)
        if identity is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(identity)

    async def naver_me(self, request: Request) -> Response:
        identity = self._bearer(request)
        if identity is None:
            return JSONResponse({"resultcode": "024", "message": "auth failed"}, status_code=401)
        profile = {"id": identity["sub"], "email": identity.get("email")}
        profile["nickname"] = identity.get("name")
        return JSONResponse({"resultcode": "00", "message": "success", "response": profile})


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    port = free_port()
    fake = FakeProvider(base_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake provider did not start"
        time.sleep(0.02)
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
async def oauth_client(
    tmp_path: Path, database_url: str, provider: FakeProvider
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with Google, Kakao and Naver all pointing at the fake provider."""
    base = provider.base_url
    provider.identity = {}
    provider.id_token_overrides = {}
    provider.verified_only_in_userinfo = False
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        worker_in_process=False,
        base_url="http://testserver",
        oauth_google_client_id=CLIENT_ID,
        oauth_google_client_secret=CLIENT_SECRET,
        oauth_google_metadata_url=f"{base}/.well-known/openid-configuration",
        oauth_kakao_client_id=CLIENT_ID,
        oauth_kakao_client_secret=CLIENT_SECRET,
        oauth_kakao_metadata_url=f"{base}/.well-known/openid-configuration",
        oauth_naver_client_id=CLIENT_ID,
        oauth_naver_client_secret=CLIENT_SECRET,
        oauth_naver_authorize_url=f"{base}/authorize",
        oauth_naver_token_url=f"{base}/token",
        oauth_naver_userinfo_url=f"{base}/naver/me",
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    await empty_tables(database_url)


async def start(client: httpx.AsyncClient, provider_name: str, next_path: str = "/") -> str:
    """Begin a log-in; returns the provider's redirect back to our callback."""
    response = await client.get(f"/auth/oauth/{provider_name}/login", params={"next": next_path})
    assert response.status_code == 302, response.text
    authorize_url = response.headers["location"]
    assert "th_oauth" in response.headers["set-cookie"]
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(authorize_url)
    assert at_provider.status_code == 302, at_provider.text
    callback: str = at_provider.headers["location"]
    assert callback.startswith(f"http://testserver/auth/oauth/{provider_name}/callback?")
    return callback


async def log_in(
    client: httpx.AsyncClient, provider_name: str, next_path: str = "/"
) -> httpx.Response:
    return await client.get(await start(client, provider_name, next_path))


async def me(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/auth/me")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def identity(sub: str, email: str, *, verified: bool = True, name: str = "Pat") -> dict[str, Any]:
    return {"sub": sub, "email": email, "email_verified": verified, "name": name}


class TestNewAccount:
    async def test_google_creates_account_and_sets_cookies(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("g-1", "pat@example.com")
        done = await log_in(oauth_client, "google", "/account")
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/account"
        cookies = " ".join(done.headers.get_list("set-cookie"))
        assert "th_access=" in cookies
        assert "th_refresh=" in cookies
        account = await me(oauth_client)
        assert account["email"] == "pat@example.com"
        assert account["display_name"] == "Pat"
        assert account["roles"] == ["user"]
        # PKCE was used, and the secret travelled with the token request.
        assert provider.token_requests[-1]["code_verifier"]

    async def test_same_subject_logs_into_the_same_account(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("g-2", "same@example.com")
        await log_in(oauth_client, "google")
        first = (await me(oauth_client))["id"]
        oauth_client.cookies.clear()
        # The email changed at the provider; the subject still identifies the account.
        provider.identity = identity("g-2", "renamed@example.com")
        await log_in(oauth_client, "google")
        assert (await me(oauth_client))["id"] == first

    async def test_kakao_reads_email_verified_from_userinfo(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        await self._existing(oauth_client, "kim@example.com")
        provider.verified_only_in_userinfo = True
        provider.identity = identity("k-1", "kim@example.com", verified=True)
        done = await log_in(oauth_client, "kakao")
        assert done.status_code == 303, done.text
        assert (await me(oauth_client))["email"] == "kim@example.com"
        assert provider.token_requests[-1]["client_secret"] == CLIENT_SECRET

    async def test_naver_plain_oauth2(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("n-1", "lee@example.com", name="Lee")
        done = await log_in(oauth_client, "naver")
        assert done.status_code == 303, done.text
        account = await me(oauth_client)
        assert (account["email"], account["display_name"]) == ("lee@example.com", "Lee")

    @staticmethod
    async def _existing(client: httpx.AsyncClient, email: str) -> None:
        from tests.fixtures.app import signup

        await signup(client, email, password="password123")


class TestLinking:
    async def test_verified_email_links_to_existing_account(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        from tests.fixtures.app import signup

        tokens = await signup(oauth_client, "ann@example.com")
        original = (await oauth_client.get("/api/v1/auth/me", headers=tokens["headers"])).json()
        provider.identity = identity("g-ann", "ann@example.com", verified=True)
        done = await log_in(oauth_client, "google")
        assert done.status_code == 303
        assert (await me(oauth_client))["id"] == original["id"]

    async def test_linking_an_unproven_signup_drops_its_password_and_sessions(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        """Whoever signed up first with the address must not keep access (pre-hijacking)."""
        from tests.fixtures.app import signup

        squatter = await signup(oauth_client, "victim@example.com", password="squatter-pw")
        provider.identity = identity("g-victim", "victim@example.com", verified=True)
        await log_in(oauth_client, "google")
        oauth_client.cookies.clear()
        old = await oauth_client.get("/api/v1/auth/me", headers=squatter["headers"])
        assert old.status_code == 401
        again = await oauth_client.post(
            "/api/v1/auth/login", json={"email": "victim@example.com", "password": "squatter-pw"}
        )
        assert again.status_code == 401

    async def test_unverified_email_does_not_link(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        from tests.fixtures.app import signup

        tokens = await signup(oauth_client, "bo@example.com")
        provider.identity = identity("g-bo", "bo@example.com", verified=False)
        refused = await log_in(oauth_client, "google")
        assert refused.status_code == 409
        assert "already exists" in refused.text
        assert "th_access" not in refused.headers.get("set-cookie", "")
        # The password account is untouched.
        still = await oauth_client.get("/api/v1/auth/me", headers=tokens["headers"])
        assert still.status_code == 200
        login = await oauth_client.post(
            "/api/v1/auth/login", json={"email": "bo@example.com", "password": "password123"}
        )
        assert login.status_code == 200

    async def test_naver_foreign_address_counts_as_unverified(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        from tests.fixtures.app import signup

        await signup(oauth_client, "cho@example.com")
        provider.identity = identity("n-cho", "cho@example.com", verified=True)
        refused = await log_in(oauth_client, "naver")
        assert refused.status_code == 409


# Refusals and configuration happen before any SQL of their own: SQLite is enough for them.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
class TestRefusals:
    async def test_tampered_state_is_rejected(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("g-s", "state@example.com")
        callback = await start(oauth_client, "google")
        parsed = urlparse(callback)
        params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        params["state"] = "forged-" + params["state"]
        refused = await oauth_client.get(f"{parsed.path}?{urlencode(params)}")
        assert refused.status_code == 400
        assert "failed or expired" in refused.text
        assert (await oauth_client.get("/api/v1/auth/me")).status_code == 401

    async def test_callback_without_the_state_cookie_is_rejected(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        """A callback started in another browser (login CSRF) has no signed state."""
        provider.identity = identity("g-c", "csrf@example.com")
        callback = await start(oauth_client, "google")
        oauth_client.cookies.clear()
        refused = await oauth_client.get(callback)
        assert refused.status_code == 400
        assert "th_access" not in refused.headers.get("set-cookie", "")

    async def test_forged_state_cookie_is_rejected(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("g-f", "forged@example.com")
        callback = await start(oauth_client, "google")
        oauth_client.cookies.set("th_oauth", "eyJuZXh0IjoiLyJ9.forged.sig", path="/auth/oauth/")
        refused = await oauth_client.get(callback)
        assert refused.status_code == 400

    async def test_wrong_nonce_is_rejected(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("g-n", "nonce@example.com")
        provider.id_token_overrides = {"nonce": "replayed"}
        refused = await log_in(oauth_client, "google")
        assert refused.status_code == 400
        assert (await oauth_client.get("/api/v1/auth/me")).status_code == 401

    async def test_id_token_for_another_client_is_rejected(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("g-a", "aud@example.com")
        provider.id_token_overrides = {"aud": "someone-else"}
        refused = await log_in(oauth_client, "google")
        assert refused.status_code == 400

    async def test_identity_without_a_usable_email_is_refused(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        for email in ("not-an-email", "x" * 400 + "@example.com"):
            provider.identity = identity("g-bad", email)
            refused = await log_in(oauth_client, "google")
            assert refused.status_code == 401
            assert "did not share an email" in refused.text
        assert (await oauth_client.get("/api/v1/auth/me")).status_code == 401

    async def test_user_cancelled_at_provider(self, oauth_client: httpx.AsyncClient) -> None:
        response = await oauth_client.get(
            "/auth/oauth/google/callback", params={"error": "access_denied", "state": "x"}
        )
        assert response.status_code == 400
        assert "cancelled" in response.text

    async def test_next_cannot_leave_the_site(
        self, oauth_client: httpx.AsyncClient, provider: FakeProvider
    ) -> None:
        provider.identity = identity("g-x", "next@example.com")
        done = await log_in(oauth_client, "google", "//evil.example.com/")
        assert done.headers["location"] == "/"


@SQLITE_ONLY
class TestConfiguration:
    async def test_unconfigured_provider_is_hidden_and_404(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/login")
        assert "/auth/oauth/" not in page.text
        for path in ("/auth/oauth/google/login", "/auth/oauth/google/callback"):
            response = await client.get(path)
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"

    async def test_configured_providers_are_shown(self, oauth_client: httpx.AsyncClient) -> None:
        page = await oauth_client.get("/login", params={"next": "/account"})
        for name in ("google", "kakao", "naver"):
            assert f"/auth/oauth/{name}/login?next=/account" in page.text
        assert (await oauth_client.get("/auth/oauth/facebook/login")).status_code == 404

    async def test_unreachable_provider_is_502_not_500(
        self, tmp_path: Path, database_url: str
    ) -> None:
        settings = make_settings(
            tmp_path,
            database_url=database_url,
            worker_in_process=False,
            oauth_google_client_id=CLIENT_ID,
            oauth_google_client_secret=CLIENT_SECRET,
            oauth_google_metadata_url=f"http://127.0.0.1:{free_port()}/.well-known/x",
        )
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                response = await c.get("/auth/oauth/google/login")
        assert response.status_code == 502
        assert "cannot be reached" in response.text
