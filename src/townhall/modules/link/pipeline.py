"""The three pipeline stages (scrape, thumbnail, tag); each takes a link id and a platform."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.cache import lock
from townhall.core.db import after_commit, utcnow
from townhall.core.http import (
    BlockedDestination,
    FetchError,
    FetchLimits,
    HTTPStatusError,
    OutboundPolicy,
    ResponseTooLarge,
    TooManyRedirects,
    fetch,
)
from townhall.core.platform import Platform
from townhall.modules.link import realtime
from townhall.modules.link.demo import is_demo_url
from townhall.modules.link.extract import PageMeta, extract, from_oembed, main_text
from townhall.modules.link.images import (
    ImageRejected,
    Thumbnail,
    content_hash,
    make_thumbnails,
    placeholder,
)
from townhall.modules.link.models import Link, LinkStatus, LinkTag, StoredImage
from townhall.modules.link.repository import LinkRepository, tag_key
from townhall.modules.link.service import build_search_text, invalidate_user_cache
from townhall.modules.link.tagging import (
    LinkTags,
    TagContext,
    build_prompt,
    match_existing,
    offline_tags,
    tag_names,
)
from townhall.modules.link.urls import youtube_video_id

log = structlog.get_logger(__name__)

S = LinkStatus
HTML_TYPES = ("text/html", "application/xhtml+xml", "")
# Which statuses each stage may start from (its own in-progress status: a re-run after a crash).
SCRAPE_FROM = (S.pending.value, S.scraping.value)
THUMBNAIL_FROM = (S.scraping_completed.value, S.thumbnailing.value)
TAG_FROM = (S.thumbnail_completed.value, S.tagging.value)
NEXT_STAGE = {
    S.scraping_completed.value: "link.thumbnail",
    S.thumbnail_completed.value: "link.tag",
}


class PermanentFailure(Exception):
    """The link cannot be processed and trying again will not help."""


PERMANENT_FETCH = (BlockedDestination, ResponseTooLarge, TooManyRedirects)


def policy_of(platform: Platform, url: str = "") -> OutboundPolicy:
    """The outbound policy; townhall's own demo site is reachable so the demo works offline."""
    allow = list(platform.settings.outbound_allowlist)
    base = platform.settings.base_url
    if is_demo_url(base, url):
        allow.append(urlsplit(base).hostname or "")
    return OutboundPolicy(allowlist=tuple(allow))


def _limits(platform: Platform, max_bytes: int) -> FetchLimits:
    s = platform.settings
    return FetchLimits(
        max_bytes=max_bytes,
        timeout=s.link_fetch_timeout_seconds,
        max_redirects=s.link_max_redirects,
    )


async def _begin(
    platform: Platform, link_id: uuid.UUID, allowed: Sequence[str], running: str
) -> Link | None:
    """Claim the stage: move the link to `running` if it is in `allowed`; None when not ours."""
    async with platform.db.session() as session:
        repo = LinkRepository(session)
        if not await repo.set_status(link_id, running, only_from=allowed, updated_at=utcnow()):
            return None
        link = await repo.get(link_id)
        user_id = link.user_id if link else None
    if link is not None and user_id is not None:
        await invalidate_user_cache(platform, user_id, link_id)
        await realtime.announce(platform, user_id, link_id, running)
    return link


def _invalidate_after_commit(
    session: AsyncSession, platform: Platform, user_id: uuid.UUID, link_id: uuid.UUID
) -> None:
    """Cached pages show a link's status and metadata: drop them once this change commits."""

    async def drop() -> None:
        await invalidate_user_cache(platform, user_id, link_id)

    after_commit(session, drop)


