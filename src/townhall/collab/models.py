"""Stored Yjs documents, their named versions, and the embedded write-back buffer."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from townhall.core.db import Base, TimestampMixin, new_id, utcnow


class CollabDocument(TimestampMixin, Base):
    """The flushed state of one document: a Yjs update encoding the whole doc."""

    __tablename__ = "collab_documents"
    __table_args__ = (UniqueConstraint("service", "doc_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service: Mapped[str] = mapped_column(String(16))
    doc_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    state_vector: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped on every write; writers compare it so a stale flusher never overwrites.
    revision: Mapped[int] = mapped_column(Integer, default=0)


class CollabVersion(Base):
    """A named snapshot taken whenever a flush changed the document."""

    __tablename__ = "collab_versions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collab_documents.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollabPendingUpdate(Base):
    """The embedded-mode write-back buffer: updates waiting for the flusher."""

    __tablename__ = "collab_pending_updates"
    __table_args__ = (Index("ix_collab_pending_updates_doc", "service", "doc_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    service: Mapped[str] = mapped_column(String(16))
    doc_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
