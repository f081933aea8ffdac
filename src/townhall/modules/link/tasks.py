"""Jobs of the Links pipeline: link.scrape -> link.thumbnail -> link.tag, and the stall sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog

from townhall.core.cache import LockHeld
from townhall.core.config import get_settings
from townhall.core.db import utcnow
from townhall.core.jobs import JobContext, sweeper, task
from townhall.core.platform import Platform
from townhall.modules.link import pipeline
from townhall.modules.link.models import LinkStatus
from townhall.modules.link.repository import LinkRepository

log = structlog.get_logger(__name__)

_settings = get_settings()
RETRIES = _settings.link_retries
RETRY_DELAY = _settings.link_retry_delay_seconds
LOCK_BUSY_DELAY = 5.0
# The seed waits a fixed 30 s before every retry (no growing backoff).
BACKOFF = 1.0

Stage = Callable[[Platform, uuid.UUID], Awaitable[str | None]]


async def enqueue_pipeline(platform: Platform, link_id: uuid.UUID) -> None:
    """Start the pipeline of a committed link."""
    await platform.jobs.enqueue("link.scrape", link_id=str(link_id))


async def on_dead(ctx: JobContext, kwargs: dict[str, Any], error: str) -> None:
    """The last retry failed: the link is failed with the reason, the user notified."""
    await pipeline.mark_failed(ctx.platform, uuid.UUID(str(kwargs["link_id"])), error)


async def _run(ctx: JobContext, name: str, stage: Stage, link_id: str) -> None:
    platform = ctx.platform
    lid = uuid.UUID(link_id)
    try:
        following = await stage(platform, lid)
    except pipeline.PermanentFailure as exc:
        await pipeline.mark_failed(platform, lid, str(exc))
        return
    except LockHeld:
        # Another worker is fetching this URL right now: come back shortly.
        await platform.jobs.enqueue(name, delay=LOCK_BUSY_DELAY, link_id=link_id)
        return
    except Exception as exc:
        await pipeline.count_failure(platform, lid, f"{type(exc).__name__}: {exc}")
        raise
    if following is not None:
        await platform.jobs.enqueue(following, link_id=link_id)


@task(
    "link.scrape",
    queue="scrape",
    retries=RETRIES,
    retry_delay=RETRY_DELAY,
    backoff=BACKOFF,
    on_dead=on_dead,
)
async def scrape(ctx: JobContext, link_id: str) -> None:
    """Fetch the page and extract its metadata."""
    await _run(ctx, "link.scrape", pipeline.scrape, link_id)


@task(
    "link.thumbnail",
    queue="thumbnail",
    retries=RETRIES,
    retry_delay=RETRY_DELAY,
    backoff=BACKOFF,
    on_dead=on_dead,
)
async def thumbnail(ctx: JobContext, link_id: str) -> None:
    """Resize the page's image into three thumbnails."""
    await _run(ctx, "link.thumbnail", pipeline.thumbnail, link_id)


@task(
    "link.tag",
    queue="tag",
    retries=RETRIES,
    retry_delay=RETRY_DELAY,
    backoff=BACKOFF,
    on_dead=on_dead,
)
async def tag(ctx: JobContext, link_id: str) -> None:
    """Tag the link and mark it completed."""
    await _run(ctx, "link.tag", pipeline.tag, link_id)


STAGE_OF_STATUS = {
    LinkStatus.pending.value: "link.scrape",
    LinkStatus.scraping.value: "link.scrape",
    LinkStatus.scraping_completed.value: "link.thumbnail",
    LinkStatus.thumbnailing.value: "link.thumbnail",
    LinkStatus.thumbnail_completed.value: "link.tag",
    LinkStatus.tagging.value: "link.tag",
}


@sweeper("link.stalled", interval=60)
async def stalled(platform: Platform) -> int:
    """Re-enqueue links whose pipeline stopped (lost message, crashed worker)."""
    before = utcnow() - timedelta(minutes=platform.settings.link_stalled_minutes)
    async with platform.db.session() as session:
        repo = LinkRepository(session)
        ids = await repo.stalled(list(STAGE_OF_STATUS), before, 200)
        rows = [await repo.get(i) for i in ids]
    for link in rows:
        if link is not None:
            await platform.jobs.enqueue(STAGE_OF_STATUS[link.status], link_id=str(link.id))
    return len(rows)
