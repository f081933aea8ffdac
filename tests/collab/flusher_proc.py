"""A flusher process for the kill -9 test: it stops forever at a chosen point of a flush.

Usage: python -m tests.collab.flusher_proc DATABASE_URL REDIS_URL PREFIX STAGE
STAGE "before-commit" hangs after writing the state but before the commit; "after-commit"
hangs after the commit but before the buffer is trimmed. Prints "HANG" when it got there.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from tests.fixtures.app import make_settings

from townhall.collab import buffer as buffer_module
from townhall.collab.hooks import ServiceHooks, get_service, register_service
from townhall.collab.service import CollabStore
from townhall.core.platform import build_platform


async def _hang() -> None:
    print("HANG", flush=True)
    await asyncio.sleep(3600)


async def main(database_url: str, redis_url: str, prefix: str, stage: str) -> None:
    settings = make_settings(
        Path(tempfile.mkdtemp()), database_url=database_url, redis_url=redis_url
    )
    if stage == "before-commit":
        demo = get_service("demo")

        async def on_store(service: str, doc_id: str, state: bytes, session: AsyncSession) -> None:
            await _hang()

        register_service(ServiceHooks("demo", demo.authorize, on_store=on_store, roots=demo.roots))
    else:
        original = buffer_module.RedisBuffer.remove_batch

        async def remove_batch(self: Any, *args: Any) -> int:
            await _hang()
            return await original(self, *args)

        buffer_module.RedisBuffer.remove_batch = remove_batch  # type: ignore[method-assign,assignment]
    async with build_platform(settings) as platform:
        store = CollabStore(
            platform.db, settings, buffer_module.RedisBuffer(platform.redis, prefix)
        )
        store.lock_ttl_ms = 1000
        await store.flush()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
