"""Auth API: sign-up, log-in, refresh rotation and reuse, log-out, rate limits, bad input."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from tests.fixtures.app import make_settings, signup
from tests.fixtures.database import empty_tables
from tests.fixtures.services import REDIS_URL, require
from townhall.core.auth.models import AuthSession
from townhall.core.config import Settings
from townhall.core.db import utcnow
from townhall.core.platform import Platform
from townhall.main import create_app


class TestSignup:
    async def test_creates_account_and_logs_in(self, client: httpx.AsyncClient) -> None:
        tokens = await signup(client, "new@example.com")
        me = await client.get("/api/v1/auth/me", headers=tokens["headers"])
        assert me.status_code == 200
        assert me.json()["email"] == "new@example.com"
        assert me.json()["roles"] == ["user"]

    async def test_duplicate_email_is_409_and_changes_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        await signup(client, "dup@example.com")
        again = await client.post(
            "/api/v1/auth/signup",
            json={"email": "DUP@example.com", "password": "password123", "display_name": "X"},
        )
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        assert "already exists" in again.json()["detail"]
        # The refused sign-up changed nothing: the first password and name still hold.
        ok = await client.post(
            "/api/v1/auth/login", json={"email": "dup@example.com", "password": "password123"}
        )
        assert ok.status_code == 200
        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {ok.json()['access_token']}"}
        )
        assert me.json()["display_name"] == "Ann"

    async def test_validation_names_the_field(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/signup",
            json={"email": "not-an-email", "password": "short", "display_name": ""},
        )
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {"email", "password", "display_name"}

    async def test_unknown_fields_rejected(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/signup",
            json={
                "email": "a@example.com",
                "password": "password123",
                "display_name": "A",
                "is_admin": True,
            },
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "is_admin"

    async def test_malformed_json_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/signup",
            content=b'{"email": ',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert "malformed JSON" in response.json()["detail"]


class TestLogin:
    async def test_wrong_password_is_401(self, client: httpx.AsyncClient) -> None:
        await signup(client, "w@example.com")
        response = await client.post(
            "/api/v1/auth/login", json={"email": "w@example.com", "password": "nope-nope"}
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "wrong email or password"
        ok = await client.post(
            "/api/v1/auth/login", json={"email": "w@example.com", "password": "password123"}
        )
        assert ok.status_code == 200

    async def test_sql_looking_input_is_just_a_wrong_password(
        self, client: httpx.AsyncClient
    ) -> None:
        await signup(client, "s@example.com")
        response = await client.post(
            "/api/v1/auth/login", json={"email": "s@example.com", "password": "' OR 1=1 --"}
        )
        assert response.status_code == 401

    async def test_rate_limited_per_account_with_retry_after(
        self, client: httpx.AsyncClient
    ) -> None:
        await signup(client, "r@example.com")
        codes = []
        for _ in range(6):
            response = await client.post(
                "/api/v1/auth/login", json={"email": "r@example.com", "password": "wrong-pass"}
            )
            codes.append(response.status_code)
        assert codes == [401] * 5 + [429]
        assert int(response.headers["retry-after"]) > 0
        # Even the right password waits out the window.
        ok = await client.post(
            "/api/v1/auth/login", json={"email": "r@example.com", "password": "password123"}
        )
        assert ok.status_code == 429


class TestRefresh:
    async def test_rotation_and_reuse_revokes_family(self, client: httpx.AsyncClient) -> None:
        first = await signup(client, "rot@example.com")
        rotated = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert rotated.status_code == 200
        second = rotated.json()
        assert second["refresh_token"] != first["refresh_token"]
        client.cookies.clear()
        # The old token presented again: reuse -> whole family revoked.
        reuse = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert reuse.status_code == 401
        assert "reuse" in reuse.json()["detail"]
        client.cookies.clear()
        newer = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert newer.status_code == 401
        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}
        )
        assert me.status_code == 401

    async def test_garbage_refresh_token(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "garbage"})
        assert response.status_code == 401

    async def test_expired_refresh_token_is_refused_and_stays_refused(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        tokens = await signup(client, "stale@example.com")
        async with platform.db.session() as session:
            await session.execute(
                update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1))
            )
        for _ in range(2):  # the refusal rotated nothing, so it is not mistaken for reuse
            response = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            assert response.status_code == 401
            assert response.json()["detail"] == "refresh token expired"


class TestLogout:
    async def test_logout_revokes_access_and_refresh(self, client: httpx.AsyncClient) -> None:
        tokens = await signup(client, "out@example.com")
        response = await client.post("/api/v1/auth/logout", headers=tokens["headers"])
        assert response.status_code == 204
        assert (await client.get("/api/v1/auth/me", headers=tokens["headers"])).status_code == 401
        again = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert again.status_code == 401


class TestTokens:
    async def test_forged_token_is_401(self, client: httpx.AsyncClient) -> None:
        import jwt

        forged = jwt.encode(
            {"sub": "x", "sid": "y", "typ": "access", "exp": 9999999999}, "wrong", "HS256"
        )
        response = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "invalid access token"

    async def test_expired_token_is_401(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        from townhall.core.auth.tokens import issue_access_token

        expired = issue_access_token(settings.secret(), uuid.uuid4(), uuid.uuid4(), minutes=-1)
        response = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "access token expired"

    async def test_a_token_of_another_type_is_not_an_access_token(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        import jwt

        tokens = await signup(client, "typ@example.com")
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        for typ in ("refresh", None):
            other = (
                {**claims, "typ": typ} if typ else {k: v for k, v in claims.items() if k != "typ"}
            )
            token = jwt.encode(other, settings.secret(), "HS256")
            response = await client.get(
                "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401
            assert response.json()["detail"] == "not an access token"


class TestPerIpLimit:
    async def test_many_accounts_from_one_ip_are_429(
        self, tmp_path: Path, database_url: str
    ) -> None:
        settings = make_settings(
            tmp_path, database_url=database_url, login_attempts_per_ip=3, worker_in_process=False
        )
        app = create_app(settings)
        try:
            async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    codes = [
                        (
                            await c.post(
                                "/api/v1/auth/login",
                                json={"email": f"u{i}@example.com", "password": "whatever1"},
                            )
                        ).status_code
                        for i in range(4)
                    ]
        finally:
            await empty_tables(database_url)
        assert codes == [401, 401, 401, 429]


class TestCookies:
    async def test_refresh_reads_the_cookie(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/signup",
            json={"email": "jar@example.com", "password": "password123", "display_name": "J"},
        )
        first = response.json()
        assert client.cookies["th_refresh"] == first["refresh_token"]
        rotated = await client.post("/api/v1/auth/refresh")
        assert rotated.status_code == 200
        assert client.cookies["th_refresh"] == rotated.json()["refresh_token"]
        client.cookies.clear()
        missing = await client.post("/api/v1/auth/refresh")
        assert missing.status_code == 401
        assert missing.json()["detail"] == "refresh_token missing"

    async def test_logout_clears_the_cookies(self, client: httpx.AsyncClient) -> None:
        await client.post(
            "/api/v1/auth/signup",
            json={"email": "bye@example.com", "password": "password123", "display_name": "B"},
        )
        response = await client.post("/api/v1/auth/logout")
        assert response.status_code == 204
        assert "th_access" not in client.cookies
        assert (await client.get("/api/v1/auth/me")).status_code == 401


class TestSharedRevocation:
    async def test_log_out_on_one_instance_is_seen_by_another(
        self, tmp_path: Path, database_url: str
    ) -> None:
        """Two processes behind one port share Redis: a revoked session dies on both."""
        require("Redis", REDIS_URL, 6379)
        apps = [
            create_app(
                make_settings(
                    tmp_path / name,
                    database_url=database_url,
                    redis_url=REDIS_URL,
                    worker_in_process=False,
                )
            )
            for name in ("a", "b")
        ]
        try:
            async with (
                LifespanManager(apps[0], startup_timeout=30, shutdown_timeout=30),
                LifespanManager(apps[1], startup_timeout=30, shutdown_timeout=30),
            ):
                first, second = (
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://t")
                    for a in apps
                )
                async with first, second:
                    tokens = await signup(first, f"shared-{uuid.uuid4().hex[:8]}@example.com")
                    # The second instance has seen (and cached) the session as active.
                    assert (
                        await second.get("/api/v1/auth/me", headers=tokens["headers"])
                    ).status_code == 200
                    out = await first.post("/api/v1/auth/logout", headers=tokens["headers"])
                    assert out.status_code == 204
                    me = await second.get("/api/v1/auth/me", headers=tokens["headers"])
                    assert me.status_code == 401
                    assert me.json()["detail"] == "session revoked"
        finally:
            await empty_tables(database_url)
