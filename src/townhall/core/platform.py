"""The infrastructure of one process, built in lifespan() and shared by every handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypedDict

from cashews import Cache
from redis.asyncio import Redis

from townhall.core.ai import AI, build_ai
from townhall.core.cache import build_cache
from townhall.core.config import Settings
from townhall.core.db import Database
from townhall.core.jobs import Jobs
from townhall.core.pubsub import PubSub, build_pubsub, build_redis_client, close_redis_client
from townhall.core.realtime.registry import Connections
from townhall.core.secrets import AppSettings
from townhall.core.storage import Storage, build_storage


@dataclass
class Platform:
    """Typed handles on every backend chosen by the settings URLs."""

    settings: Settings
    db: Database
    cache: Cache
    jobs: Jobs
    storage: Storage
    ai: AI
    pubsub: PubSub
    # Settings with the admin-stored overrides (core/secrets); `settings` stays the defaults.
    app_settings: AppSettings
    # Shared client (BlockingConnectionPool) for Lua / SET NX when TOWNHALL_REDIS_URL is set.
    redis: Redis[bytes] | None = None
    # Open WebSocket/SSE connections, closed with 1012 on shutdown (core/realtime).
    connections: Connections = field(default_factory=Connections)
    # Readiness probes of optional backends (broker, pub/sub, storage), by name.
    extra_checks: dict[str, Callable[[Platform], Awaitable[None]]] = field(default_factory=dict)


async def _check_storage(platform: Platform) -> None:
    await platform.storage.ping()


async def _check_pubsub(platform: Platform) -> None:
    await platform.pubsub.ping()


class State(TypedDict):
    platform: Platform


@asynccontextmanager
async def build_platform(settings: Settings) -> AsyncIterator[Platform]:
    """Build every backend, and close them all on exit."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    db = Database(
        str(settings.database_url),
        settings.database_replica_url,
        pool_size=settings.database_pool_size,
    )
    cache = build_cache(settings.redis_url)
    redis = (
        build_redis_client(settings.redis_url, max_connections=settings.redis_max_connections)
        if settings.redis_url
        else None
    )
    pubsub = build_pubsub(settings, client=redis)
    storage = build_storage(settings)
    app_settings = AppSettings(settings, db)
    ai = build_ai(settings, source=app_settings.effective)
    jobs = Jobs(settings, db)
    platform: Platform | None = None
    undo_signal_drain: Callable[[], None] | None = None
    try:
        await jobs.start()
        platform = Platform(
            settings=settings,
            db=db,
            cache=cache,
            jobs=jobs,
            pubsub=pubsub,
            redis=redis,
            storage=storage,
            ai=ai,
            app_settings=app_settings,
        )
        platform.extra_checks["storage"] = _check_storage
        platform.extra_checks["pubsub"] = _check_pubsub
        undo_signal_drain = platform.connections.install_signal_drain()
        jobs.bind(platform)
        platform.extra_checks["jobs"] = jobs.check
        yield platform
    finally:
        if platform is not None:
            await platform.connections.drain()
        if undo_signal_drain is not None:
            undo_signal_drain()
        await jobs.stop()
        await pubsub.close()
        if redis is not None:
            await close_redis_client(redis)
        await ai.close()
        await cache.close()
        await db.dispose()
