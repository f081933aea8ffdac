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


@dataclass
class Platform:
    """Typed handles on every backend chosen by the settings URLs."""

    settings: Settings
    db: Database
    cache: Cache
    # Readiness probes of optional backends (broker, pub/sub, storage), by name.
    extra_checks: dict[str, Callable[[Platform], Awaitable[None]]] = field(default_factory=dict)


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
    try:
        yield Platform(settings=settings, db=db, cache=cache)
    finally:
        await cache.close()
        await db.dispose()
