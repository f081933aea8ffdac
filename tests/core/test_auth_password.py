"""Password change: signs out every other device, keeps the current one; profile updates."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fixtures.app import make_settings, oauth_only_account, signup
from townhall.core.auth.passwords import passwords_for
from townhall.core.platform import Platform


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    tokens: dict[str, str] = response.json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


class TestPasswordChange:
    async def test_other_devices_are_signed_out_not_this_one(
        self, client: httpx.AsyncClient
    ) -> None:
        here = await signup(client, "pw@example.com", password="old-password")
        laptop = await login(client, "pw@example.com", "old-password")
        phone = await login(client, "pw@example.com", "old-password")
        response = await client.post(
            "/api/v1/auth/password",
            json={"current_password": "old-password", "new_password": "new-password"},
            headers=here["headers"],
        )
        assert response.status_code == 204
        assert (await client.get("/api/v1/auth/me", headers=here["headers"])).status_code == 200
        kept = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": here["refresh_token"]}
        )
        assert kept.status_code == 200
        client.cookies.clear()
        for device in (laptop, phone):
            assert (await client.get("/api/v1/auth/me", headers=bearer(device))).status_code == 401
            refreshed = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": device["refresh_token"]}
            )
            assert refreshed.status_code == 401
        await login(client, "pw@example.com", "new-password")
        old = await client.post(
            "/api/v1/auth/login", json={"email": "pw@example.com", "password": "old-password"}
        )
        assert old.status_code == 401

    async def test_wrong_current_password_changes_nothing(self, client: httpx.AsyncClient) -> None:
        here = await signup(client, "keep@example.com", password="old-password")
        other = await login(client, "keep@example.com", "old-password")
        response = await client.post(
            "/api/v1/auth/password",
            json={"current_password": "not-it", "new_password": "new-password"},
            headers=here["headers"],
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "current password is wrong"
        assert (await client.get("/api/v1/auth/me", headers=bearer(other))).status_code == 200
        await login(client, "keep@example.com", "old-password")

    async def test_short_new_password_is_422(self, client: httpx.AsyncClient) -> None:
        here = await signup(client, "short@example.com")
        response = await client.post(
            "/api/v1/auth/password",
            json={"current_password": "password123", "new_password": "x"},
            headers=here["headers"],
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "new_password"


class TestFirstPassword:
    async def test_oauth_only_account_sets_a_password_without_a_current_one(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        here = await oauth_only_account(platform, "oauth-only@example.com")
        refused = await client.post(
            "/api/v1/auth/login",
            json={"email": "oauth-only@example.com", "password": "first-password"},
        )
        assert refused.status_code == 401
        response = await client.post(
            "/api/v1/auth/password", json={"new_password": "first-password"}, headers=bearer(here)
        )
        assert response.status_code == 204, response.text
        assert (await client.get("/api/v1/auth/me", headers=bearer(here))).status_code == 200
        await login(client, "oauth-only@example.com", "first-password")

    async def test_an_existing_password_still_needs_the_current_one(
        self, client: httpx.AsyncClient
    ) -> None:
        here = await signup(client, "has-pw@example.com", password="old-password")
        response = await client.post(
            "/api/v1/auth/password", json={"new_password": "new-password"}, headers=here["headers"]
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "current password is wrong"
        await login(client, "has-pw@example.com", "old-password")


class TestProfile:
    async def test_update_name_and_locale(self, client: httpx.AsyncClient) -> None:
        here = await signup(client, "prof@example.com")
        response = await client.patch(
            "/api/v1/auth/me",
            json={"display_name": "New Name", "locale": "ko-KR"},
            headers=here["headers"],
        )
        assert response.status_code == 200
        assert response.json()["display_name"] == "New Name"
        me = await client.get("/api/v1/auth/me", headers=here["headers"])
        assert (me.json()["display_name"], me.json()["locale"]) == ("New Name", "ko-KR")

    async def test_email_cannot_be_changed_here(self, client: httpx.AsyncClient) -> None:
        here = await signup(client, "fixed@example.com")
        response = await client.patch(
            "/api/v1/auth/me", json={"email": "other@example.com"}, headers=here["headers"]
        )
        assert response.status_code == 422
        me = await client.get("/api/v1/auth/me", headers=here["headers"])
        assert me.json()["email"] == "fixed@example.com"


class TestHashing:
    def test_argon2id_with_full_cost_outside_tests(self, tmp_path: Path) -> None:
        strong = passwords_for(make_settings(tmp_path, env="development"))
        hashed = strong.hash("correct horse")
        assert hashed.startswith("$argon2id$")
        assert "m=65536,t=3" in hashed
        assert strong.verify(hashed, "correct horse")
        assert not strong.verify(hashed, "wrong horse")

    def test_unknown_account_and_garbage_hashes_never_verify(self, tmp_path: Path) -> None:
        passwords = passwords_for(make_settings(tmp_path))
        assert not passwords.verify(None, "not-a-real-password")
        assert not passwords.verify("not-an-argon2-hash", "x")
        # Hashes carry their own cost, so either parameter set verifies the other's.
        cheap = passwords.hash("pw")
        assert passwords_for(make_settings(tmp_path, env="development")).verify(cheap, "pw")
