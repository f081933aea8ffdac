"""The embedded (database) write-back buffer under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pycrdt
import pytest
from fastapi import FastAPI
from tests.collab.helpers import text_of, text_update
from tests.fixtures.app import signup

from townhall.collab.buffer import Batch
from townhall.collab.repository import CollabRepository


async def _stored_text(app: FastAPI, doc_id: str) -> str:
    async with app.state.platform.db.sessionmaker() as session:
        document = await CollabRepository(session).get_document("demo", doc_id)
    return text_of(document.state) if document is not None else ""


async def test_concurrent_saves_while_flushing_are_all_stored(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    engine = app.state.collab
    users = [await signup(client, f"w{i}@example.com") for i in range(5)]
    stop = asyncio.Event()
    flushes = 0

    async def flusher() -> None:
        nonlocal flushes
        while not stop.is_set():
            await engine.flush()
            flushes += 1
            await asyncio.sleep(0.01)

    async def writer(index: int, headers: dict[str, str]) -> pycrdt.Doc[Any]:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for n in range(30):
            response = await client.post(
                f"/api/v1/collab/demo/save?id={doc_id}",
                content=text_update(f"<{index}:{n}>", doc=doc),
                headers=headers,
            )
            assert response.status_code == 200, response.text
        return doc

    task = asyncio.create_task(flusher())
    docs = await asyncio.gather(*(writer(i, u["headers"]) for i, u in enumerate(users)))
    stop.set()
    await task
    await engine.flush()
    assert flushes > 1
    text = await _stored_text(app, doc_id)
    for i in range(len(users)):
        for n in range(30):
            assert f"<{i}:{n}>" in text
    expected: pycrdt.Doc[Any] = pycrdt.Doc()
    for doc in docs:
        expected.apply_update(doc.get_update())
    assert text == str(expected.get("text", type=pycrdt.Text))
    async with app.state.platform.db.sessionmaker() as session:
        assert await CollabRepository(session).pending_count("demo", doc_id) == 0


# SQLite has one writer at a time, so its row ids commit in order: only PostgreSQL can commit a
# smaller id after a larger one.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_smaller_id_committed_during_a_flush_is_kept(
    app: FastAPI, doc_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = app.state.collab.store
    db = store.db
    read_batch = store.buffer.read_batch
    async with db.sessionmaker() as slow:
        # This save takes the smaller id but commits only after the flusher's read ...
        await CollabRepository(slow).push_pending("demo", doc_id, text_update("late;"))
        async with db.session() as fast:
            await CollabRepository(fast).push_pending("demo", doc_id, text_update("early;"))

        async def read_then_commit_the_slow_save(*args: Any) -> Batch:
            batch: Batch = await read_batch(*args)
            await slow.commit()  # ... and before its delete.
            return batch

        monkeypatch.setattr(store.buffer, "read_batch", read_then_commit_the_slow_save)
        first = await store.flush()
    monkeypatch.undo()
    assert first.updates == 1
    assert await _stored_text(app, doc_id) == "early;"
    await store.flush()
    text = await _stored_text(app, doc_id)
    assert "early;" in text
    assert "late;" in text


async def test_state_endpoint_sees_saves_made_during_a_flush(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    saves = [
        client.post(
            f"/api/v1/collab/demo/save?id={doc_id}",
            content=text_update(f"[{n}]", doc=doc),
            headers=user["headers"],
        )
        for n in range(10)
    ]
    results = await asyncio.gather(app.state.collab.flush(), *saves)
    assert all(r.status_code == 200 for r in results[1:])
    state = await client.get(f"/api/v1/collab/demo/{doc_id}/state", headers=user["headers"])
    assert text_of(base64.b64decode(state.json()["state"])) == "".join(f"[{n}]" for n in range(10))
