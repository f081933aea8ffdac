"""The Redis write-back buffer under concurrency, two flushers, kill -9 and a Redis restart."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from tests.collab.helpers import text_of, text_update
from tests.fixtures.app import make_settings, signup
from tests.fixtures.database import empty_tables
from tests.fixtures.services import REDIS_URL, free_port, require

from townhall.collab.buffer import RedisBuffer
from townhall.collab.repository import CollabRepository
from townhall.collab.service import CollabStore
from townhall.main import create_app

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


async def stored_text(app: FastAPI, doc_id: str) -> str:
    async with app.state.platform.db.sessionmaker() as session:
        document = await CollabRepository(session).get_document("demo", doc_id)
    return text_of(document.state) if document is not None else ""


async def test_save_answers_with_state_vector_and_buffers_in_redis(
    redis_client: httpx.AsyncClient, redis_app: FastAPI, doc_id: str
) -> None:
    user = await signup(redis_client, "ann@example.com")
    update = text_update("hi")
    response = await redis_client.post(
        f"/api/v1/doc/save?id={doc_id}", content=update, headers=user["headers"]
    )
    assert response.status_code == 403  # the doc app has not registered its hooks
    response = await redis_client.post(
        f"/api/v1/collab/demo/save?id={doc_id}", content=update, headers=user["headers"]
    )
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["state_vector"]) == pycrdt.get_state(update)
    engine = redis_app.state.collab
    prefix = engine.settings.collab_key_prefix
    redis = engine.redis
    assert await redis.lrange(f"{prefix}demos:demo:{doc_id}", 0, -1) == [update]
    assert await redis.sismember(f"{prefix}collab:dirty", f"demo:{doc_id}")
    await engine.flush()
    assert await redis.exists(f"{prefix}demos:demo:{doc_id}") == 0
    assert not await redis.sismember(f"{prefix}collab:dirty", f"demo:{doc_id}")
    assert await stored_text(redis_app, doc_id) == "hi"


async def test_1000_concurrent_saves_while_two_flushers_run_every_100ms(
    redis_client: httpx.AsyncClient, redis_app: FastAPI, doc_id: str
) -> None:
    engine = redis_app.state.collab
    users = [await signup(redis_client, f"u{i}@example.com") for i in range(10)]
    # A second flusher with its own store object, as another process would have.
    other = CollabStore(
        engine.platform.db,
        engine.settings,
        RedisBuffer(engine.redis, engine.settings.collab_key_prefix),
    )
    stop = asyncio.Event()
    flushes = [0, 0]

    async def flusher(store: CollabStore, index: int) -> None:
        while not stop.is_set():
            await store.flush()
            flushes[index] += 1
            await asyncio.sleep(0.1)

    async def client(index: int, headers: dict[str, str]) -> pycrdt.Doc[Any]:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for n in range(100):
            update = text_update(f"<{index}:{n}>", doc=doc)
            # Half the saves are incremental updates, half whole snapshots (a leader's save).
            body = update if n % 2 else doc.get_update()
            response = await redis_client.post(
                f"/api/v1/collab/demo/save?id={doc_id}", content=body, headers=headers
            )
            assert response.status_code == 200, response.text
        return doc

    tasks = [asyncio.create_task(flusher(engine.store, 0)), asyncio.create_task(flusher(other, 1))]
    docs = await asyncio.gather(*(client(i, u["headers"]) for i, u in enumerate(users)))
    stop.set()
    await asyncio.gather(*tasks)
    await engine.flush()
    assert min(flushes) > 1

    expected: pycrdt.Doc[Any] = pycrdt.Doc()
    for doc in docs:
        expected.apply_update(doc.get_update())
    text = await stored_text(redis_app, doc_id)
    assert text == str(expected.get("text", type=pycrdt.Text))
    for i in range(10):
        for n in range(100):
            assert f"<{i}:{n}>" in text
    prefix = engine.settings.collab_key_prefix
    assert await engine.redis.exists(f"{prefix}demos:demo:{doc_id}") == 0
    assert await engine.redis.scard(f"{prefix}collab:dirty") == 0


@pytest.fixture
async def sqlite_redis_app(tmp_path: Path, sqlite_database_url: str) -> AsyncIterator[FastAPI]:
    """Process-killing tests run once, on SQLite (the flusher code path is the same)."""
    require("Redis", REDIS_URL, 6379)
    settings = make_settings(
        tmp_path,
        database_url=sqlite_database_url,
        redis_url=REDIS_URL,
        collab_flush_seconds=0,
        worker_in_process=False,
        collab_key_prefix=f"test-{uuid.uuid4().hex[:12]}:",
    )
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application
    await empty_tables(sqlite_database_url)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["before-commit", "after-commit"])
async def test_flusher_killed_mid_flush_loses_nothing(
    sqlite_redis_app: FastAPI, doc_id: str, stage: str
) -> None:
    redis_app = sqlite_redis_app
    transport = httpx.ASGITransport(app=redis_app)
    redis_client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    engine = redis_app.state.collab
    settings = engine.settings
    user = await signup(redis_client, "ann@example.com")
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for n in range(20):
        response = await redis_client.post(
            f"/api/v1/collab/demo/save?id={doc_id}",
            content=text_update(f"[{n}]", doc=doc),
            headers=user["headers"],
        )
        assert response.status_code == 200
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.collab.flusher_proc",
            str(settings.database_url),
            str(settings.redis_url),
            settings.collab_key_prefix,
            stage,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line.strip() == b"HANG"
        # Saves keep arriving while the flusher hangs mid-flush.
        for n in range(20, 30):
            response = await redis_client.post(
                f"/api/v1/collab/demo/save?id={doc_id}",
                content=text_update(f"[{n}]", doc=doc),
                headers=user["headers"],
            )
            assert response.status_code == 200
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
    await asyncio.sleep(1.2)  # the dead flusher's lock expires
    report = await engine.flush()
    assert report.documents == 1
    text = await stored_text(redis_app, doc_id)
    assert text == "".join(f"[{n}]" for n in range(30))
    assert await engine.redis.scard(f"{settings.collab_key_prefix}collab:dirty") == 0
    await redis_client.aclose()


@pytest.fixture
def aof_redis(tmp_path: Path) -> Any:
    """A throwaway redis-server with appendonly yes, restartable on the same port and dir."""
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()

    class Server:
        process: subprocess.Popen[bytes] | None = None
        url = f"redis://127.0.0.1:{port}/0"

        def start(self) -> None:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--dir",
                    str(data),
                ],
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                probe = subprocess.run(
                    ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
                )
                if probe.stdout.strip() == b"PONG":
                    return
                time.sleep(0.05)
            raise RuntimeError("redis-server did not start")

        def kill(self) -> None:
            if self.process is not None:
                self.process.kill()
                self.process.wait()
                self.process = None

    server = Server()
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def aof_app(
    tmp_path: Path, sqlite_database_url: str, aof_redis: Any
) -> AsyncIterator[FastAPI]:
    database_url = sqlite_database_url
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        redis_url=aof_redis.url,
        collab_flush_seconds=0,
        worker_in_process=False,
    )
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application
    await empty_tables(database_url)


@pytest.mark.slow
async def test_redis_restart_with_aof_between_save_and_flush_keeps_the_save(
    aof_app: FastAPI, aof_redis: Any, doc_id: str
) -> None:
    transport = httpx.ASGITransport(app=aof_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        user = await signup(client, "ann@example.com")
        response = await client.post(
            f"/api/v1/collab/demo/save?id={doc_id}",
            content=text_update("durable"),
            headers=user["headers"],
        )
        assert response.status_code == 200
        aof_redis.kill()  # SIGKILL right after the 200
        aof_redis.start()
        report = None
        for _ in range(20):  # the client reconnects on its next command
            try:
                report = await aof_app.state.collab.flush()
                break
            except Exception:
                await asyncio.sleep(0.2)
        assert report is not None
        assert report.documents == 1
    assert await stored_text(aof_app, doc_id) == "durable"
