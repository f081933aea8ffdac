"""Tables of the Reports app: departments, categories, routing rules, reports and their trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from townhall.core.db import Base, TimestampMixin, new_id, utcnow


class ReportStatus(StrEnum):
    """The workflow states (transitions live in workflow.py)."""

    received = "received"
    assigned = "assigned"
    in_progress = "in_progress"
    resolved = "resolved"
    rejected = "rejected"
    duplicate = "duplicate"


OPEN_STATUSES = (ReportStatus.received, ReportStatus.assigned, ReportStatus.in_progress)


class Department(TimestampMixin, Base):
    """A team that handles reports (roads, lighting, sanitation...)."""

    __tablename__ = "report_departments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), default=None)


class Category(TimestampMixin, Base):
    """A kind of issue; `code` is the Open311 service_code."""

    __tablename__ = "report_categories"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_ko: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    group: Mapped[str] = mapped_column(String(100), default="")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoutingRule(TimestampMixin, Base):
    """category x area -> department; the lowest position that matches wins."""

    __tablename__ = "report_routing_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    position: Mapped[int] = mapped_column(Integer, default=100)
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("report_categories.id", ondelete="CASCADE"), default=None
    )
    # An area is a bounding box; all four None means anywhere.
    min_lat: Mapped[float | None] = mapped_column(Float, default=None)
    max_lat: Mapped[float | None] = mapped_column(Float, default=None)
    min_lng: Mapped[float | None] = mapped_column(Float, default=None)
    max_lng: Mapped[float | None] = mapped_column(Float, default=None)
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("report_departments.id", ondelete="CASCADE")
    )


class Report(TimestampMixin, Base):
    """A citizen's report; department None means it waits in the triage queue."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_status_created", "status", "created_at"),
        Index("ix_reports_department_status", "department_id", "status"),
        Index("ix_reports_reporter", "reporter_id", "created_at"),
        Index("ix_reports_lat_lng", "lat", "lng"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("report_categories.id", ondelete="SET NULL"), default=None
    )
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(500), default="")
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(20), default="web")
    status: Mapped[str] = mapped_column(String(20), default=ReportStatus.received.value)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("report_departments.id", ondelete="SET NULL"), default=None
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reports.id", ondelete="SET NULL"), default=None
    )
    # "pending" until report.analyze ran, then "routed" | "triage" | "manual"
    routing: Mapped[str] = mapped_column(String(20), default="pending")
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    analyzed_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    follower_count: Mapped[int] = mapped_column(Integer, default=0)


class ReportPhoto(Base):
    """A photo: the private original as uploaded and a public copy without EXIF."""

    __tablename__ = "report_photos"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    original_key: Mapped[str] = mapped_column(String(300))
    public_key: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    blurred: Mapped[int] = mapped_column(Integer, default=0)  # regions blurred in the copy


class ReportUpdate(Base):
    """One status transition with its note (the public timeline)."""

    __tablename__ = "report_updates"
    __table_args__ = (Index("ix_report_updates_report", "report_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(Base):
    """A comment; internal ones are visible to staff only."""

    __tablename__ = "report_comments"
    __table_args__ = (Index("ix_report_comments_report", "report_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Follow(Base):
    """A citizen following (+1) a report."""

    __tablename__ = "report_follows"
    __table_args__ = (UniqueConstraint("report_id", "user_id", name="uq_report_follows"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A stored notification (also pushed live over /api/v1/reports/ws)."""

    __tablename__ = "report_notifications"
    __table_args__ = (Index("ix_report_notifications_user", "user_id", "read_at", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Append-only: who changed or viewed what, with before/after."""

    __tablename__ = "report_audit"
    __table_args__ = (
        Index("ix_report_audit_report", "report_id", "created_at"),
        Index("ix_report_audit_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    action: Mapped[str] = mapped_column(String(60))
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reports.id", ondelete="SET NULL"), default=None
    )
    department_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    target: Mapped[str] = mapped_column(String(200), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