# Scrape --------------------------------------------------------------------------------------
async def scrape(platform: Platform, link_id: uuid.UUID) -> str | None:
    """Fetch the page and keep its metadata; returns the next task to run (or None)."""
    link = await _begin(platform, link_id, SCRAPE_FROM, S.scraping.value)
    if link is None:
        return await _next_after(platform, link_id)
    async with lock(
        platform.cache, f"lock:scrape:{link.url_hash}", platform.settings.link_scrape_lock_seconds
    ):
        meta = await fetch_metadata(platform, link.url)
    async with platform.db.session() as session:
        repo = LinkRepository(session)
        row = await repo.get(link_id)
        if row is None or row.status != S.scraping.value:
            return None
        _store_meta(row, meta)
        row.status = S.scraping_completed.value
        row.updated_at = utcnow()
        row.search_text = build_search_text(row)
        _invalidate_after_commit(session, platform, row.user_id, link_id)
    return "link.thumbnail"


def _store_meta(link: Link, meta: PageMeta) -> None:
    if not link.title:
        link.title = meta.title
    link.description = meta.description
    link.author = meta.author
    link.site_name = meta.site_name
    link.published_at = meta.published_at
    link.content_text = meta.text
    link.media_type = meta.media_type
    link.thumbnail_original_url = meta.image


async def fetch_metadata(platform: Platform, url: str) -> PageMeta:
    """oEmbed for YouTube, otherwise the page's own metadata and main text."""
    policy = policy_of(platform, url)
    video = youtube_video_id(_normalized(url))
    if video is not None:
        meta = await _oembed(platform, policy, f"https://www.youtube.com/watch?v={video}")
        if meta is not None:
            meta.media_type = "video"
            return meta
    try:
        result = await fetch(
            url,
            policy,
            limits=_limits(platform, platform.settings.link_max_page_bytes),
            accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
        )
    except PERMANENT_FETCH as exc:
        raise PermanentFailure(exc.message) from exc
    kind = result.content_type
    if kind.startswith("image/"):
        name = urlsplit(result.url).path.rsplit("/", 1)[-1] or result.url
        return PageMeta(title=name[:300], image=result.url, media_type="image")
    if kind == "application/pdf":
        name = urlsplit(result.url).path.rsplit("/", 1)[-1] or result.url
        return PageMeta(title=name[:300], media_type="pdf")
    if kind not in HTML_TYPES and not kind.startswith("text/"):
        raise PermanentFailure(f"unsupported content type {kind!r}")
    html = result.text()
    meta = await asyncio.to_thread(extract, html, result.url)
    if meta.is_challenge():
        raise FetchError(f"the site answered with a challenge page ({meta.title!r})")
    meta.text = await asyncio.to_thread(main_text, html)
    if meta.oembed_url and (not meta.title or not meta.image):
        extra = await _oembed_at(platform, policy, meta.oembed_url)
        if extra is not None:
            meta.title = meta.title or extra.title
            meta.image = meta.image or extra.image
            meta.author = meta.author or extra.author
    return meta


def _normalized(url: str) -> str:
    from townhall.modules.link.urls import InvalidURL, normalize_url

    try:
        return normalize_url(url)
    except InvalidURL:
        return url


async def _oembed(platform: Platform, policy: OutboundPolicy, watch_url: str) -> PageMeta | None:
    endpoint = platform.settings.link_youtube_oembed_url
    return await _oembed_at(
        platform, policy, f"{endpoint}?{urlencode({'url': watch_url, 'format': 'json'})}"
    )


async def _oembed_at(platform: Platform, policy: OutboundPolicy, endpoint: str) -> PageMeta | None:
    try:
        result = await fetch(
            endpoint, policy, limits=_limits(platform, 256 * 1024), accept="application/json"
        )
        data = json.loads(result.content)
    except (FetchError, ValueError) as exc:
        log.info("oembed unavailable", endpoint=endpoint[:200], error=str(exc)[:200])
        return None
    return from_oembed(data) if isinstance(data, dict) else None


