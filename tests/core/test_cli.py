"""The townhall command: migrate, createuser [--admin], demo [--if-empty]."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from townhall.cli import app
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
