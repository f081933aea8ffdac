"""Business rules of the Links app: save, dedupe, edit, tags, search, cache, sync, import."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.db import after_commit, utcnow
from townhall.core.errors import BadRequest, Conflict, NotFound, Unprocessable
from townhall.core.platform import Platform
from townhall.modules.link import realtime
from townhall.modules.link.bookmarks import Bookmark
from townhall.modules.link.models import Link, LinkStatus, LinkTag, StoredImage, Tag
from townhall.modules.link.repository import LinkRepository, tag_key
from townhall.modules.link.schemas import (
    Change,
    ChangeResult,
    ImportResult,
    LinkCreate,
    LinkOut,
    LinkPage,
    LinkUpdate,
    PullResponse,
    PushResponse,
    SearchHit,
    TagOut,
    TagSummary,
    ThumbnailUrls,
    Tombstone,
)
from townhall.modules.link.urls import InvalidURL, normalize_url, url_hash

log = structlog.get_logger(__name__)

CACHE_TTL = 300
THUMBNAIL_URL_TTL = timedelta(hours=1)
SEARCH_TEXT_LIMIT = 20_000
PULL_LIMIT = 500
# A pull's caught-up position trails its start: a change stamped before the pull but committed
# after it read (a request still running) is then sent next time instead of never.
PULL_OVERLAP = timedelta(seconds=5)
MAX_LIMIT = 100
_NIL = uuid.UUID(int=0)
_SINCE = TypeAdapter(datetime)


def list_cache_key(user_id: uuid.UUID, page: int, tag: str | None, limit: int) -> str:
    """Seed 002's list cache key."""
    return f"cache:links:user:{user_id}:page:{page}:tag:{tag or ''}:limit:{limit}"


def user_cache_prefix(user_id: uuid.UUID) -> str:
    return f"cache:links:user:{user_id}:"


async def invalidate_user_cache(
    platform: Platform, user_id: uuid.UUID, *link_ids: uuid.UUID
) -> None:
    """Drop every cached list/tag page of the user (and the given links' entries)."""
    await platform.cache.delete_match(user_cache_prefix(user_id) + "*")
    for link_id in link_ids:
        await platform.cache.delete(f"cache:link:{link_id}")


def build_search_text(link: Link) -> str:
    """What search indexes: title, description, note, tags, site and the main text."""
    tags = " ".join(lt.tag.name for lt in link.link_tags if lt.tag is not None)
    parts = [
        link.title,
        link.description,
        link.note,
        tags,
        link.site_name,
        link.author,
        link.content_text,
    ]
    return " ".join(p for p in parts if p)[:SEARCH_TEXT_LIMIT]


