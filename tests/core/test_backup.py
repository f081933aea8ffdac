"""townhall backup / restore: round trips (SQLite + files, PostgreSQL + S3), refusals, errors."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from tests.fixtures.app import make_settings
from tests.fixtures.database import _create_pg_database, _drop_pg_database, empty_tables
from tests.fixtures.s3 import S3Server, s3_server  # noqa: F401 (the fixture)
from townhall.cli import app
from townhall.core.auth.models import User
from townhall.core.auth.service import AuthService
from townhall.core.backup import BackupError, create_backup, restore_backup
from townhall.core.backup.database import dump_database
from townhall.core.config import Settings, get_settings
from townhall.core.db import Base
from townhall.core.migrate import import_all_models
from townhall.core.platform import build_platform
from townhall.core.storage import build_storage
from townhall.modules.link.models import Link
from townhall.modules.link.schemas import LinkCreate
from townhall.modules.link.service import LinkService

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
OBJECTS = {"reports/12/사진 1.png": (PNG, "image/png"), "doc/notes.txt": (b"hello", "text/plain")}


@dataclass(frozen=True)
class Case:
    db: str
    source_url: str
    source_storage: dict[str, str]
    target_storage: dict[str, str]


@pytest.fixture(
    params=[
        pytest.param(("sqlite", "file"), id="sqlite-files"),
        pytest.param(("postgres", "s3"), id="postgres-s3", marks=pytest.mark.postgres),
    ]
)
def case(request: pytest.FixtureRequest) -> Case:
    """The source database and a source and a target store (two buckets on S3)."""
    db, store = request.param
    url: str = request.getfixturevalue(f"{db}_database_url")
    if store == "file":
        return Case(db, url, {}, {})
    server: S3Server = request.getfixturevalue("s3_server")
    return Case(
        db,
        url,
        server.settings_overrides(server.create_bucket()),
        server.settings_overrides(server.create_bucket()),
    )


async def seed(settings: Settings) -> None:
    """A user with a tagged link (and its queued pipeline job) and two objects."""
    async with build_platform(settings) as platform:
        async with platform.db.session() as session:
            user = await AuthService(platform.settings, platform.cache).create_user(
                session, email="ann@example.com", display_name="Ann", password="password123"
            )
            await LinkService(session, platform).save(
                user.id, LinkCreate(url="https://example.com/a", note="über", tags=["news"])
            )
        for key, (data, content_type) in OBJECTS.items():
            await platform.storage.put(key, data, content_type)


async def snapshot(settings: Settings) -> dict[str, Any]:
    """Row counts per townhall table, a few field values and every object with its type."""
    import_all_models()
    engine = create_async_engine(str(settings.database_url))
    async with engine.connect() as conn:
        existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        counts = {
            t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            for t in Base.metadata.sorted_tables
            if t.name in existing
        }
        users = (await conn.execute(select(User.email, User.password_hash))).all()
        links = (await conn.execute(select(Link.url, Link.note, Link.user_id))).all()
    await engine.dispose()
    storage = build_storage(settings)
    objects = {}
    async for key in storage.list_all():
        blob = await storage.get_blob(key)
        objects[key] = (blob.data, blob.content_type)
    return {"counts": counts, "users": users, "links": links, "objects": objects}


async def test_backup_restores_into_a_fresh_database_and_storage(
    case: Case, tmp_path: Path
) -> None:
    source = make_settings(
        tmp_path / "source",
        database_url=case.source_url,
        worker_in_process=False,
        **case.source_storage,
    )
    target_db = f"test_restore_{uuid.uuid4().hex[:12]}"
    try:
        await seed(source)
        before = await snapshot(source)
        backup = await create_backup(source, tmp_path)
        assert backup.path.parent == tmp_path
        assert backup.path.name.endswith(".tar.gz")
        assert backup.manifest.object_count == 2
        if case.db == "postgres":
            target_url = await _create_pg_database(target_db)
        else:
            target_url = f"sqlite+aiosqlite:///{tmp_path / 'target' / 'restored.db'}"
        target = make_settings(tmp_path / "target", database_url=target_url, **case.target_storage)
        result = await restore_backup(target, backup.path)
        after = await snapshot(target)
    finally:
        await empty_tables(case.source_url)
        if case.db == "postgres":
            await _drop_pg_database(target_db)
    counts = before["counts"]
    assert (counts["users"], counts["links"], counts["link_tags"]) == (1, 1, 1)
    assert counts["jobs"] >= 1
    assert after == before
    assert before["objects"] == OBJECTS
    assert not result.upgraded
    assert result.revisions == backup.manifest.alembic_revisions


@pytest.fixture
def sqlite_backup(tmp_path: Path, sqlite_database_url: str) -> Path:
    """An archive of the seeded session SQLite database and local files."""
    source = make_settings(
        tmp_path / "source", database_url=sqlite_database_url, worker_in_process=False
    )

    async def make() -> Path:
        try:
            await seed(source)
            return (await create_backup(source, tmp_path / "b.tar.gz")).path
        finally:
            await empty_tables(sqlite_database_url)

    return asyncio.run(make())


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The CLI reads settings from the environment: an embedded target under tmp/cli."""
    for name in list(os.environ):
        if name.startswith("TOWNHALL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TOWNHALL_ENV", "test")
    monkeypatch.setenv("TOWNHALL_VAR_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("TOWNHALL_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield tmp_path / "cli"
    get_settings.cache_clear()


def test_cli_restore_refuses_a_target_with_data_unless_forced(
    sqlite_backup: Path, cli_env: Path
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["restore", str(sqlite_backup)])
    assert first.exit_code == 0, first.output
    assert "restored 2 objects" in first.output
    again = runner.invoke(app, ["restore", str(sqlite_backup)])
    assert again.exit_code == 1
    assert "target database is not empty" in again.output
    assert "--force" in again.output
    forced = runner.invoke(app, ["restore", str(sqlite_backup), "--force"])
    assert forced.exit_code == 0, forced.output
    # And the restored data backs up again from the CLI.
    second = runner.invoke(app, ["backup", str(cli_env / "again.tar.gz")])
    assert second.exit_code == 0, second.output
    assert "(2 objects)" in second.output
    exists = runner.invoke(app, ["backup", str(cli_env / "again.tar.gz")])
    assert exists.exit_code == 1
    assert "already exists" in exists.output


def rewrite(archive: Path, out: Path, change: dict[str, bytes]) -> None:
    """A copy of the archive with some members' bytes replaced (the manifest left as it was)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            reader = src.extractfile(member)
            assert reader is not None
            data = change.get(member.name, reader.read())
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


async def test_corrupted_or_unreadable_archives_change_nothing(
    sqlite_backup: Path, tmp_path: Path
) -> None:
    target_path = tmp_path / "target" / "restored.db"
    target = make_settings(tmp_path / "target", database_url=f"sqlite+aiosqlite:///{target_path}")
    corrupted = tmp_path / "corrupted.tar.gz"
    rewrite(sqlite_backup, corrupted, {"objects/reports/12/사진 1.png": PNG[:-1] + b"!"})
    with pytest.raises(BackupError, match=r"corrupted: the checksum of 'objects/reports/12/사진"):
        await restore_backup(target, corrupted)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(sqlite_backup.read_bytes()[:-200])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a backup")
    for unreadable in (truncated, garbage):
        with pytest.raises(BackupError, match="cannot read the backup archive"):
            await restore_backup(target, unreadable)
    assert not target_path.exists()
    assert [k async for k in build_storage(target).list_all()] == []


async def test_missing_postgres_client_tools_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match="pg_dump was not found on PATH"):
        await dump_database("postgresql+asyncpg://u:p@127.0.0.1/x", tmp_path / "d.dump")


async def test_list_all_skips_local_sidecars(tmp_path: Path) -> None:
    storage = build_storage(make_settings(tmp_path))
    await storage.put("a/b.png", PNG, "image/png")
    await storage.put("c.txt", b"x", "text/plain")
    assert sorted([k async for k in storage.list_all()]) == ["a/b.png", "c.txt"]
