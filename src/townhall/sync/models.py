"""Sync engine tables: collections, members, documents, events, stream counters, snapshots."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from townhall.core.db import Base, TimestampMixin, new_id, utcnow

# JSONB on PostgreSQL (binary, indexable), SQLite's JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class SyncCollection(TimestampMixin, Base):
    """A stream of JSON documents owned by one user and shared with members."""

    __tablename__ = "sync_collections"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class SyncMember(Base):
    """A user a collection is shared with, as `read` or `write`."""

    __tablename__ = "sync_members"

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sync_collections.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncStream(Base):
    """The per-stream sequence counter; its row lock serialises a stream's writers."""

    __tablename__ = "sync_streams"

    stream: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sync_collections.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncDocument(Base):
    """The current state of one document; `deleted` marks a tombstone."""

    __tablename__ = "sync_documents"

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sync_collections.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    deleted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncEvent(Base):
    """One committed change: gapless `seq` per stream, `patch` taken from the edit itself."""

    __tablename__ = "sync_events"

    stream: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sync_collections.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    doc_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(16))
    patch: Mapped[Any] = mapped_column(JSONType, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_sync_events_stream_ts", "stream", "ts"),)


class SyncSnapshot(Base):
    """Every live document of a stream as of `seq`."""

    __tablename__ = "sync_snapshots"

    stream: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sync_collections.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncClientState(Base):
    """A client's last acknowledged position in one stream (its state vector entry)."""

    __tablename__ = "sync_client_states"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sync_collections.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
