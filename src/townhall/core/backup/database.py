"""Database dumps: pg_dump/pg_restore (custom format) for PostgreSQL, the backup API for SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

from townhall.core.errors import AppError

Dialect = Literal["postgresql", "sqlite"]
DUMP_NAMES: dict[Dialect, str] = {"postgresql": "database.dump", "sqlite": "database.sqlite"}


class BackupError(AppError):
    """A backup or restore that cannot go on; the message says why and what to do."""


def dialect_of(url: str) -> Dialect:
    """Which dump format serves this SQLAlchemy URL."""
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise BackupError(f"backups support SQLite and PostgreSQL databases, not {url.split(':')[0]}")


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URL for pg_dump/pg_restore, and the PGPASSWORD to pass beside it."""
    parsed = make_url(url)
    query = dict(parsed.query)
    ssl = query.pop("ssl", None)
    if isinstance(ssl, str):
        query["sslmode"] = ssl  # asyncpg's ssl= takes libpq's sslmode values
    # The password goes in the environment: a command line is visible to every local user.
    plain = parsed.set(drivername="postgresql", password=None, query=query)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    return plain.render_as_string(hide_password=False), env


def sqlite_path(url: str) -> Path:
    """The file of a SQLite URL (in-memory databases cannot be backed up or restored)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore")
    return Path(database)


async def _run(tool: str, url: str, *args: str) -> None:
    binary = shutil.which(tool)
    if binary is None:
        raise BackupError(
            f"{tool} was not found on PATH: install the PostgreSQL client tools "
            "(e.g. apt install postgresql-client) of the server's major version or newer"
        )
    dsn, password = libpq_url(url)
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--dbname={dsn}",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **password},
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip()[-2000:]
        raise BackupError(f"{tool} failed (exit {process.returncode}): {detail}")


def _sqlite_copy(source: Path, target: Path) -> None:
    # The backup API copies a consistent snapshot even while other connections write.
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


async def dump_database(url: str, path: Path) -> None:
    """Write a consistent copy of the database at url to path."""
    if dialect_of(url) == "postgresql":
        await _run("pg_dump", url, "--format=custom", f"--file={path}")
        return
    source = sqlite_path(url)
    if not source.exists():
        raise BackupError(f"the SQLite database {source} does not exist")
    await asyncio.to_thread(_sqlite_copy, source, path)


async def restore_database(url: str, path: Path) -> None:
    """Replace the database at url by the dump at path."""
    if dialect_of(url) == "postgresql":
        # --clean drops what a migrated but empty target already has, in one transaction.
        await _run(
            "pg_restore",
            url,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(path),
        )
        return
    await asyncio.to_thread(_sqlite_copy, path, sqlite_path(url))
