"""Tables of the Docs app: workspaces, members, the page tree, shares and favorites."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from townhall.core.db import Base, TimestampMixin, new_id, utcnow


class WorkspaceRole(StrEnum):
    """A member's role in a workspace."""

    owner = "owner"
    editor = "editor"
    viewer = "viewer"


class ShareRole(StrEnum):
    """What a page share grants."""

    editor = "editor"
    viewer = "viewer"


class DocWorkspace(TimestampMixin, Base):
    """A workspace: a named tree of pages with members."""

    __tablename__ = "doc_workspaces"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class DocMember(Base):
    """A user's membership of a workspace."""

    __tablename__ = "doc_members"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("doc_workspaces.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocPage(TimestampMixin, Base):
    """A page: a node of the tree whose body is the collab document "doc"/<id hex>."""

    __tablename__ = "doc_pages"
    __table_args__ = (
        Index("ix_doc_pages_workspace_parent", "workspace_id", "parent_id", "position"),
        Index("ix_doc_pages_trash_root", "trash_root_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("doc_workspaces.id", ondelete="CASCADE")
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("doc_pages.id", ondelete="CASCADE"), default=None
    )
    # Fractional order among siblings: a move writes one row, not the whole list.
    position: Mapped[float] = mapped_column(Float, default=0.0)
    title: Mapped[str] = mapped_column(String(300), default="")
    icon: Mapped[str | None] = mapped_column(String(32), default=None)
    cover: Mapped[str | None] = mapped_column(Text, default=None)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # Set on every page of a trashed subtree; trash_root_id names the page the user trashed,
    # so restoring it brings back exactly what went with it.
    trashed_at: Mapped[datetime | None] = mapped_column(default=None)
    trash_root_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    public_token: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    # Plain text of the body, extracted from the Yjs state on every flush (search reads it).
    body_text: Mapped[str] = mapped_column(Text, default="")


class DocShare(Base):
    """A page (and its subpages) shared with one user."""

    __tablename__ = "doc_shares"
    __table_args__ = (UniqueConstraint("page_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    page_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doc_pages.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocFavorite(Base):
    """A page a user starred."""

    __tablename__ = "doc_favorites"
    __table_args__ = (UniqueConstraint("user_id", "page_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    page_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doc_pages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