# Thumbnail -----------------------------------------------------------------------------------
async def thumbnail(platform: Platform, link_id: uuid.UUID) -> str | None:
    """Download, verify and resize the page's image (or draw a placeholder) into storage."""
    link = await _begin(platform, link_id, THUMBNAIL_FROM, S.thumbnailing.value)
    if link is None:
        return await _next_after(platform, link_id)
    note: str | None = None
    thumbs: list[Thumbnail] | None = None
    source_hash = ""
    if link.thumbnail_original_url:
        try:
            result = await fetch(
                link.thumbnail_original_url,
                policy_of(platform, link.thumbnail_original_url),
                limits=_limits(platform, platform.settings.link_max_image_bytes),
                accept="image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8",
            )
            source_hash = content_hash(result.content)
            thumbs = await asyncio.to_thread(
                make_thumbnails, result.content, max_pixels=platform.settings.link_max_image_pixels
            )
        except (ImageRejected, *PERMANENT_FETCH) as exc:
            note = f"thumbnail: {exc}"
        except HTTPStatusError as exc:
            if exc.retryable:
                raise
            note = f"thumbnail: {exc.message}"
    if thumbs is None:
        source_hash = content_hash(link.normalized_url.encode())
        thumbs = await asyncio.to_thread(
            placeholder, link.normalized_url, link.title or link.site_name or "?"
        )
    stored = []
    for thumb in thumbs:
        key = f"thumbnails/resized/{thumb.size_name}/{link_id}_{source_hash[:16]}.jpg"
        await platform.storage.put(key, thumb.data, "image/jpeg")
        stored.append((thumb, key))
    async with platform.db.session() as session:
        repo = LinkRepository(session)
        row = await repo.get(link_id)
        if row is None or row.status != S.thumbnailing.value:
            return None
        stale = await repo.replace_images(
            link_id,
            [
                StoredImage(
                    link_id=link_id,
                    bucket=_bucket(platform),
                    object_key=key,
                    image_type=thumb.size_name,
                    width=thumb.width,
                    height=thumb.height,
                    size_bytes=len(thumb.data),
                    source_hash=source_hash,
                    is_placeholder=link.thumbnail_original_url is None or note is not None,
                )
                for thumb, key in stored
            ],
        )
        row.thumbnail_storage_path = next((k for t, k in stored if t.size_name == "medium"), None)
        row.processing_error = note
        row.status = S.thumbnail_completed.value
        row.updated_at = utcnow()
        _delete_after_commit(session, platform, stale)
        _invalidate_after_commit(session, platform, row.user_id, link_id)
    return "link.tag"


def _bucket(platform: Platform) -> str:
    url = str(platform.settings.storage_url)
    return urlsplit(url).netloc or "local" if url.startswith("s3://") else "local"


def _delete_after_commit(session: AsyncSession, platform: Platform, keys: list[str]) -> None:
    if not keys:
        return

    async def delete() -> None:
        for key in keys:
            await platform.storage.delete(key)

    after_commit(session, delete)


# Tag -----------------------------------------------------------------------------------------
async def tag(platform: Platform, link_id: uuid.UUID) -> str | None:
    """AI tags (offline heuristic by default), reusing the user's tags; then completed."""
    link = await _begin(platform, link_id, TAG_FROM, S.tagging.value)
    if link is None:
        return None
    async with platform.db.session() as session:
        existing_tags = await LinkRepository(session).tags_of_user(link.user_id)
    ctx = TagContext(
        url=link.url,
        title=link.title or "",
        description=link.description or "",
        text=link.content_text or "",
        media_type=link.media_type,
        existing_tags=[t.name for t in existing_tags if t.kind == "user"]
        + [t.name for t in existing_tags if t.kind != "user"],
        user_tags=[t.name for t in existing_tags if t.kind == "user"],
    )
    result = await platform.ai.complete_json(
        build_prompt(ctx), LinkTags, offline=lambda _prompt: offline_tags(ctx), task="link.tag"
    )
    confidence = (
        result.confidence if result.confidence is not None else (0.6 if result.offline else 0.9)
    )
    async with platform.db.session() as session:
        repo = LinkRepository(session)
        row = await repo.get(link_id)
        if row is None or row.status != S.tagging.value:
            return None
        await session.refresh(row, ["link_tags"])
        await _store_tags(session, repo, row, result.value, confidence)
        row.status = S.completed.value
        row.completed_at = row.updated_at = utcnow()
        row.search_text = build_search_text(row)
        user_id = row.user_id

        async def finish() -> None:
            await invalidate_user_cache(platform, user_id, link_id)
            await realtime.announce(platform, user_id, link_id, S.completed.value)

        after_commit(session, finish)
    return None