def encode_cursor(when: datetime, link_id: uuid.UUID) -> str:
    """An opaque keyset position: (a timestamp, the id of the last link at it)."""
    raw = json.dumps([when.isoformat(), str(link_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, link_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(created)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)), uuid.UUID(link_id)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise BadRequest("invalid cursor") from exc


def parse_since(value: str | None) -> datetime | tuple[datetime, uuid.UUID] | None:
    """`since` of a pull: an ISO timestamp (the seed's form) or a cursor from a previous pull."""
    if value is None or not value.strip():
        return None
    try:
        when = _SINCE.validate_python(value.strip())
    except ValidationError:
        try:
            return decode_cursor(value.strip())
        except BadRequest as exc:
            raise Unprocessable("since must be an ISO timestamp or a cursor") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class LinkService:
    """Everything a user does with links; flushes, never commits."""

    def __init__(self, session: AsyncSession, platform: Platform) -> None:
        self.session = session
        self.platform = platform
        self.repo = LinkRepository(session)
        self._tags: dict[str, Tag] = {}

    # Presentation ----------------------------------------------------------------------------
    async def to_out(self, links: Sequence[Link]) -> list[LinkOut]:
        images = await self.repo.images_of([link.id for link in links])
        out = []
        for link in links:
            urls = await self._thumbnail_urls(images.get(link.id, {}))
            out.append(
                LinkOut(
                    id=link.id,
                    url=link.url,
                    normalized_url=link.normalized_url,
                    source=link.source,
                    title=link.title,
                    description=link.description,
                    author=link.author,
                    site_name=link.site_name,
                    published_at=link.published_at,
                    media_type=link.media_type,
                    thumbnail_original_url=link.thumbnail_original_url,
                    thumbnail_url=urls.medium,
                    thumbnails=urls,
                    note=link.note,
                    tags=[
                        TagOut(
                            name=lt.tag.name,
                            category=lt.tag.category,
                            is_auto_generated=lt.is_auto_generated,
                            confidence=lt.confidence,
                        )
                        for lt in sorted(
                            link.link_tags, key=lambda lt: (lt.is_auto_generated, lt.tag.name)
                        )
                    ],
                    status=link.status,
                    processing_error=link.processing_error,
                    retry_count=link.retry_count,
                    is_read=link.is_read,
                    is_archived=link.is_archived,
                    is_favorite=link.is_favorite,
                    version=link.version,
                    created_at=link.created_at,
                    updated_at=link.updated_at,
                    completed_at=link.completed_at,
                    deleted_at=link.deleted_at,
                )
            )
        return out

    async def _thumbnail_urls(self, images: dict[str, StoredImage]) -> ThumbnailUrls:
        urls: dict[str, str] = {}
        for size, image in images.items():
            urls[size] = await self.platform.storage.signed_url(
                image.object_key, expires=THUMBNAIL_URL_TTL
            )
        return ThumbnailUrls(**urls)

    async def one_out(self, link: Link) -> LinkOut:
        return (await self.to_out([link]))[0]

    # Save ------------------------------------------------------------------------------------
    async def save(self, user_id: uuid.UUID, body: LinkCreate) -> tuple[Link, bool]:
        """Insert a pending link (or find the user's own); the pipeline runs after commit."""
        normalized = normalize_url(body.url)
        digest = url_hash(normalized)
        existing = await self.repo.get_by_hash(user_id, digest)
        if existing is not None:
            if existing.deleted_at is None:
                return existing, True
            return await self._revive(existing, body), False
        link = Link(
            user_id=user_id,
            url=body.url.strip(),
            normalized_url=normalized,
            url_hash=digest,
            source=body.source,
            note=body.note,
            title=body.title,
            status=LinkStatus.pending.value,
        )
        try:
            await self._insert(link)
        except IntegrityError:
            # A concurrent save of the same URL won the race: that one is the link.
            raced = await self.repo.get_by_hash(user_id, digest)
            if raced is None:
                raise
            return raced, True
        await self.session.refresh(link, ["link_tags"])
        if body.tags:
            await self._set_user_tags(link, body.tags)
        link.search_text = build_search_text(link)
        await self.session.flush()
        self._after_change(link, enqueue=True)
        return link, False

    async def _insert(self, link: Link) -> None:
        if self.repo.is_sqlite:
            # SQLite writes are serialised (no race to lose) and its SAVEPOINTs start a
            # deferred transaction that fails to upgrade under concurrent writers.
            self.session.add(link)
            try:
                await self.session.flush()
            except IntegrityError:
                await self.session.rollback()
                raise
            return
        async with self.session.begin_nested():
            self.session.add(link)
            await self.session.flush()

    async def _revive(self, link: Link, body: LinkCreate) -> Link:
        link.deleted_at = None
        link.version += 1
        link.edited_at = utcnow()
        if body.note:
            link.note = body.note
        if body.tags:
            await self._set_user_tags(link, body.tags, keep_existing=True)
        link.search_text = build_search_text(link)
        enqueue = link.status == LinkStatus.failed.value
        if enqueue:
            self._reset_pipeline(link)
        await self.session.flush()
        self._after_change(link, enqueue=enqueue)
        return link

    def _reset_pipeline(self, link: Link) -> None:
        link.status = LinkStatus.pending.value
        link.processing_error = None
        link.retry_count = 0

    def _after_change(self, link: Link, *, enqueue: bool = False) -> None:
        platform, user_id, link_id, status = self.platform, link.user_id, link.id, link.status

        async def announce() -> None:
            await invalidate_user_cache(platform, user_id, link_id)
            await realtime.announce(platform, user_id, link_id, status)

        after_commit(self.session, announce)
        if enqueue:
            from townhall.modules.link.tasks import enqueue_pipeline

            async def start() -> None:
                await enqueue_pipeline(platform, link_id)

            after_commit(self.session, start)

    # Read ------------------------------------------------------------------------------------
    async def get(self, user_id: uuid.UUID, link_id: uuid.UUID) -> Link:
        link = await self.repo.get(link_id, user_id=user_id)
        if link is None:
            raise NotFound("no such link")
        return link

    async def list_page(
        self,
        user_id: uuid.UUID,
        *,
        page: int | None,
        limit: int,
        tag: str | None,
        status: str | None,
        q: str | None,
        cursor: str | None,
    ) -> LinkPage:
        limit = max(1, min(limit, MAX_LIMIT))
        if status is not None and status not in LinkStatus.__members__:
            raise Unprocessable(f"unknown status {status!r}")
        if cursor is not None:
            links = await self.repo.after_cursor(
                user_id, tag=tag, status=status, q=q, cursor=decode_cursor(cursor), limit=limit + 1
            )
            more = len(links) > limit
            links = links[:limit]
            return LinkPage(
                items=await self.to_out(links),
                limit=limit,
                next_cursor=(
                    encode_cursor(links[-1].created_at, links[-1].id) if more and links else None
                ),
            )
        page = max(1, page or 1)
        cacheable = status is None and not q
        key = list_cache_key(user_id, page, tag_key(tag) if tag else None, limit)
        if cacheable:
            cached = await self.platform.cache.get(key)
            if cached is not None:
                return LinkPage.model_validate_json(cached)
        links, total = await self.repo.page(
            user_id, tag=tag, status=status, q=q, offset=(page - 1) * limit, limit=limit
        )
        result = LinkPage(
            items=await self.to_out(links),
            page=page,
            limit=limit,
            total=total,
            next_cursor=(
                encode_cursor(links[-1].created_at, links[-1].id)
                if links and page * limit < total
                else None
            ),
        )
        if cacheable:
            await self.platform.cache.set(key, result.model_dump_json(), expire=CACHE_TTL)
        return result

    async def search(self, user_id: uuid.UUID, q: str, limit: int) -> list[SearchHit]:
        q = q.strip()
        if not q:
            raise BadRequest("q must not be empty")
        if len(q) > 500:
            raise BadRequest("q is longer than 500 characters")
        hits = await self.repo.search(user_id, q, max(1, min(limit, MAX_LIMIT)))
        outs = await self.to_out([link for link, _ in hits])
        return [
            SearchHit(**o.model_dump(), rank=rank) for o, (_, rank) in zip(outs, hits, strict=True)
        ]

    # Edit ------------------------------------------------------------------------------------
    async def update(self, user_id: uuid.UUID, link_id: uuid.UUID, body: LinkUpdate) -> Link:
        link = await self.get(user_id, link_id)
        if body.version is not None and body.version != link.version:
            raise Conflict(
                f"link changed since version {body.version} (now {link.version})",
                extra={"current_version": link.version},
            )
        self._apply(link, body.model_dump(exclude_unset=True, exclude={"tags", "version"}))
        if body.tags is not None:
            await self._set_user_tags(link, body.tags)
        self._edited(link)
        await self.session.flush()
        self._after_change(link)
        return link

    def _apply(self, link: Link, values: dict[str, Any]) -> None:
        for field in ("title", "note", "is_read", "is_archived", "is_favorite"):
            if field in values and values[field] is not None:
                setattr(link, field, values[field])

    def _edited(self, link: Link) -> None:
        link.version += 1
        link.edited_at = utcnow()
        link.updated_at = utcnow()
        link.search_text = build_search_text(link)

    async def delete(self, user_id: uuid.UUID, link_id: uuid.UUID) -> None:
        link = await self.get(user_id, link_id)
        link.deleted_at = utcnow()
        self._edited(link)
        await self.session.flush()
        self._after_change(link)

    async def retry(self, user_id: uuid.UUID, link_id: uuid.UUID) -> Link:
        link = await self.get(user_id, link_id)
        if link.status not in (LinkStatus.failed.value, LinkStatus.completed.value):
            raise Conflict(f"link is still being processed ({link.status})")
        self._reset_pipeline(link)
        link.updated_at = utcnow()
        await self.session.flush()
        self._after_change(link, enqueue=True)
        return link

    # Tags ------------------------------------------------------------------------------------
    async def _tag(
        self, user_id: uuid.UUID, name: str, *, kind: str = "user", category: str | None = None
    ) -> Tag:
        key = tag_key(name)
        if not key:
            raise Unprocessable(f"tag {name!r} is empty")
        tag = self._tags.get(key) or await self.repo.ensure_tag(
            user_id, name.strip()[:100], key, kind=kind, category=category
        )
        self._tags[key] = tag
        return tag

    async def _set_user_tags(
        self, link: Link, names: Sequence[str], *, keep_existing: bool = False
    ) -> None:
        wanted: dict[str, str] = {tag_key(n): n for n in names if tag_key(n)}
        for lt in list(link.link_tags):
            if lt.tag.key in wanted:
                wanted.pop(lt.tag.key)
            elif not keep_existing:
                link.link_tags.remove(lt)
        for name in wanted.values():
            tag = await self._tag(link.user_id, name)
            tag.kind = "user"  # the user chose it: an AI tag of that name becomes theirs
            link.link_tags.append(LinkTag(tag_id=tag.id, tag=tag, is_auto_generated=False))

    async def tags(self, user_id: uuid.UUID) -> list[TagSummary]:
        return [
            TagSummary(name=tag.name, category=tag.category, kind=tag.kind, count=n)
            for tag, n in await self.repo.tag_counts(user_id)
        ]

    async def _existing_tag(self, user_id: uuid.UUID, name: str) -> Tag:
        tag = await self.repo.tag_by_key(user_id, tag_key(name))
        if tag is None:
            raise NotFound(f"no tag {name!r}")
        return tag

    async def _touch_tagged(self, tag: Tag) -> None:
        for link in await self.repo.links_with_tag(tag.id):
            await self.session.refresh(link, ["link_tags"])
            self._edited(link)
            self._after_change(link)

    async def rename_tag(self, user_id: uuid.UUID, name: str, new_name: str) -> TagSummary:
        tag = await self._existing_tag(user_id, name)
        new_key = tag_key(new_name)
        if not new_key:
            raise Unprocessable("the new name is empty")
        if new_key != tag.key and await self.repo.tag_by_key(user_id, new_key) is not None:
            raise Conflict(f"tag {new_name!r} exists; merge into it instead")
        tag.name, tag.key = new_name.strip()[:100], new_key
        await self.session.flush()
        await self._touch_tagged(tag)
        await self.session.flush()
        return next(t for t in await self.tags(user_id) if t.name == tag.name)

    async def merge_tag(self, user_id: uuid.UUID, name: str, into: str) -> TagSummary:
        source = await self._existing_tag(user_id, name)
        target = await self._tag(user_id, into)
        if source.id == target.id:
            raise BadRequest("a tag cannot be merged into itself")
        links = await self.repo.links_with_tag(source.id)
        for link in links:
            await self.session.refresh(link, ["link_tags"])
            old = next(lt for lt in link.link_tags if lt.tag_id == source.id)
            has_target = any(lt.tag_id == target.id for lt in link.link_tags)
            link.link_tags.remove(old)
            if not has_target:
                link.link_tags.append(
                    LinkTag(
                        tag_id=target.id,
                        tag=target,
                        is_auto_generated=old.is_auto_generated,
                        confidence=old.confidence,
                    )
                )
        await self.session.flush()
        await self.repo.delete_tag(source)
        await self.session.flush()
        for link in links:
            await self.session.refresh(link, ["link_tags"])
            self._edited(link)
            self._after_change(link)
        await self.session.flush()
        return next(t for t in await self.tags(user_id) if t.name == target.name)

    async def promote_tag(self, user_id: uuid.UUID, name: str) -> TagSummary:
        """Make an AI tag the user's own: it stays on its links as a human tag."""
        tag = await self._existing_tag(user_id, name)
        tag.kind = "user"
        await self.repo.mark_tag_human(tag.id)
        await self.session.flush()
        await self._touch_tagged(tag)
        await self.session.flush()
        return next(t for t in await self.tags(user_id) if t.name == tag.name)

    async def tag_page(self, user_id: uuid.UUID, name: str, page: int, limit: int) -> LinkPage:
        await self._existing_tag(user_id, name)
        return await self.list_page(
            user_id, page=page, limit=limit, tag=name, status=None, q=None, cursor=None
        )

    # Import / export -------------------------------------------------------------------------
    async def import_bookmarks(
        self,
        user_id: uuid.UUID,
        entries: Sequence[Bookmark],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """Save every new bookmark as a pending link (deduped), then start their pipelines."""
        errors: list[str] = []
        prepared: dict[str, tuple[Bookmark, str]] = {}
        for entry in entries:
            try:
                normalized = normalize_url(entry.url)
            except InvalidURL as exc:
                errors.append(f"{entry.url[:200]}: {exc.message}")
                continue
            prepared.setdefault(url_hash(normalized), (entry, normalized))
        existing, deleted = await self.repo.existing_hashes(user_id, list(prepared))
        duplicates = len(entries) - len(errors) - len(prepared) + len(existing)
        # Importing a URL the user deleted brings that link back (same id, a new version).
        revived = {link.url_hash: link for link in deleted}
        new_ids: list[uuid.UUID] = []
        done = 0
        for digest, (entry, normalized) in prepared.items():
            done += 1
            if digest in existing:
                continue
            if digest in revived:
                body = LinkCreate(
                    url=normalized, source="import", note=entry.note, tags=entry.tags or None
                )
                await self._revive(revived[digest], body)
                continue
            when = entry.added_at or utcnow()
            link = Link(
                user_id=user_id,
                url=entry.url.strip()[:10_000],
                normalized_url=normalized,
                url_hash=digest,
                source="import",
                title=entry.title or None,
                note=entry.note,
                status=LinkStatus.pending.value,
                created_at=when,
                edited_at=when,
                link_tags=[],
            )
            self.session.add(link)
            if entry.tags:
                await self._set_user_tags(link, entry.tags)
            link.search_text = build_search_text(link)
            new_ids.append(link.id)
            if len(new_ids) % 200 == 0:
                await self.session.flush()
                if on_progress is not None:
                    on_progress(done)
        await self.session.flush()
        if on_progress is not None:
            on_progress(len(prepared))
        platform = self.platform

        async def start() -> None:
            await invalidate_user_cache(platform, user_id)
            from townhall.modules.link.tasks import enqueue_pipeline

            for link_id in new_ids:
                await enqueue_pipeline(platform, link_id)

        after_commit(self.session, start)
        return ImportResult(
            total=len(entries),
            created=len(new_ids) + len(revived),
            duplicates=duplicates,
            errors=errors[:100],
        )

    async def export(self, user_id: uuid.UUID) -> list[LinkOut]:
        return await self.to_out(await self.repo.export_all(user_id))

    # Sync ------------------------------------------------------------------------------------
    async def pull(
        self, user_id: uuid.UUID, since: datetime | tuple[datetime, uuid.UUID] | None
    ) -> PullResponse:
        """Links changed since a timestamp (inclusive) or after a cursor, with tombstones."""
        started = utcnow()
        rows = await self.repo.changed_since(user_id, since, PULL_LIMIT + 1)
        has_more = len(rows) > PULL_LIMIT
        rows = rows[:PULL_LIMIT]
        live = [r for r in rows if r.deleted_at is None]
        deleted = [
            Tombstone(id=r.id, deleted_at=r.deleted_at) for r in rows if r.deleted_at is not None
        ]
        if has_more:
            # Resume right after the last row sent (ties on updated_at are kept by the id).
            stamp, cursor = rows[-1].updated_at, encode_cursor(rows[-1].updated_at, rows[-1].id)
        else:
            stamp = started - PULL_OVERLAP
            cursor = encode_cursor(stamp, _NIL)
        return PullResponse(
            links=await self.to_out(live),
            deleted=deleted,
            sync_timestamp=stamp,
            cursor=cursor,
            has_more=has_more,
        )

    async def push(self, user_id: uuid.UUID, changes: Sequence[Change]) -> PushResponse:
        results = []
        for index, change in enumerate(changes):
            try:
                async with self.session.begin_nested():
                    result = await self._apply_change(user_id, index, change)
            except ValidationError as exc:
                result = ChangeResult(
                    index=index,
                    client_id=change.client_id,
                    link_id=change.link_id,
                    status="error",
                    error="; ".join(str(e["msg"]) for e in exc.errors())[:500],
                )
            except (Unprocessable, BadRequest, NotFound) as exc:
                result = ChangeResult(
                    index=index,
                    client_id=change.client_id,
                    link_id=change.link_id,
                    status="error",
                    error=exc.message,
                )
            results.append(result)
        ok = all(r.status in ("success", "duplicate") for r in results)
        return PushResponse(
            status="success" if ok else "partial", results=results, sync_timestamp=utcnow()
        )

    async def _apply_change(self, user_id: uuid.UUID, index: int, change: Change) -> ChangeResult:
        base = {"index": index, "client_id": change.client_id}
        if change.type == "create":
            if not change.url:
                raise Unprocessable("a create change needs a url")
            created, duplicate = await self.save(
                user_id,
                LinkCreate(
                    url=change.url, note=change.content or "", tags=change.tags, source="offline"
                ),
            )
            return ChangeResult(
                **base,
                link_id=created.id,
                status="duplicate" if duplicate else "success",
                new_version=created.version,
            )
        values: dict[str, Any] = dict(change.fields or {})
        if change.type == "note_update":
            values = {"note": change.content or ""}
        unknown = set(values) - {"title", "note", "is_read", "is_archived", "is_favorite"}
        if unknown:
            raise Unprocessable(f"fields cannot be changed offline: {', '.join(sorted(unknown))}")
        if change.link_id is None:
            raise Unprocessable(f"a {change.type} change needs a link_id")
        link = await self.repo.get(change.link_id, user_id=user_id, with_deleted=True)
        if link is None:
            raise NotFound("no such link")
        if not change.force and self._conflicts(link, change):
            return ChangeResult(
                **base,
                link_id=link.id,
                status="conflict",
                new_version=link.version,
                error="the link was changed on the server after this change was made",
                server=await self.one_out(link),
            )
        if link.deleted_at is not None and change.type != "delete":
            return ChangeResult(
                **base,
                link_id=link.id,
                status="conflict",
                error="the link was deleted",
                new_version=link.version,
                server=await self.one_out(link),
            )
        if change.type == "delete":
            if link.deleted_at is None:
                link.deleted_at = utcnow()
                self._edited(link)
        else:
            update = LinkUpdate.model_validate({**values, "tags": change.tags})
            self._apply(link, update.model_dump(exclude_unset=True, exclude={"tags", "version"}))
            if change.tags is not None or change.type == "tags_update":
                await self._set_user_tags(link, change.tags or [])
            self._edited(link)
        await self.session.flush()
        self._after_change(link)
        return ChangeResult(**base, link_id=link.id, status="success", new_version=link.version)

    @staticmethod
    def _conflicts(link: Link, change: Change) -> bool:
        if change.base_version is not None:
            return change.base_version != link.version
        stamp = (
            change.timestamp if change.timestamp.tzinfo else change.timestamp.replace(tzinfo=UTC)
        )
        return link.edited_at > stamp
