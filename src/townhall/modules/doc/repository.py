"""All SQL of the Docs app, with the dialect branch for full-text search."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.models import User
from townhall.modules.doc.models import DocFavorite, DocMember, DocPage, DocShare, DocWorkspace

# Same expression as the ix_doc_pages_fts index of the migration, so PostgreSQL uses it.
FTS_VECTOR = "to_tsvector('simple', doc_pages.title || ' ' || doc_pages.body_text)"


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DocRepository:
    """Queries over workspaces, members, pages, shares and favorites."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def add(self, row: object) -> None:
        self.session.add(row)
        await self.session.flush()

    # Workspaces and members --------------------------------------------------------------------

    async def get_workspace(self, workspace_id: uuid.UUID) -> DocWorkspace | None:
        return await self.session.get(DocWorkspace, workspace_id)

    async def workspaces_of(self, user_id: uuid.UUID) -> Sequence[tuple[DocWorkspace, str]]:
        stmt = (
            select(DocWorkspace, DocMember.role)
            .join(DocMember, DocMember.workspace_id == DocWorkspace.id)
            .where(DocMember.user_id == user_id)
            .order_by(DocWorkspace.created_at, DocWorkspace.id)
        )
        return [(w, r) for w, r in (await self.session.execute(stmt)).all()]

    async def member(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> DocMember | None:
        stmt = select(DocMember).where(
            DocMember.workspace_id == workspace_id, DocMember.user_id == user_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def members(self, workspace_id: uuid.UUID) -> Sequence[tuple[DocMember, User]]:
        stmt = (
            select(DocMember, User)
            .join(User, User.id == DocMember.user_id)
            .where(DocMember.workspace_id == workspace_id)
            .order_by(DocMember.created_at, User.email)
        )
        return [(m, u) for m, u in (await self.session.execute(stmt)).all()]

    async def count_owners(self, workspace_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(
            DocMember.workspace_id == workspace_id, DocMember.role == "owner"
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def delete_member(self, member: DocMember) -> None:
        await self.session.delete(member)
        await self.session.flush()

    async def users(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
        wanted = set(ids)
        if not wanted:
            return {}
        rows = (await self.session.execute(select(User).where(User.id.in_(wanted)))).scalars()
        return {u.id: u for u in rows}

    # Pages -------------------------------------------------------------------------------------

    async def get_page(self, page_id: uuid.UUID) -> DocPage | None:
        return await self.session.get(DocPage, page_id)

    async def page_by_token(self, token: str) -> DocPage | None:
        stmt = select(DocPage).where(DocPage.public_token == token)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def pages(
        self, workspace_id: uuid.UUID, *, trashed: bool | None = False
    ) -> Sequence[DocPage]:
        stmt = select(DocPage).where(DocPage.workspace_id == workspace_id)
        if trashed is True:
            stmt = stmt.where(DocPage.trashed_at.is_not(None))
        elif trashed is False:
            stmt = stmt.where(DocPage.trashed_at.is_(None))
        stmt = stmt.order_by(DocPage.position, DocPage.created_at, DocPage.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def trash_roots(self, workspace_id: uuid.UUID) -> Sequence[DocPage]:
        stmt = (
            select(DocPage)
            .where(DocPage.workspace_id == workspace_id, DocPage.trash_root_id == DocPage.id)
            .order_by(DocPage.trashed_at.desc())
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def tree_links(self, workspace_id: uuid.UUID) -> dict[uuid.UUID, uuid.UUID | None]:
        """page id -> parent id of every page of a workspace (one small query)."""
        stmt = select(DocPage.id, DocPage.parent_id).where(DocPage.workspace_id == workspace_id)
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}

    async def siblings(
        self, workspace_id: uuid.UUID, parent_id: uuid.UUID | None
    ) -> Sequence[DocPage]:
        parent = (
            DocPage.parent_id.is_(None) if parent_id is None else DocPage.parent_id == parent_id
        )
        stmt = (
            select(DocPage)
            .where(DocPage.workspace_id == workspace_id, parent, DocPage.trashed_at.is_(None))
            .order_by(DocPage.position, DocPage.created_at, DocPage.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def set_trashed(
        self, ids: Iterable[uuid.UUID], at: datetime | None, root: uuid.UUID | None
    ) -> None:
        stmt = (
            update(DocPage)
            .where(DocPage.id.in_(list(ids)))
            .values(trashed_at=at, trash_root_id=root)
            .execution_options(synchronize_session="fetch")
        )
        await self.session.execute(stmt)

    async def trashed_with(self, root: uuid.UUID) -> Sequence[uuid.UUID]:
        stmt = select(DocPage.id).where(DocPage.trash_root_id == root)
        return (await self.session.execute(stmt)).scalars().all()

    async def delete_pages(self, ids: Sequence[uuid.UUID]) -> None:
        # parent_id cascades, so a subtree listed in any order goes in one statement.
        await self.session.execute(
            delete(DocPage)
            .where(DocPage.id.in_(list(ids)))
            .execution_options(synchronize_session=False)
        )
        await self.session.flush()

    async def set_body_text(self, page_id: uuid.UUID, text: str) -> bool:
        stmt = update(DocPage).where(DocPage.id == page_id).values(body_text=text)
        result = await self.session.execute(stmt.execution_options(synchronize_session="fetch"))
        return bool(getattr(result, "rowcount", 0))

    # Shares ------------------------------------------------------------------------------------

    async def share(self, page_id: uuid.UUID, user_id: uuid.UUID) -> DocShare | None:
        stmt = select(DocShare).where(DocShare.page_id == page_id, DocShare.user_id == user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def shares_on(
        self, page_ids: Iterable[uuid.UUID], user_id: uuid.UUID
    ) -> Sequence[DocShare]:
        stmt = select(DocShare).where(
            DocShare.page_id.in_(list(page_ids)), DocShare.user_id == user_id
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def shares_of_page(self, page_id: uuid.UUID) -> Sequence[tuple[DocShare, User]]:
        stmt = (
            select(DocShare, User)
            .join(User, User.id == DocShare.user_id)
            .where(DocShare.page_id == page_id)
            .order_by(DocShare.created_at)
        )
        return [(s, u) for s, u in (await self.session.execute(stmt)).all()]

    async def shares_of_user(self, user_id: uuid.UUID) -> Sequence[tuple[DocShare, DocPage]]:
        stmt = (
            select(DocShare, DocPage)
            .join(DocPage, DocPage.id == DocShare.page_id)
            .where(DocShare.user_id == user_id, DocPage.trashed_at.is_(None))
            .order_by(DocPage.title)
        )
        return [(s, p) for s, p in (await self.session.execute(stmt)).all()]

    async def delete_share(self, share: DocShare) -> None:
        await self.session.delete(share)
        await self.session.flush()

    # Favorites ---------------------------------------------------------------------------------

    async def favorite(self, user_id: uuid.UUID, page_id: uuid.UUID) -> DocFavorite | None:
        stmt = select(DocFavorite).where(
            DocFavorite.user_id == user_id, DocFavorite.page_id == page_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def favorite_ids(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        stmt = (
            select(DocFavorite.page_id)
            .where(DocFavorite.user_id == user_id)
            .order_by(DocFavorite.created_at)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def delete_favorite(self, favorite: DocFavorite) -> None:
        await self.session.delete(favorite)
        await self.session.flush()

    async def pages_by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DocPage]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = (await self.session.execute(select(DocPage).where(DocPage.id.in_(wanted)))).scalars()
        return {p.id: p for p in rows}

    # Search ------------------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        workspace_ids: Sequence[uuid.UUID],
        page_ids: Sequence[uuid.UUID],
        limit: int,
    ) -> Sequence[DocPage]:
        """Readable, live pages whose title or text contains every term of `query`."""
        scope: list[ColumnElement[bool]] = []
        if workspace_ids:
            scope.append(DocPage.workspace_id.in_(list(workspace_ids)))
        if page_ids:
            scope.append(DocPage.id.in_(list(page_ids)))
        if not scope:
            return []
        terms = [t for t in query.lower().split() if t][:10]
        substring = and_(
            *(
                or_(
                    func.lower(DocPage.title).like(f"%{_like_escape(t)}%", escape="\\"),
                    func.lower(DocPage.body_text).like(f"%{_like_escape(t)}%", escape="\\"),
                )
                for t in terms
            )
        )
        title_hit = func.lower(DocPage.title).like(f"%{_like_escape(query.lower())}%", escape="\\")
        stmt = select(DocPage).where(or_(*scope), DocPage.trashed_at.is_(None))
        if self.is_postgres:
            # Word matches (stemming-free 'simple' config, so any language) or substrings.
            tsquery = func.plainto_tsquery(literal_column("'simple'"), query)
            vector: ColumnElement[Any] = literal_column(FTS_VECTOR)
            stmt = stmt.where(or_(vector.op("@@")(tsquery), substring)).order_by(
                title_hit.desc(), func.ts_rank(vector, tsquery).desc(), DocPage.updated_at.desc()
            )
        else:
            stmt = stmt.where(substring).order_by(title_hit.desc(), DocPage.updated_at.desc())
        return (await self.session.execute(stmt.limit(limit))).scalars().all()
