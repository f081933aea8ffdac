"""A dead or restarting PostgreSQL raises DatabaseUnavailable (a 503), never a bare driver error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.fixtures.postgres_server import PostgresServer, postgres_server  # noqa: F401
from tests.fixtures.services import free_port
from townhall.core.db import DatabaseUnavailable, build_engine

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of a townhall engine (its error translation included), disposed after."""
    engine = build_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def test_a_refused_connection_is_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable) as raised:
        async with connection(f"postgresql://postgres@127.0.0.1:{free_port()}/x") as conn:
            await conn.execute(text("SELECT 1"))
    assert raised.value.status_code == 503
    assert raised.value.headers["Retry-After"]
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


async def test_a_connection_lost_mid_session_is_unavailable_then_replaced(
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    async with connection(postgres_server.url()) as conn:
        await conn.execute(text("SELECT 1"))
        postgres_server.kill()
        with pytest.raises(DatabaseUnavailable):
            await conn.execute(text("SELECT 1"))
        postgres_server.start()
        await conn.rollback()
        # The pool dropped the dead connection: the next use is a fresh, working one.
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1


async def test_a_cancelled_query_stays_cancelled(
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    async with connection(postgres_server.url()) as conn:
        query = asyncio.create_task(conn.execute(text("SELECT pg_sleep(10)")))
        await asyncio.sleep(0.3)
        query.cancel()
        with pytest.raises(asyncio.CancelledError):
            await query
