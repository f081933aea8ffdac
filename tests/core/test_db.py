"""The SQLite engine: WAL, busy timeout, and the write lock released when a connection closes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fixtures.services import POSTGRES_URL
from townhall.core.db import build_engine, ping_when_idle


async def test_closing_a_connection_with_a_half_read_returning_cursor_frees_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lock.db"
    engine = build_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE jobs (n INTEGER)"))
        await conn.execute(text("INSERT INTO jobs VALUES (1), (2), (3)"))
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("BEGIN")
        # What a cancelled claim leaves behind: one row read, the cursor still referenced.
        cursor = await driver.execute("UPDATE jobs SET n = n + 1 RETURNING n")
        assert await cursor.fetchone() is not None
        await driver.close()
        raw.invalidate()
    other = sqlite3.connect(path, timeout=0.5)
    try:
        other.execute("DELETE FROM jobs")
        other.commit()
        assert other.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    finally:
        other.close()
        del cursor
        await engine.dispose()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    """Readers never block the writer, and a second writer waits instead of failing at once."""
    path = tmp_path / "wal.db"
    engine = build_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() >= 5000
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        # WAL is a property of the file: a plain connection sees it too.
        other = sqlite3.connect(path)
        try:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            other.close()
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(("idle_seconds", "survives"), [(0.0, True), (3600.0, False)])
async def test_an_idle_connection_closed_by_the_server_is_replaced_before_use(
    postgres_database_url: str, idle_seconds: float, survives: bool
) -> None:
    engine = create_async_engine(postgres_database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = await asyncpg.connect(
            POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
        )
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)  # the backend is gone; the pool still holds its socket
        if survives:  # idle past the threshold: pinged, found dead, replaced
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
        else:  # recently used: not pinged (that is the saving), so the dead socket fails once
            with pytest.raises(DBAPIError):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
