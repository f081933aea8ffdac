"""The townhall command: migrate, createuser [--admin], demo [--if-empty]."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from townhall.cli import app
from townhall.core.auth.models import User
from townhall.core.auth.rbac import load_grants
from townhall.core.auth.repository import UserRepository
from townhall.core.config import get_settings
from townhall.core.platform import build_platform
from townhall.demo import DEMO_USERS

runner = CliRunner()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The CLI reads settings from the environment: an empty embedded database in tmp."""
    for name in list(os.environ):
        if name.startswith("TOWNHALL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOWNHALL_ENV", "test")
    monkeypatch.setenv("TOWNHALL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TOWNHALL_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def account(email: str) -> tuple[bool, set[str]] | None:
    """(exists, role names) of an account, read straight from the database."""

    async def read() -> tuple[bool, set[str]] | None:
        async with build_platform(get_settings()) as platform, platform.db.session() as session:
            user = await UserRepository(session).get_by_email(email)
            if user is None:
                return None
            grants = await load_grants(session, user.id)
            return user.password_hash is not None, {role for role, _ in grants.roles}

    return asyncio.run(read())


def test_migrate_creates_the_embedded_database(environment: Path) -> None:
    assert "up to date" in invoke("migrate")
    assert (environment / "var" / "townhall.db").exists()
    assert "up to date" in invoke("migrate")


def test_createuser_admin_and_plain() -> None:
    invoke("migrate")
    output = invoke("createuser", "root@example.com", "--admin", "--password", "root-password")
    assert "created root@example.com (admin)" in output
    assert account("root@example.com") == (True, {"user", "admin"})
    invoke("createuser", "pleb@example.com", "--name", "Pleb", "--password", "pleb-password")
    assert account("pleb@example.com") == (True, {"user"})


def test_createuser_refuses_short_passwords_and_duplicates() -> None:
    invoke("migrate")
    short = runner.invoke(app, ["createuser", "s@example.com", "--password", "short"])
    assert short.exit_code == 2
    assert "at least 8" in short.output
    assert account("s@example.com") is None
    invoke("createuser", "d@example.com", "--password", "password123")
    again = runner.invoke(app, ["createuser", "D@example.com", "--password", "password123"])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_demo_if_empty_loads_once() -> None:
    invoke("migrate")
    assert "demo data loaded" in invoke("demo", "--if-empty")
    for email, _, roles in DEMO_USERS:
        assert account(email) == (True, set(roles))
    assert "not loaded" in invoke("demo", "--if-empty")


def test_demo_if_empty_leaves_a_used_database_alone() -> None:
    invoke("migrate")
    invoke("createuser", "first@example.com", "--password", "password123")
    assert "not loaded" in invoke("demo", "--if-empty")
    assert account(DEMO_USERS[0][0]) is None


def refused(*args: str) -> str:
    """Run a command that must be refused: exit 2, one plain line, no traceback."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output + repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Record what serve would start instead of binding a port."""
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    return calls


class TestServeWorkers:
    def test_many_workers_on_the_embedded_cache_are_refused(
        self, uvicorn_calls: list[dict[str, object]]
    ) -> None:
        line = refused("serve", "--workers", "3", "--no-migrate")
        assert "TOWNHALL_REDIS_URL" in line
        assert "--workers 3" in line
        assert uvicorn_calls == []

    def test_many_workers_with_redis_start(
        self, monkeypatch: pytest.MonkeyPatch, uvicorn_calls: list[dict[str, object]]
    ) -> None:
        monkeypatch.setenv("TOWNHALL_REDIS_URL", "redis://127.0.0.1:6379/0")
        get_settings.cache_clear()
        invoke("serve", "--workers", "3", "--no-migrate")
        assert [call["workers"] for call in uvicorn_calls] == [3]

    def test_one_worker_needs_no_redis(self, uvicorn_calls: list[dict[str, object]]) -> None:
        invoke("serve", "--no-migrate")
        assert [call["workers"] for call in uvicorn_calls] == [1]


class TestProductionRefusals:
    @pytest.mark.parametrize(
        "command",
        [
            ["serve", "--no-migrate"],
            ["migrate"],
            ["createuser", "x@example.com", "--password", "password123"],
            ["demo"],
            ["jobs", "dlq", "list"],
        ],
    )
    def test_every_command_refuses_embedded_defaults(
        self,
        environment: Path,
        monkeypatch: pytest.MonkeyPatch,
        uvicorn_calls: list[dict[str, object]],
        command: list[str],
    ) -> None:
        monkeypatch.setenv("TOWNHALL_ENV", "production")
        get_settings.cache_clear()
        line = refused(*command)
        assert line.startswith("error: production mode needs these settings:")
        for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BROKER_URL", "STORAGE_URL"):
            assert f"TOWNHALL_{name}" in line
        assert not (environment / "var" / "townhall.db").exists()
        assert uvicorn_calls == []

    def test_help_still_works(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TOWNHALL_ENV", "production")
        get_settings.cache_clear()
        assert "--workers" in invoke("serve", "--help")


def test_the_readme_lists_every_demo_account() -> None:
    """Whatever `demo` creates, in any app's demo loader, a newcomer can find in the README."""
    invoke("migrate")
    invoke("demo")

    async def emails() -> list[str]:
        async with build_platform(get_settings()) as platform, platform.db.session() as session:
            return list((await session.execute(select(User.email))).scalars())

    created = asyncio.run(emails())
    assert len(created) > len(DEMO_USERS)  # apps add their own (reports: an officer)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    demo_table = readme[readme.index("Demo accounts") : readme.index("Other targets")]
    assert [email for email in created if f"| {email} |" not in demo_table] == []
