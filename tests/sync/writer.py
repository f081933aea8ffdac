"""A writer process for the concurrency test: N coroutines editing one document."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.fixtures.app import make_settings
from townhall.core.errors import Conflict
from townhall.core.platform import build_platform
from townhall.sync.patching import MergePatch
from townhall.sync.service import SyncService


async def writer(platform: Any, slug: str, name: str, updates: int) -> int:
    retries = 0
    for _ in range(updates):
        while True:
            try:
                async with platform.db.session() as session:
                    await SyncService(
                        session, platform.settings, platform.pubsub
                    ).find_one_and_update(
                        None,
                        slug,
                        "doc",
                        lambda doc: MergePatch(
                            {"count": doc["count"] + 1, name: doc.get(name, 0) + 1}
                        ),
                    )
                break
            except Conflict:  # engine retries exhausted: back off and try again
                retries += 1
                await asyncio.sleep(0.01)
    return retries


async def main(url: str, slug: str, writers: int, updates: int, *pubsub: str) -> None:
    """`pubsub` is an optional Redis URL and channel prefix: announce to other processes."""
    extra = {"redis_url": pubsub[0], "pubsub_channel_prefix": pubsub[1]} if pubsub else {}
    # Keep every snapshot (as the test's own settings do) so the first one can be replayed.
    settings = make_settings(
        Path(tempfile.mkdtemp()),
        database_url=url,
        sync_max_retries=20,
        sync_snapshots_keep=100,
        **extra,
    )
    async with build_platform(settings) as platform:
        tag = os.getpid()
        await asyncio.gather(
            *(writer(platform, slug, f"w{tag}-{i}", updates) for i in range(writers))
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:]))
