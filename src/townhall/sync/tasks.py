"""Jobs of the sync engine: hourly compaction (`sync.compact`)."""

from __future__ import annotations

import structlog

from townhall.core.jobs import JobContext, task
from townhall.core.platform import Platform
from townhall.sync.service import SyncService

log = structlog.get_logger(__name__)


async def compact(platform: Platform) -> dict[str, int]:
    """Snapshot stale streams, prune snapshots, delete covered old events and idle clients."""
    async with platform.db.session() as session:
        totals = await SyncService(session, platform.settings).compact()
    log.info("sync compaction", **totals)
    return totals


@task("sync.compact", cron="0 * * * *", retries=2, retry_delay=60.0)
async def compact_job(ctx: JobContext) -> None:
    """Idempotent: each run deletes only what is covered and old enough at that moment."""
    await compact(ctx.platform)
