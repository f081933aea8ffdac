"""DATABASE_REPLICA_URL: lists and search read the replica; a writer reads its own writes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from tests.fixtures.app import make_settings, signup
from tests.fixtures.database import empty_tables
from townhall.main import create_app

LAG = 0.3  # the read-your-writes window these tests wait out
READER_ROLE = "townhall_test_replica_reader"


async def read_only_view(database_url: str) -> str:
    """A URL that reads `database_url` and refuses every write, as a hot standby does."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///file:{database_url.split(':///', 1)[1]}?mode=ro&uri=true"
    plain = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(plain)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", READER_ROLE)
        if not exists:
            await conn.execute(f"CREATE ROLE {READER_ROLE} LOGIN")
        await conn.execute(f"ALTER ROLE {READER_ROLE} SET default_transaction_read_only = on")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER_ROLE}")
    finally:
        await conn.close()
    _, rest = database_url.split("://", 1)
    return f"postgresql+asyncpg://{READER_ROLE}@{rest.split('@', 1)[1]}"


@asynccontextmanager
async def replica_app(
    tmp_path: Path, database_url: str, replica_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on `database_url` reading lists from `replica_url`; an HTTP client to it."""
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        database_replica_url=replica_url,
        database_replica_lag_seconds=LAG,
    )
    app = create_app(settings)
    try:
        async with (
            LifespanManager(app, startup_timeout=30, shutdown_timeout=30),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            yield http
    finally:
        await empty_tables(database_url)


async def test_every_list_and_search_runs_on_a_read_only_replica(
    database_url: str, tmp_path: Path
) -> None:
    replica = await read_only_view(database_url)
    async with replica_app(tmp_path, database_url, replica) as http:
        await lists_and_searches_succeed(http)


async def lists_and_searches_succeed(http: httpx.AsyncClient) -> None:
    ann = (await signup(http, "ann@example.com"))["headers"]
    made = await http.post("/api/v1/links", json={"url": "https://example.com/a"}, headers=ann)
    assert made.status_code == 201, made.text
    space = await http.post("/api/v1/doc/workspaces", json={"name": "Team"}, headers=ann)
    assert space.status_code == 201, space.text
    workspace = space.json()["id"]
    page = await http.post(
        f"/api/v1/doc/workspaces/{workspace}/pages", json={"title": "Plans"}, headers=ann
    )
    assert page.status_code == 201, page.text
    book = await http.post("/api/v1/sheet/workbooks", json={"name": "Budget"}, headers=ann)
    assert book.status_code == 201, book.text
    coll = await http.post(
        "/api/v1/sync/collections", json={"name": "Board", "slug": "board"}, headers=ann
    )
    assert coll.status_code == 201, coll.text
    doc = await http.post(
        "/api/v1/sync/collections/board/documents", json={"id": "d", "data": {}}, headers=ann
    )
    assert doc.status_code == 201, doc.text
    await asyncio.sleep(LAG * 2)  # out of the read-your-writes window: reads hit the replica

    reads = {
        "/api/v1/links": lambda body: body["items"][0]["url"] == "https://example.com/a",
        "/api/v1/tags": lambda body: body == [],
        "/api/v1/search?q=example": lambda body: "items" in body,
        "/api/v1/doc/workspaces": lambda body: body[0]["name"] == "Team",
        f"/api/v1/doc/workspaces/{workspace}/pages": lambda body: body[0]["title"] == "Plans",
        f"/api/v1/doc/workspaces/{workspace}/trash": lambda body: body == [],
        "/api/v1/doc/shared": lambda body: body == [],
        "/api/v1/doc/favorites": lambda body: body == [],
        "/api/v1/doc/search?q=Plans": lambda body: body[0]["title"] == "Plans",
        "/api/v1/sheet/workbooks": lambda body: body[0]["name"] == "Budget",
        "/api/v1/sync/collections": lambda body: body[0]["slug"] == "board",
        "/api/v1/sync/collections/board/documents": lambda body: body["items"][0]["id"] == "d",
        "/api/v1/reports?queue=mine": lambda body: body["total"] == 0,
        "/api/v1/reports/notifications": lambda body: body == [],
        "/api/v1/reports/nearby?lat=35.8&lng=127.1": lambda body: body == [],
    }
    for path, check in reads.items():
        response = await http.get(path, headers=ann)
        assert response.status_code == 200, (path, response.text)
        assert check(response.json()), (path, response.json())


async def test_the_writer_reads_the_primary_until_the_lag_has_passed(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    stale = tmp_path / "stale-replica.db"  # a lagging copy, made with SQLite's backup API
    async with replica_app(tmp_path, sqlite_database_url, f"sqlite+aiosqlite:///{stale}") as http:
        await the_writer_reads_its_writes(http, sqlite_database_url, stale)


async def the_writer_reads_its_writes(
    http: httpx.AsyncClient, primary_url: str, stale: Path
) -> None:
    ann = (await signup(http, "ann@example.com"))["headers"]
    bob = (await signup(http, "bob@example.com"))["headers"]
    with (
        sqlite3.connect(primary_url.split(":///", 1)[1]) as primary,
        sqlite3.connect(stale) as copy,
    ):
        primary.backup(copy)  # the replica stops here: it "lags" behind every later write
    created = await http.post(
        "/api/v1/sync/collections", json={"name": "Board", "slug": "board"}, headers=ann
    )
    assert created.status_code == 201, created.text

    mine = await http.get("/api/v1/sync/collections", headers=ann)
    assert [c["slug"] for c in mine.json()] == ["board"]  # read-your-writes: the primary
    await asyncio.sleep(LAG * 2)
    later = await http.get("/api/v1/sync/collections", headers=ann)
    assert later.json() == []  # the window is over: the (stale) replica answers
    # A user who wrote nothing reads the replica at once.
    shared = await http.post(
        "/api/v1/sync/collections/board/members",
        json={"email": "bob@example.com", "role": "read"},
        headers=ann,
    )
    assert shared.status_code == 201, shared.text
    assert (await http.get("/api/v1/sync/collections", headers=bob)).json() == []
