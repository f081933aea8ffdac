"""Core fixtures: a real multi-worker server for the rolling-reload tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.database import empty_tables
from tests.fixtures.serve import Workers, serve_workers


@pytest.fixture
async def workers(tmp_path: Path, sqlite_database_url: str) -> AsyncIterator[Workers]:
    """`townhall serve --workers 2` on SQLite and Redis; its rows are deleted afterwards."""
    try:
        with serve_workers(tmp_path, sqlite_database_url) as server:
            yield server
    finally:
        await empty_tables(sqlite_database_url)
