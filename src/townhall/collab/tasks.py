"""Jobs of the collab engine: the write-back flusher."""

from __future__ import annotations

import structlog

from townhall.collab.engine import build_store
from townhall.core.jobs import JobContext, task

log = structlog.get_logger(__name__)


@task("collab.flush", cron="* * * * *", retries=0, timeout=300)
async def flush(ctx: JobContext) -> None:
    """Write every dirty document from the buffer to the database (idempotent, lock per doc)."""
    report = await build_store(ctx.platform).flush()
    if report.documents or report.skipped:
        log.info("collab flush", **report.__dict__)
