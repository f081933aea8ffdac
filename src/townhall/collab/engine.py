"""The collab engine of one process: store, rooms, signaling hub and the in-process flusher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import HTTPConnection

from townhall.collab.buffer import DatabaseBuffer, RedisBuffer
from townhall.collab.hooks import register_builtins
from townhall.collab.rooms import RoomManager
from townhall.collab.service import CollabStore, FlushReport
from townhall.collab.signaling import SignalingHub
from townhall.core.platform import Platform
from townhall.core.tasks import stop_tasks

log = structlog.get_logger(__name__)


def build_store(platform: Platform) -> CollabStore:
    """The document store on the platform's Redis (buffer) or, embedded, the database."""
    buffer: RedisBuffer | DatabaseBuffer = (
        RedisBuffer(platform.redis, platform.settings.collab_key_prefix)
        if platform.redis is not None
        else DatabaseBuffer()
    )
    return CollabStore(platform.db, platform.settings, buffer)


class CollabEngine:
    """Everything collab keeps per process."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.settings = platform.settings
        register_builtins(production=self.settings.is_production)
        # The platform's shared client (set when TOWNHALL_REDIS_URL is); None = embedded mode.
        self.redis = platform.redis
        self.store = build_store(platform)
        pubsub = getattr(platform, "pubsub", None)
        self.rooms = RoomManager(self.store, pubsub)
        self.signaling = SignalingHub(pubsub)
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.settings.collab_flush_seconds > 0:
            self._flusher = asyncio.create_task(self._flush_loop())

    async def flush(self) -> FlushReport:
        return await self.store.flush()

    async def _flush_loop(self) -> None:
        # Every process may run this: per-document locks and revision checks make it safe.
        while True:
            await asyncio.sleep(self.settings.collab_flush_seconds)
            try:
                report = await self.store.flush()
                if report.documents:
                    log.info("collab flush", **report.__dict__)
            except Exception:
                log.exception("collab flush failed; retried next period")

    async def close(self) -> None:
        if self._flusher is not None:
            await stop_tasks([self._flusher], timeout=5.0, what="collab flusher")
        await self.rooms.close()
        await self.signaling.close()
        with contextlib.suppress(Exception):
            await self.store.flush()


def get_engine(conn: HTTPConnection) -> CollabEngine:
    engine: CollabEngine = conn.app.state.collab
    return engine


STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount /collab/static (leader.js); start the engine inside the app's lifespan."""
    app.mount("/collab/static", StaticFiles(directory=STATIC_DIR), name="collab-static")
    inner: Callable[[FastAPI], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as state:
            engine = CollabEngine(application.state.platform)
            application.state.collab = engine
            engine.start()
            try:
                yield state
            finally:
                await engine.close()

    app.router.lifespan_context = lifespan
