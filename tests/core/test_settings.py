"""Settings: embedded defaults, production refusals naming the setting, the generated secret."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from townhall.core.config import (
    ConfigurationError,
    Settings,
    normalise_database_url,
    read_secret_file,
    settings_table,
    with_settings_table,
)
from townhall.main import create_app

README = Path(__file__).parents[2] / "README.md"
PRODUCTION: dict[str, Any] = {
    "env": "production",
    "secret_key": "a-production-secret-that-is-long-enough",
    "database_url": "postgresql://townhall@db:5432/townhall",
    "redis_url": "redis://cache:6379/0",
    "broker_url": "amqp://guest:guest@mq:5672/",
    "storage_url": "s3://townhall-blobs",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what each test passes counts: no TOWNHALL_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("TOWNHALL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class TestDefaults:
    def test_embedded_defaults_live_under_var(self, tmp_path: Path) -> None:
        s = settings(var_dir=tmp_path / "v")
        assert s.env == "development"
        assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'v' / 'townhall.db'}"
        assert s.is_sqlite
        assert s.storage_url == f"file://{(tmp_path / 'v' / 'blobs').resolve()}"
        assert s.redis_url is None
        assert s.broker_url is None
        assert s.max_body_bytes == 10 * 1024 * 1024
        assert s.access_token_minutes == 15
        assert not s.is_production
        s.check_production()  # development accepts every embedded default

    def test_environment_variables_use_the_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TOWNHALL_MAX_BODY_BYTES", "2048")
        monkeypatch.setenv("TOWNHALL_DATABASE_URL", "postgres://u@h/db")
        monkeypatch.setenv("MAX_BODY_BYTES", "1")
        s = settings()
        assert s.max_body_bytes == 2048
        assert s.database_url == "postgresql+asyncpg://u@h/db"

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
            ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
            ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
            ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ],
    )
    def test_database_urls_get_async_drivers(self, given: str, expected: str) -> None:
        assert normalise_database_url(given) == expected


class TestProduction:
    def test_complete_production_settings_pass(self) -> None:
        settings(**PRODUCTION).check_production()

    @pytest.mark.parametrize(
        ("missing", "named"),
        [
            ("secret_key", "TOWNHALL_SECRET_KEY"),
            ("database_url", "TOWNHALL_DATABASE_URL"),
            ("redis_url", "TOWNHALL_REDIS_URL"),
            ("broker_url", "TOWNHALL_BROKER_URL"),
            ("storage_url", "TOWNHALL_STORAGE_URL"),
        ],
    )
    def test_each_embedded_default_is_refused_by_name(
        self, tmp_path: Path, missing: str, named: str
    ) -> None:
        values = {**PRODUCTION, "var_dir": tmp_path / "var"}
        del values[missing]
        with pytest.raises(ConfigurationError) as refused:
            settings(**values).check_production()
        assert named in str(refused.value)
        others = {"TOWNHALL_SECRET_KEY", "TOWNHALL_DATABASE_URL", "TOWNHALL_REDIS_URL"} - {named}
        assert not any(other in str(refused.value) for other in others)

    def test_sqlite_url_is_refused_even_when_set(self) -> None:
        s = settings(**{**PRODUCTION, "database_url": "sqlite:///prod.db"})
        with pytest.raises(ConfigurationError, match="TOWNHALL_DATABASE_URL"):
            s.check_production()

    def test_every_missing_setting_is_listed_at_once(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError) as refused:
            settings(env="production", var_dir=tmp_path).check_production()
        for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BROKER_URL", "STORAGE_URL"):
            assert f"TOWNHALL_{name}" in str(refused.value)

    def test_create_app_refuses_to_start(self, tmp_path: Path) -> None:
        values = {**PRODUCTION, "var_dir": tmp_path}
        del values["redis_url"]
        with pytest.raises(ConfigurationError, match="TOWNHALL_REDIS_URL"):
            create_app(settings(**values))

    def test_production_never_generates_a_secret(self, tmp_path: Path) -> None:
        s = settings(env="production", var_dir=tmp_path)
        with pytest.raises(ConfigurationError, match="TOWNHALL_SECRET_KEY"):
            s.secret()
        assert not (tmp_path / "secret").exists()


class TestSecret:
    def test_generated_once_into_var_secret_and_reused(self, tmp_path: Path) -> None:
        var = tmp_path / "var"
        first = settings(var_dir=var).secret()
        path = var / "secret"
        assert path.read_text().strip() == first
        assert len(first) >= 32
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # Another process (a new Settings) signs with the same secret.
        assert settings(var_dir=var).secret() == first
        assert settings(var_dir=tmp_path / "elsewhere").secret() != first

    def test_configured_secret_wins_and_writes_nothing(self, tmp_path: Path) -> None:
        s = settings(var_dir=tmp_path, secret_key="configured-secret-value-long-enough")
        assert s.secret() == "configured-secret-value-long-enough"
        assert not (tmp_path / "secret").exists()

    def test_secret_is_not_shown_in_repr(self, tmp_path: Path) -> None:
        s = settings(var_dir=tmp_path, secret_key="do-not-print-me-anywhere-please")
        assert "do-not-print-me" not in repr(s)

    def test_processes_starting_together_share_one_secret(self, tmp_path: Path) -> None:
        var = tmp_path / "var"
        start = threading.Barrier(8)

        def first_start() -> str:
            start.wait()
            return settings(var_dir=var).secret()

        with ThreadPoolExecutor(8) as pool:
            seen = list(pool.map(lambda _: first_start(), range(8)))
        assert set(seen) == {(var / "secret").read_text()}
        assert stat.S_IMODE((var / "secret").stat().st_mode) == 0o600

    def test_an_existing_secret_is_kept(self, tmp_path: Path) -> None:
        (tmp_path / "secret").write_text("written-by-an-earlier-start\n")
        assert settings(var_dir=tmp_path).secret() == "written-by-an-earlier-start"
        assert (tmp_path / "secret").read_text() == "written-by-an-earlier-start\n"

    def test_an_empty_secret_file_is_refused_by_name(self, tmp_path: Path) -> None:
        (tmp_path / "secret").write_text("")
        with pytest.raises(ConfigurationError, match="TOWNHALL_SECRET_KEY"):
            read_secret_file(tmp_path / "secret", wait_seconds=0)


class TestReadme:
    def test_every_setting_is_in_the_readme(self) -> None:
        readme = README.read_text()
        missing = [n for n in Settings.model_fields if f"`TOWNHALL_{n.upper()}`" not in readme]
        assert missing == []
        assert all(field.description for field in Settings.model_fields.values())

    def test_the_readme_table_is_the_generated_one(self) -> None:
        readme = README.read_text()
        assert with_settings_table(readme) == readme, (
            "run: uv run python -m townhall.core.config README.md"
        )
        assert "| `TOWNHALL_MAX_BODY_BYTES` | `10485760` |" in settings_table()
        assert "| `TOWNHALL_REDIS_URL` | unset |" in settings_table()
