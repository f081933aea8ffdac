"""All SQL of the Links app, with dialect branches for full-text search."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    delete,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.db import utcnow
from townhall.modules.link.models import Link, LinkTag, StoredImage, Tag

_FTS = table("links_fts", column("rowid"))
_WORD = re.compile(r"[\w]+", re.UNICODE)


def tag_key(name: str) -> str:
    """Matching key of a tag: "Web Dev", "web-dev" and "web_dev" are one tag."""
    return re.sub(r"[\s\-_#]+", "", name.strip().lower())[:100]


def query_terms(q: str) -> list[str]:
    """Normalised search words: lowercase, punctuation dropped, at most 8."""
    return [w.lower() for w in _WORD.findall(q)][:8]


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class LinkRepository:
    """Queries over links, tags, link_tags and stored_images."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def is_sqlite(self) -> bool:
        return self.session.get_bind().dialect.name == "sqlite"

    # Links -----------------------------------------------------------------------------------
    async def get(
        self, link_id: uuid.UUID, *, user_id: uuid.UUID | None = None, with_deleted: bool = False
    ) -> Link | None:
        stmt = select(Link).where(Link.id == link_id)
        if user_id is not None:
            stmt = stmt.where(Link.user_id == user_id)
        if not with_deleted:
            stmt = stmt.where(Link.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_for_update(self, link_id: uuid.UUID) -> Link | None:
        stmt = select(Link).where(Link.id == link_id)
        if not self.is_sqlite:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_by_hash(self, user_id: uuid.UUID, url_hash: str) -> Link | None:
        stmt = select(Link).where(Link.user_id == user_id, Link.url_hash == url_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def existing_hashes(
        self, user_id: uuid.UUID, hashes: Sequence[str]
    ) -> tuple[set[str], list[Link]]:
        """Which hashes the user has as live links, and their soft-deleted links among them."""
        live: set[str] = set()
        deleted: list[Link] = []
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start : start + 500])
            stmt = select(Link.url_hash, Link.deleted_at.is_(None)).where(
                Link.user_id == user_id, Link.url_hash.in_(chunk)
            )
            rows = (await self.session.execute(stmt)).all()
            live.update(digest for digest, alive in rows if alive)
            gone = [digest for digest, alive in rows if not alive]
            if gone:
                stmt_gone = select(Link).where(Link.user_id == user_id, Link.url_hash.in_(gone))
                deleted += (await self.session.execute(stmt_gone)).scalars().all()
        return live, deleted

    def _filtered(
        self, user_id: uuid.UUID, *, tag: str | None, status: str | None, q: str | None
    ) -> Select[Any]:
        stmt = select(Link).where(Link.user_id == user_id, Link.deleted_at.is_(None))
        if tag:
            stmt = stmt.where(
                Link.id.in_(
                    select(LinkTag.link_id)
                    .join(Tag, Tag.id == LinkTag.tag_id)
                    .where(Tag.user_id == user_id, Tag.key == tag_key(tag))
                )
            )
        if status:
            stmt = stmt.where(Link.status == status)
        for term in query_terms(q or ""):
            pattern = f"%{_like_escape(term)}%"
            stmt = stmt.where(
                or_(
                    Link.search_text.ilike(pattern, escape="\\"),
                    Link.url.ilike(pattern, escape="\\"),
                )
            )
        return stmt

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        tag: str | None,
        status: str | None,
        q: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[Link], int]:
        base = self._filtered(user_id, tag=tag, status=status, q=q)
        total = (
            await self.session.execute(select(func.count()).select_from(base.subquery()))
        ).scalar_one()
        stmt = base.order_by(Link.created_at.desc(), Link.id.desc()).offset(offset).limit(limit)
        return list((await self.session.execute(stmt)).scalars().all()), int(total)

    async def after_cursor(
        self,
        user_id: uuid.UUID,
        *,
        tag: str | None,
        status: str | None,
        q: str | None,
        cursor: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Link]:
        stmt = self._filtered(user_id, tag=tag, status=status, q=q)
        if cursor is not None:
            created, last_id = cursor
            stmt = stmt.where(
                or_(Link.created_at < created, and_(Link.created_at == created, Link.id < last_id))
            )
        stmt = stmt.order_by(Link.created_at.desc(), Link.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars().all())

    async def changed_since(
        self,
        user_id: uuid.UUID,
        since: datetime | tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Link]:
        """Links (deleted too) changed at/after a timestamp or after a (time, id) keyset."""
        stmt = select(Link).where(Link.user_id == user_id)
        if since is None:
            stmt = stmt.where(Link.deleted_at.is_(None))
        elif isinstance(since, tuple):
            when, last_id = since
            stmt = stmt.where(
                or_(Link.updated_at > when, and_(Link.updated_at == when, Link.id > last_id))
            )
        else:
            stmt = stmt.where(Link.updated_at >= since)
        stmt = stmt.order_by(Link.updated_at.asc(), Link.id.asc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars().all())

    async def export_all(self, user_id: uuid.UUID) -> list[Link]:
        stmt = (
            select(Link)
            .where(Link.user_id == user_id, Link.deleted_at.is_(None))
            .order_by(Link.created_at.asc())
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def set_status(
        self,
        link_id: uuid.UUID,
        status: str,
        *,
        only_from: Sequence[str] | None = None,
        **values: Any,
    ) -> bool:
        """Move a link to `status` (when in one of `only_from`); False if it was not there."""
        stmt = update(Link).where(Link.id == link_id, Link.deleted_at.is_(None))
        if only_from is not None:
            stmt = stmt.where(Link.status.in_(list(only_from)))
        stmt = stmt.values(status=status, **values).execution_options(synchronize_session=False)
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def stalled(
        self, statuses: Sequence[str], before: datetime, limit: int
    ) -> list[uuid.UUID]:
        stmt = (
            select(Link.id)
            .where(
                Link.status.in_(list(statuses)), Link.updated_at < before, Link.deleted_at.is_(None)
            )
            .order_by(Link.updated_at.asc())
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    # Search ----------------------------------------------------------------------------------
    async def search(self, user_id: uuid.UUID, q: str, limit: int) -> list[tuple[Link, float]]:
        terms = query_terms(q)
        if not terms:
            return []
        if self.is_sqlite:
            return await self._search_sqlite(user_id, terms, limit)
        return await self._search_postgres(user_id, q, terms, limit)

    async def _search_sqlite(
        self, user_id: uuid.UUID, terms: list[str], limit: int
    ) -> list[tuple[Link, float]]:
        # FTS5 with prefix terms ("리액트*" matches the token "리액트훅"), ranked by bm25 ...
        match = " AND ".join('"' + t.replace('"', "") + '"*' for t in terms)
        rank: ColumnElement[float] = literal_column("bm25(links_fts, 4.0, 1.0)")
        stmt = (
            select(Link, rank)
            .join(_FTS, _FTS.c.rowid == literal_column("links.rowid"))
            .where(text("links_fts MATCH :match").bindparams(match=match))
            .where(Link.user_id == user_id, Link.deleted_at.is_(None))
            .order_by(rank.asc(), Link.created_at.desc())
            .limit(limit)
        )
        hits = [(link, -float(score)) for link, score in (await self.session.execute(stmt)).all()]
        if len(hits) >= limit:
            return hits
        # ... and a substring fallback inside words (Korean compounds: "훅" in "리액트훅").
        seen = {link.id for link, _ in hits}
        fallback = self._filtered(user_id, tag=None, status=None, q=" ".join(terms))
        if seen:
            fallback = fallback.where(Link.id.not_in(seen))
        fallback = fallback.order_by(Link.created_at.desc()).limit(limit - len(hits))
        hits += [(link, 0.0) for link in (await self.session.execute(fallback)).scalars().all()]
        return hits

    async def _search_postgres(
        self, user_id: uuid.UUID, q: str, terms: list[str], limit: int
    ) -> list[tuple[Link, float]]:
        vector = (
            "(setweight(to_tsvector('english', coalesce(links.title, '')), 'A') || "
            "setweight(to_tsvector('english', links.search_text), 'B'))"
        )
        tsquery = "plainto_tsquery('english', :q)"
        # Each term must match as a word (tsvector) or as a substring (pg_trgm index; Korean).
        conditions = []
        params: dict[str, Any] = {"q": " ".join(terms)}
        for i, term in enumerate(terms):
            params[f"t{i}"] = f"%{_like_escape(term)}%"
            conditions.append(f"links.search_text ILIKE :t{i}")
        like_all = " AND ".join(conditions)
        # A UNION lets each GIN index (tsvector, trigram) serve its half; an OR would scan.
        own = and_(Link.user_id == user_id, Link.deleted_at.is_(None))
        by_words = select(Link.id).where(
            own, text(f"{vector} @@ {tsquery}").bindparams(q=params["q"])
        )
        by_parts = select(Link.id).where(
            own, text(f"({like_all})").bindparams(**{k: v for k, v in params.items() if k != "q"})
        )
        where = Link.id.in_(union(by_words, by_parts).subquery().select())
        joined = " ".join(terms)
        rank: ColumnElement[float] = func.ts_rank(
            literal_column(vector), func.plainto_tsquery("english", joined)
        ) + 0.1 * func.word_similarity(joined, Link.search_text)
        stmt = (
            select(Link, rank)
            .where(Link.user_id == user_id, Link.deleted_at.is_(None), where)
            .order_by(rank.desc(), Link.created_at.desc())
            .limit(limit)
        )
        return [(link, float(score)) for link, score in (await self.session.execute(stmt)).all()]

    # Tags ------------------------------------------------------------------------------------
    async def tags_of_user(self, user_id: uuid.UUID) -> list[Tag]:
        stmt = select(Tag).where(Tag.user_id == user_id).order_by(Tag.name)
        return list((await self.session.execute(stmt)).scalars().all())

    async def tag_counts(self, user_id: uuid.UUID) -> list[tuple[Tag, int]]:
        live = select(LinkTag.tag_id, func.count().label("n")).join(
            Link, Link.id == LinkTag.link_id
        )
        live = live.where(Link.user_id == user_id, Link.deleted_at.is_(None)).group_by(
            LinkTag.tag_id
        )
        sub = live.subquery()
        stmt = (
            select(Tag, func.coalesce(sub.c.n, 0))
            .outerjoin(sub, sub.c.tag_id == Tag.id)
            .where(Tag.user_id == user_id)
            .order_by(func.coalesce(sub.c.n, 0).desc(), Tag.name)
        )
        return [(tag, int(n)) for tag, n in (await self.session.execute(stmt)).all()]

    async def ensure_tag(
        self, user_id: uuid.UUID, name: str, key: str, *, kind: str, category: str | None
    ) -> Tag:
        """The user's tag with this key, created if missing (concurrent taggers race safely)."""
        values = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "name": name,
            "key": key,
            "kind": kind,
            "category": category,
            "created_at": utcnow(),
        }
        insert = sqlite_insert if self.is_sqlite else pg_insert
        stmt = (
            insert(Tag).values(**values).on_conflict_do_nothing(index_elements=["user_id", "key"])
        )
        await self.session.execute(stmt)
        tag = await self.tag_by_key(user_id, key)
        assert tag is not None
        return tag

    async def tag_by_key(self, user_id: uuid.UUID, key: str) -> Tag | None:
        stmt = select(Tag).where(Tag.user_id == user_id, Tag.key == key)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def links_with_tag(self, tag_id: uuid.UUID) -> list[Link]:
        stmt = (
            select(Link).join(LinkTag, LinkTag.link_id == Link.id).where(LinkTag.tag_id == tag_id)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def delete_tag(self, tag: Tag) -> None:
        await self.session.execute(delete(LinkTag).where(LinkTag.tag_id == tag.id))
        await self.session.delete(tag)

    async def mark_tag_human(self, tag_id: uuid.UUID) -> None:
        await self.session.execute(
            update(LinkTag)
            .where(LinkTag.tag_id == tag_id)
            .values(is_auto_generated=False, confidence=None)
            .execution_options(synchronize_session=False)
        )

    # Images ----------------------------------------------------------------------------------
    async def images_of(
        self, link_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, StoredImage]]:
        found: dict[uuid.UUID, dict[str, StoredImage]] = {}
        if not link_ids:
            return found
        stmt = select(StoredImage).where(StoredImage.link_id.in_(list(link_ids)))
        for image in (await self.session.execute(stmt)).scalars().all():
            found.setdefault(image.link_id, {})[image.image_type] = image
        return found

    async def replace_images(self, link_id: uuid.UUID, images: Sequence[StoredImage]) -> list[str]:
        """Swap the link's image rows; returns the object keys no longer referenced."""
        old = (
            (await self.session.execute(select(StoredImage).where(StoredImage.link_id == link_id)))
            .scalars()
            .all()
        )
        new_keys = {i.object_key for i in images}
        stale = [o.object_key for o in old if o.object_key not in new_keys]
        await self.session.execute(delete(StoredImage).where(StoredImage.link_id == link_id))
        self.session.add_all(images)
        await self.session.flush()
        return stale