async def _store_tags(
    session: AsyncSession, repo: LinkRepository, link: Link, value: LinkTags, confidence: float
) -> None:
    # Replace the previous AI tags; the user's own tags stay (Karakeep's rule).
    for lt in [lt for lt in link.link_tags if lt.is_auto_generated]:
        link.link_tags.remove(lt)
    await session.flush()
    tags = {t.key: t for t in await repo.tags_of_user(link.user_id)}
    on_link = {lt.tag_id for lt in link.link_tags}
    # Create missing tags in key order: concurrent taggers then lock rows in one order.
    for name, field in sorted(tag_names(value), key=lambda pair: tag_key(pair[0])):
        if match_existing(name, set(tags)) is None:
            created = await repo.ensure_tag(
                link.user_id, name, tag_key(name), kind="ai", category=field
            )
            tags[created.key] = created
    for name, field in tag_names(value):
        key = match_existing(name, set(tags))
        found = tags.get(key) if key else None
        if found is None:
            found = await repo.ensure_tag(
                link.user_id, name, tag_key(name), kind="ai", category=field
            )
            tags[found.key] = found
        if found.id in on_link:
            continue
        on_link.add(found.id)
        link.link_tags.append(
            LinkTag(tag_id=found.id, tag=found, is_auto_generated=True, confidence=confidence)
        )
    await session.flush()


# Failure and re-derivation -------------------------------------------------------------------
async def _next_after(platform: Platform, link_id: uuid.UUID) -> str | None:
    """When a stage finds its work done already, the stage after it may still be due."""
    async with platform.db.session() as session:
        link = await LinkRepository(session).get(link_id)
        return NEXT_STAGE.get(link.status) if link else None


async def count_failure(platform: Platform, link_id: uuid.UUID, error: str) -> None:
    """retry_count + 1 (seed 002's failure flow) and the last error, before a retry."""
    async with platform.db.session() as session:
        link = await LinkRepository(session).get(link_id)
        if link is not None:
            link.retry_count += 1
            link.processing_error = error[:2000]
            _invalidate_after_commit(session, platform, link.user_id, link_id)


async def mark_failed(platform: Platform, link_id: uuid.UUID, error: str) -> None:
    """status='failed' with the reason; the user is told."""
    message = error.strip().splitlines()[-1] if error.strip() else "processing failed"
    async with platform.db.session() as session:
        repo = LinkRepository(session)
        link = await repo.get(link_id)
        if link is None or link.status == S.completed.value:
            return
        link.status = S.failed.value
        link.processing_error = message[:2000]
        link.updated_at = utcnow()
        user_id = link.user_id

        async def finish() -> None:
            await invalidate_user_cache(platform, user_id, link_id)
            await realtime.announce(platform, user_id, link_id, S.failed.value, error=message[:500])

        after_commit(session, finish)


async def run_inline(platform: Platform, link_id: uuid.UUID) -> str:
    """Run every stage now, in this task (CLI imports without a worker, tests)."""
    stages = {"link.scrape": scrape, "link.thumbnail": thumbnail, "link.tag": tag}
    current: str | None = "link.scrape"
    while current is not None:
        try:
            current = await stages[current](platform, link_id)
        except PermanentFailure as exc:
            await mark_failed(platform, link_id, str(exc))
            break
    async with platform.db.session() as session:
        link = await LinkRepository(session).get(link_id)
        return link.status if link else "deleted"
