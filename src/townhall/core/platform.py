"""The infrastructure of one process, built in lifespan() and shared by every handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypedDict

from cashews import Cache

from townhall.core.cache import build_cache
from townhall.core.config import Settings
from townhall.core.db import Database
from townhall.core.storage import Storage, build_storage


@dataclass
class Platform:
    """Typed handles on every backend chosen by the settings URLs."""

    settings: Settings
    db: Database
    cache: Cache
    storage: Storage
    # Readiness probes of optional backends (broker, pub/sub, storage), by name.
    extra_checks: dict[str, Callable[[Platform], Awaitable[None]]] = field(default_factory=dict)


async def _check_storage(platform: Platform) -> None:
    await platform.storage.ping()


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
    storage = build_storage(settings)
    try:
        platform = Platform(settings=settings, db=db, cache=cache, storage=storage)
        platform.extra_checks["storage"] = _check_storage
        yield platform
    finally:
        await cache.close()
        await db.dispose()
