"""Tables of the Links app: links, per-user tags, link_tags and stored thumbnail images."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from townhall.core.db import Base, TimestampMixin, new_id, utcnow


class LinkStatus(StrEnum):
    """Where a link is in the pipeline (seed 002's statuses)."""

    pending = "pending"
    scraping = "scraping"
    scraping_completed = "scraping_completed"
    thumbnailing = "thumbnailing"
    thumbnail_completed = "thumbnail_completed"
    tagging = "tagging"
    completed = "completed"
    failed = "failed"


class Link(TimestampMixin, Base):
    """A saved URL; `version` counts user edits (sync conflict detection)."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("user_id", "url_hash", name="uq_links_user_url_hash"),
        Index("ix_links_user_created", "user_id", "created_at"),
        Index("ix_links_user_updated", "user_id", "updated_at"),
        Index("ix_links_status_updated", "status", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    normalized_url: Mapped[str] = mapped_column(Text)
    url_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(40), default="web")
    title: Mapped[str | None] = mapped_column(Text, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    author: Mapped[str | None] = mapped_column(String(300), default=None)
    site_name: Mapped[str | None] = mapped_column(String(300), default=None)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    content_text: Mapped[str | None] = mapped_column(Text, default=None)
    media_type: Mapped[str | None] = mapped_column(String(40), default=None)
    thumbnail_original_url: Mapped[str | None] = mapped_column(Text, default=None)
    thumbnail_storage_path: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default=LinkStatus.pending.value)
    processing_error: Mapped[str | None] = mapped_column(Text, default=None)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    is_favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Time of the last user edit (not pipeline progress): offline pushes are compared with it.
    edited_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # Title, description, note, tags and main text in one column: what search indexes.
    search_text: Mapped[str] = mapped_column(Text, default="")

    link_tags: Mapped[list[LinkTag]] = relationship(
        back_populates="link", cascade="all, delete-orphan", lazy="selectin"
    )


class Tag(Base):
    """A user's tag; `kind` is 'user' or 'ai' (created by the tagger, promotable)."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_tags_user_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # Matching key: lowercased, without spaces, '-' and '_' (so "Web Dev" == "web-dev").
    key: Mapped[str] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(40), default=None)
    kind: Mapped[str] = mapped_column(String(8), default="user")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkTag(Base):
    """A tag on a link, from the user or the AI tagger (with its confidence)."""

    __tablename__ = "link_tags"
    __table_args__ = (Index("ix_link_tags_tag", "tag_id"),)

    link_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )
    is_auto_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    link: Mapped[Link] = relationship(back_populates="link_tags")
    tag: Mapped[Tag] = relationship(lazy="joined")


class StoredImage(Base):
    """A resized thumbnail in object storage."""

    __tablename__ = "stored_images"
    __table_args__ = (UniqueConstraint("link_id", "image_type", name="uq_stored_images_link_type"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    bucket: Mapped[str] = mapped_column(String(100))
    object_key: Mapped[str] = mapped_column(String(500))
    # small (150), medium (300), large (600).
    image_type: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(40), default="image/jpeg")
    source_hash: Mapped[str] = mapped_column(String(64))
    is_placeholder: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
