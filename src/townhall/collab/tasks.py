"""Jobs of the collab engine: the write-back flusher."""

from __future__ import annotations

import structlog

from townhall.collab.engine import build_store
from townhall.core.config import get_settings
from townhall.core.jobs import JobContext, task

log = structlog.get_logger(__name__)

# Read at import like every task option; an invalid expression fails startup (JobError).
FLUSH_CRON = get_settings().collab_flush_cron


@task("collab.flush", cron=FLUSH_CRON, retries=0, timeout=300)
async def flush(ctx: JobContext) -> None:
    """Write every dirty document from the buffer to the database (idempotent, lock per doc)."""
    report = await build_store(ctx.platform).flush()
    if report.documents or report.skipped:
        log.info("collab flush", **report.__dict__)
