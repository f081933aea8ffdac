"""`townhall import-bookmarks FILE --user EMAIL` against a fresh SQLite database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.fixtures.app import make_settings
from typer.testing import CliRunner

import townhall.cli
from townhall.core.auth.service import AuthService
from townhall.core.config import Settings
from townhall.core.migrate import upgrade
from townhall.core.platform import build_platform
from townhall.modules.link.models import Link

BOOKMARKS = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<DL><p>
<DT><H3>Reading</H3>
<DL><p>
<DT><A HREF="https://example.com/a" ADD_DATE="1700000000">A</A>
<DT><A HREF="https://example.com/b">B</A>
<DT><A HREF="https://www.example.com/a/">A again</A>
</DL><p>
</DL><p>
"""


async def _create_user(settings: Settings) -> None:
    async with build_platform(settings) as platform, platform.db.session() as session:
        await AuthService(settings, platform.cache).create_user(
            session, email="cli@example.com", display_name="Cli", password="password123"
        )


async def _links(settings: Settings) -> int:
    async with build_platform(settings) as platform, platform.db.session() as session:
        return int((await session.execute(select(func.count()).select_from(Link))).scalar_one())


@pytest.fixture
def cli_settings(tmp_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    settings = make_settings(tmp_path, database_url=url, worker_in_process=False)
    asyncio.run(_create_user(settings))
    return settings


def test_import_bookmarks_command(
    cli_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(townhall.cli, "get_settings", lambda: cli_settings)
    path = tmp_path / "bookmarks.html"
    path.write_text(BOOKMARKS)
    runner = CliRunner()
    result = runner.invoke(
        townhall.cli.app, ["import-bookmarks", str(path), "--user", "cli@example.com"]
    )
    assert result.exit_code == 0, result.output
    assert "2 imported" in result.output
    assert "1 already saved" in result.output
    assert asyncio.run(_links(cli_settings)) == 2
    again = runner.invoke(
        townhall.cli.app, ["import-bookmarks", str(path), "--user", "cli@example.com"]
    )
    assert "0 imported" in again.output
    nobody = runner.invoke(
        townhall.cli.app, ["import-bookmarks", str(path), "--user", "x@example.com"]
    )
    assert nobody.exit_code == 1
    assert "no account" in nobody.output
    garbage = tmp_path / "garbage.html"
    garbage.write_text("nothing here")
    bad = runner.invoke(
        townhall.cli.app, ["import-bookmarks", str(garbage), "--user", "cli@example.com"]
    )
    assert bad.exit_code == 1
    assert "not a Netscape bookmark file" in bad.output
    missing = runner.invoke(
        townhall.cli.app,
        ["import-bookmarks", str(tmp_path / "nope.html"), "--user", "cli@example.com"],
    )
    assert missing.exit_code == 1
