"""The doc Alembic branch goes down alone (other apps keep their tables) and up again."""

from __future__ import annotations

import asyncio

from tests.core.test_migrations import _inspect, _tables, fresh_url  # noqa: F401  (fixture)

from townhall.core.migrate import downgrade, tables_of, upgrade

DOC_TABLES = {"doc_workspaces", "doc_members", "doc_pages", "doc_shares", "doc_favorites"}


async def test_doc_branch_down_and_up(fresh_url: str) -> None:  # noqa: F811
    assert tables_of("townhall.modules.doc") == DOC_TABLES
    await asyncio.to_thread(upgrade, fresh_url)
    everything = await _inspect(fresh_url, _tables)
    assert everything >= DOC_TABLES

    await asyncio.to_thread(downgrade, fresh_url, "doc@base")
    left = await _inspect(fresh_url, _tables)
    assert not left & DOC_TABLES, f"downgrade left doc tables: {left & DOC_TABLES}"
    assert left == everything - DOC_TABLES  # the other branches are untouched

    await asyncio.to_thread(upgrade, fresh_url)
    assert await _inspect(fresh_url, _tables) == everything
