"""Every Alembic branch goes up, down to base and up again, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fixtures.database import _create_pg_database, _drop_pg_database
from tests.fixtures.services import POSTGRES_URL, require
from townhall.core.db import Base
from townhall.core.migrate import alembic_config, downgrade, tables_of, upgrade

CORE_TABLES = {
    "users",
    "roles",
    "permissions",
    "role_permissions",
    "user_roles",
    "auth_sessions",
    "oauth_accounts",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database, not the session's migrated one."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    require("PostgreSQL", POSTGRES_URL, 5432)
    name = f"townhall_migrations_{os.getpid()}"
    url = await _create_pg_database(name)
    yield url
    await _drop_pg_database(name)


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _core_drift(conn: Connection) -> list[Any]:
    """Differences between the auth models and the migrated auth tables."""
    own = tables_of("townhall.core.auth")
    metadata = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        if table.name in own:
            table.to_metadata(metadata)
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "include_object": lambda obj, name, type_, reflected, other: (
                type_ != "table" or name in own
            ),
        },
    )
    return list(compare_metadata(context, metadata))


async def test_up_down_up(fresh_url: str) -> None:
    await asyncio.to_thread(upgrade, fresh_url)
    tables = await _inspect(fresh_url, _tables)
    assert tables >= CORE_TABLES | {"alembic_version"}
    model_tables = {t.name for t in Base.metadata.sorted_tables}
    assert model_tables <= tables, f"models without a migration: {model_tables - tables}"

    await asyncio.to_thread(downgrade, fresh_url, "base")
    left = await _inspect(fresh_url, _tables)
    assert left <= {"alembic_version"}, f"downgrade left tables behind: {left}"

    await asyncio.to_thread(upgrade, fresh_url)
    assert await _inspect(fresh_url, _tables) >= CORE_TABLES


async def test_upgrade_is_idempotent_and_matches_the_models(fresh_url: str) -> None:
    await asyncio.to_thread(upgrade, fresh_url)
    await asyncio.to_thread(upgrade, fresh_url)
    assert await _inspect(fresh_url, _core_drift) == []


def test_each_branch_has_one_head_and_starts_from_core() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    heads = script.get_heads()
    branches = [script.get_revision(h).branch_labels for h in heads]
    labels = [label for group in branches for label in group]
    assert "core" in labels
    assert len(labels) == len(set(labels)), f"a branch has several heads: {heads}"
    for base in script.get_bases():
        revision = script.get_revision(base)
        if base != "0001_core":
            assert "0001_core" in (revision.dependencies or ()), f"{base} skips 0001_core"
