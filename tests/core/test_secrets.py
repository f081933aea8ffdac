"""Stored settings: secrets encrypted at rest, admin-only API, masking, key rotation, consumers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import text

from tests.core.test_jobs_dlq import admin_headers
from tests.fixtures.app import make_settings, signup
from tests.fixtures.fake_ai import (  # noqa: F401 (fixtures)
    FakeAI,
    chat_reply,
    fake_ai,
    fake_ai_server,
)
from townhall.core.auth.oauth import configured_providers
from townhall.core.config import ConfigurationError, Settings
from townhall.core.platform import Platform
from townhall.core.secrets import DECLARED, AppSettings, Keyring, UndecryptableSetting, service
from townhall.core.secrets.crypto import Sealed

API = "/api/v1/admin/settings"
AI_KEY = "sk-stored-0123456789-abcd"
KEYS_V1 = {"k1": "first key material"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_ai: FakeAI) -> Settings:  # noqa: F811
    return make_settings(
        tmp_path,
        database_url=database_url,
        worker_in_process=False,
        settings_encryption_keys=KEYS_V1,
        ai_base_url=fake_ai.openai_base_url,
        ai_api_key="sk-from-environment",
        ai_max_retries=0,
        oauth_google_client_id="google-client",
        # Refused at once: the log-in route answers 502 when Google is configured, 404 when not.
        oauth_google_metadata_url="http://127.0.0.1:9/.well-known/openid-configuration",
    )


@pytest.fixture
async def admin(client: httpx.AsyncClient, platform: Platform) -> dict[str, str]:
    """Request headers of a signed-in admin."""
    return await admin_headers(client, platform)


def restarted(platform: Platform, **overrides: Any) -> AppSettings:
    """The store a process started with other key settings would have, on the same database."""
    values = {**platform.settings.model_dump(), **overrides}
    return AppSettings(Settings(_env_file=None, **values), platform.db)  # type: ignore[call-arg]


async def put(client: httpx.AsyncClient, headers: dict[str, str], key: str, value: str) -> None:
    response = await client.put(f"{API}/{key}", json={"value": value}, headers=headers)
    assert response.status_code == 204, response.text


async def listing(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = await client.get(API, headers=headers)
    assert response.status_code == 200, response.text
    return {item["key"]: item for item in response.json()["items"]}


async def raw_rows(platform: Platform) -> dict[str, tuple[Any, ...]]:
    async with platform.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT key, value, ciphertext, key_id FROM app_settings"))
        return {row[0]: tuple(row[1:]) for row in rows}


class Answer(BaseModel):
    word: str


class TestAtRest:
    async def test_secret_is_stored_only_as_ciphertext(
        self, client: httpx.AsyncClient, platform: Platform, admin: dict[str, str]
    ) -> None:
        await put(client, admin, "ai_api_key", AI_KEY)
        await put(client, admin, "ai_model", "plain-model-name")
        rows = await raw_rows(platform)
        value, ciphertext, key_id = rows["ai_api_key"]
        assert (value, key_id) == (None, "k1")
        assert AI_KEY.encode() not in bytes(ciphertext)
        assert b"0123456789" not in bytes(ciphertext)
        assert rows["ai_model"] == ("plain-model-name", None, None)
        if platform.db.is_sqlite:
            # Nowhere in the database files either (WAL included).
            path = Path(platform.db.url.split("///", 1)[1])
            for file in (path, Path(f"{path}-wal")):
                if file.exists():
                    assert AI_KEY.encode() not in file.read_bytes()
        async with platform.db.session() as session:
            assert (
                await service.read_setting(session, platform.app_settings, "ai_api_key") == AI_KEY
            )
            assert await service.read_setting(session, platform.app_settings, "ai_model") == (
                "plain-model-name"
            )
            assert await service.read_setting(session, platform.app_settings, "ai_base_url") is None

    def test_a_row_cannot_take_another_rows_ciphertext(self, tmp_path: Path) -> None:
        keyring = Keyring.from_settings(make_settings(tmp_path))
        sealed = keyring.encrypt("ai_api_key", AI_KEY)
        assert keyring.decrypt("ai_api_key", sealed) == AI_KEY
        with pytest.raises(UndecryptableSetting, match="roboflow_api_key"):
            keyring.decrypt("roboflow_api_key", sealed)


class TestAdminApi:
    async def test_needs_an_admin(self, client: httpx.AsyncClient, platform: Platform) -> None:
        assert (await client.get(API)).status_code == 401
        user = await signup(client, "plain@example.com")
        assert (await client.get(API, headers=user["headers"])).status_code == 403
        put_ = await client.put(
            f"{API}/ai_api_key", json={"value": "x" * 20}, headers=user["headers"]
        )
        assert put_.status_code == 403
        assert (
            await client.delete(f"{API}/ai_api_key", headers=user["headers"])
        ).status_code == 403
        assert (await client.post(f"{API}/rotate", headers=user["headers"])).status_code == 403
        assert await raw_rows(platform) == {}

    async def test_unknown_key_and_bad_values_are_422(
        self, client: httpx.AsyncClient, platform: Platform, admin: dict[str, str]
    ) -> None:
        for method in ("PUT", "DELETE"):
            response = await client.request(
                method, f"{API}/database_url", json={"value": "sqlite://"}, headers=admin
            )
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert "unknown setting 'database_url'" in response.json()["detail"]
            assert "ai_api_key" in response.json()["detail"]  # names the settable ones
        for bad in ("", "   ", "line\nbreak", "x" * 4097):
            response = await client.put(f"{API}/ai_api_key", json={"value": bad}, headers=admin)
            assert response.status_code == 422, bad
            assert response.headers["content-type"] == "application/problem+json"
        assert await raw_rows(platform) == {}

    async def test_listing_masks_secrets(
        self, client: httpx.AsyncClient, platform: Platform, admin: dict[str, str]
    ) -> None:
        await put(client, admin, "ai_api_key", f"  {AI_KEY}\n".strip(" "))  # newline stripped
        await put(client, admin, "roboflow_api_key", "short")
        await put(client, admin, "ai_model", "gpt-x")
        response = await client.get(API, headers=admin)
        assert AI_KEY not in response.text
        assert "0123456789" not in response.text
        assert "sk-from-environment" not in response.text
        items = {item["key"]: item for item in response.json()["items"]}
        assert set(items) == set(DECLARED)
        assert response.json()["key_id"] == "k1"
        ai_key = items["ai_api_key"]
        assert (ai_key["source"], ai_key["masked"], ai_key["value"]) == (
            "database",
            "****abcd",
            None,
        )
        assert (ai_key["key_id"], ai_key["error"]) == ("k1", None)
        assert ai_key["updated_at"]
        assert items["roboflow_api_key"]["masked"] == "****"  # too short to show a tail
        assert (items["ai_model"]["value"], items["ai_model"]["masked"]) == ("gpt-x", None)
        assert items["ai_base_url"]["source"] == "settings"
        assert items["oauth_naver_client_secret"]["source"] == "unset"
        # Deleting restores the Settings value (masked too).
        assert (await client.delete(f"{API}/ai_api_key", headers=admin)).status_code == 204
        ai_key = (await listing(client, admin))["ai_api_key"]
        assert (ai_key["source"], ai_key["masked"]) == ("settings", "****ment")


class TestKeys:
    async def test_wrong_key_is_a_clear_error_not_a_500(
        self, client: httpx.AsyncClient, platform: Platform, admin: dict[str, str]
    ) -> None:
        await put(client, admin, "ai_api_key", AI_KEY)
        # Same key id, different key material: as if the key was changed without rotating.
        platform.app_settings = restarted(platform, settings_encryption_keys={"k1": "other"})
        async with platform.db.session() as session:
            with pytest.raises(UndecryptableSetting, match="cannot be decrypted with key id 'k1'"):
                await service.read_setting(session, platform.app_settings, "ai_api_key")
        item = (await listing(client, admin))["ai_api_key"]
        assert item["masked"] is None
        assert "cannot be decrypted" in item["error"]
        # Consumers fall back to the Settings value instead of failing.
        effective = await platform.app_settings.effective()
        assert effective.ai_api_key is not None
        assert effective.ai_api_key.get_secret_value() == "sk-from-environment"
        # A removed key id is named in the error too.
        platform.app_settings = restarted(
            platform, settings_encryption_keys={"k2": "x"}, settings_encryption_key_id="k2"
        )
        item = (await listing(client, admin))["ai_api_key"]
        assert "key id 'k1', which is not configured" in item["error"]
        # Rotation cannot re-encrypt what it cannot read: 409, and nothing changes.
        rotate = await client.post(f"{API}/rotate", headers=admin)
        assert rotate.status_code == 409, rotate.text
        assert "not configured" in rotate.json()["detail"]
        assert (await raw_rows(platform))["ai_api_key"][2] == "k1"

    async def test_rotation_keeps_old_values_readable(
        self, client: httpx.AsyncClient, platform: Platform, admin: dict[str, str]
    ) -> None:
        await put(client, admin, "ai_api_key", AI_KEY)
        await put(client, admin, "oauth_kakao_client_secret", "kakao-secret-value")
        platform.app_settings = restarted(
            platform,
            settings_encryption_keys={**KEYS_V1, "k2": "second key material"},
            settings_encryption_key_id="k2",
        )
        async with platform.db.session() as session:
            assert (
                await service.read_setting(session, platform.app_settings, "ai_api_key") == AI_KEY
            )
        await put(client, admin, "roboflow_api_key", "rf-new-key-0000-wxyz")
        assert {k: row[2] for k, row in (await raw_rows(platform)).items()} == {
            "ai_api_key": "k1",
            "oauth_kakao_client_secret": "k1",
            "roboflow_api_key": "k2",
        }
        rotate = await client.post(f"{API}/rotate", headers=admin)
        assert rotate.json() == {"rotated": 2, "key_id": "k2"}
        assert {row[2] for row in (await raw_rows(platform)).values()} == {"k2"}
        # k1 can now be retired.
        platform.app_settings = restarted(
            platform, settings_encryption_keys={"k2": "second key material"}
        )
        items = await listing(client, admin)
        assert items["ai_api_key"]["masked"] == "****abcd"
        assert items["roboflow_api_key"]["masked"] == "****wxyz"

    def test_key_settings_are_checked(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="SETTINGS_ENCRYPTION_KEY_ID"):
            Keyring.from_settings(
                make_settings(tmp_path, settings_encryption_keys={"a": "1", "b": "2"})
            )
        with pytest.raises(ConfigurationError, match="'c' is not a key id"):
            Keyring.from_settings(
                make_settings(
                    tmp_path, settings_encryption_keys={"a": "1"}, settings_encryption_key_id="c"
                )
            )
        # Without configured keys: `default`, derived from SECRET_KEY.
        keyring = Keyring.from_settings(make_settings(tmp_path))
        sealed = keyring.encrypt("ai_api_key", "v")
        assert sealed.key_id == "default"
        other = Keyring.from_settings(make_settings(tmp_path, secret_key="another-secret" * 3))
        with pytest.raises(UndecryptableSetting):
            other.decrypt("ai_api_key", Sealed("default", sealed.data))

    def test_declared_settings_are_string_fields(self) -> None:
        for name, spec in DECLARED.items():
            field = Settings.model_fields[name]
            expected = SecretStr if spec.secret else str
            assert expected in (field.annotation, *getattr(field.annotation, "__args__", ())), name
            assert spec.description


class TestConsumers:
    async def test_stored_ai_key_overrides_the_environment(
        self,
        client: httpx.AsyncClient,
        platform: Platform,
        admin: dict[str, str],
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        async def authorization() -> str:
            fake_ai.chat_script.append(chat_reply('{"word": "ok"}'))
            result = await platform.ai.complete_json(
                "say ok", Answer, offline=lambda _: Answer(word="offline"), task="test.secrets"
            )
            assert result.value.word == "ok"
            return fake_ai.chat_headers[-1]["authorization"]

        assert await authorization() == "Bearer sk-from-environment"
        await put(client, admin, "ai_api_key", AI_KEY)
        assert await authorization() == f"Bearer {AI_KEY}"
        assert (await client.delete(f"{API}/ai_api_key", headers=admin)).status_code == 204
        assert await authorization() == "Bearer sk-from-environment"

    async def test_another_process_sees_the_change(
        self, client: httpx.AsyncClient, platform: Platform, admin: dict[str, str]
    ) -> None:
        other = restarted(platform, settings_refresh_seconds=0)
        before = await other.effective()
        assert before is await other.effective()  # unchanged: the same object, nothing rebuilt
        await put(client, admin, "oauth_google_client_secret", "google-secret-value")
        after = await other.effective()
        assert after is not before
        assert after.oauth_google_client_secret is not None
        assert after.oauth_google_client_secret.get_secret_value() == "google-secret-value"
        assert [p.name for p in configured_providers(after)] == ["google"]
        assert platform.settings.oauth_google_client_secret is None  # the defaults stay

    async def test_oauth_provider_configured_through_the_table(
        self, client: httpx.AsyncClient, platform: Platform, admin: dict[str, str]
    ) -> None:
        assert (await client.get("/auth/oauth/google/login")).status_code == 404
        assert "oauth-google" not in (await client.get("/login")).text
        await put(client, admin, "oauth_google_client_secret", "google-secret-value")
        # The log-in and sign-up pages offer the provider configured only in the table.
        assert "oauth-google" in (await client.get("/login")).text
        assert "oauth-google" in (await client.get("/signup")).text
        # Now configured: the route tries Google's (unreachable, local) discovery document.
        response = await client.get("/auth/oauth/google/login")
        assert response.status_code == 502
        assert "Google cannot be reached" in response.text
