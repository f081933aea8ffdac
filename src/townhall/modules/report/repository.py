"""All SQL of the Reports app."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.models import Role, User, UserRole
from townhall.core.db import utcnow
from townhall.modules.report.models import (
    OPEN_STATUSES,
    AuditEntry,
    Category,
    Comment,
    Department,
    Follow,
    Notification,
    Report,
    ReportPhoto,
    ReportUpdate,
    RoutingRule,
)


class ReportRepository:
    """Queries over reports, their trail and the reference data."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: object) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    # -- reference data -----------------------------------------------------------------

    async def departments(self) -> Sequence[Department]:
        return (await self.session.scalars(select(Department).order_by(Department.name))).all()

    async def department(self, department_id: uuid.UUID) -> Department | None:
        return await self.session.get(Department, department_id)

    async def department_by_slug(self, slug: str) -> Department | None:
        return await self.session.scalar(select(Department).where(Department.slug == slug))

    async def categories(self, *, active_only: bool = False) -> Sequence[Category]:
        q = select(Category).order_by(Category.name)
        if active_only:
            q = q.where(Category.active.is_(True))
        return (await self.session.scalars(q)).all()

    async def category(self, category_id: uuid.UUID) -> Category | None:
        return await self.session.get(Category, category_id)

    async def category_by_code(self, code: str) -> Category | None:
        return await self.session.scalar(select(Category).where(Category.code == code))

    async def rules(self) -> Sequence[RoutingRule]:
        q = select(RoutingRule).order_by(RoutingRule.position, RoutingRule.created_at)
        return (await self.session.scalars(q)).all()

    async def rule(self, rule_id: uuid.UUID) -> RoutingRule | None:
        return await self.session.get(RoutingRule, rule_id)

    async def delete(self, row: object) -> None:
        await self.session.delete(row)
        await self.session.flush()

    # -- reports ------------------------------------------------------------------------

    async def get(self, report_id: uuid.UUID, *, for_update: bool = False) -> Report | None:
        q = select(Report).where(Report.id == report_id)
        if for_update:
            q = q.with_for_update()
        return await self.session.scalar(q)

    async def find(
        self,
        *,
        status: Sequence[str] | None = None,
        departments: set[uuid.UUID] | None = None,
        triage: bool = False,
        reporter_id: uuid.UUID | None = None,
        category_ids: Sequence[uuid.UUID] | None = None,
        ids: Sequence[uuid.UUID] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[Sequence[Report], int]:
        conds: list[ColumnElement[bool]] = []
        if status:
            conds.append(Report.status.in_(list(status)))
        if departments is not None:
            conds.append(Report.department_id.in_(list(departments)))
        if triage:
            conds.append(Report.department_id.is_(None))
        if reporter_id is not None:
            conds.append(Report.reporter_id == reporter_id)
        if category_ids is not None:
            conds.append(Report.category_id.in_(list(category_ids)))
        if ids is not None:
            conds.append(Report.id.in_(list(ids)))
        if since is not None:
            conds.append(Report.created_at >= since)
        if until is not None:
            conds.append(Report.created_at <= until)
        where = and_(*conds) if conds else None
        q = select(Report).order_by(Report.created_at.desc(), Report.id).limit(limit).offset(offset)
        cq = select(func.count()).select_from(Report)
        if where is not None:
            q, cq = q.where(where), cq.where(where)
        rows = (await self.session.scalars(q)).all()
        return rows, int(await self.session.scalar(cq) or 0)

    async def count_in_department(self, department_id: uuid.UUID) -> int:
        q = select(func.count()).select_from(Report).where(Report.department_id == department_id)
        return int(await self.session.scalar(q) or 0)

    async def ids_in_status(self, status: Sequence[str], limit: int) -> list[uuid.UUID]:
        q = (
            select(Report.id)
            .where(Report.status.in_(list(status)))
            .order_by(Report.created_at.desc(), Report.id)
            .limit(limit)
        )
        return list((await self.session.scalars(q)).all())

    async def nearby_open(
        self, lat: float, lng: float, radius_m: float, category_id: uuid.UUID | None
    ) -> Sequence[Report]:
        """Open reports inside the bounding box of the radius (exact distance is the caller's)."""
        dlat = radius_m / 111_320
        dlng = radius_m / (111_320 * max(0.01, math.cos(math.radians(lat))))
        q = select(Report).where(
            Report.status.in_([s.value for s in OPEN_STATUSES]),
            Report.lat.between(lat - dlat, lat + dlat),
            Report.lng.between(lng - dlng, lng + dlng),
        )
        if category_id is not None:
            q = q.where(Report.category_id == category_id)
        return (await self.session.scalars(q.limit(200))).all()

    async def photos(self, report_id: uuid.UUID) -> Sequence[ReportPhoto]:
        q = select(ReportPhoto).where(ReportPhoto.report_id == report_id)
        return (await self.session.scalars(q.order_by(ReportPhoto.position))).all()

    async def updates(self, report_id: uuid.UUID) -> Sequence[ReportUpdate]:
        q = select(ReportUpdate).where(ReportUpdate.report_id == report_id)
        return (await self.session.scalars(q.order_by(ReportUpdate.created_at))).all()

    async def comments(self, report_id: uuid.UUID, *, internal: bool) -> Sequence[Comment]:
        q = select(Comment).where(Comment.report_id == report_id)
        if not internal:
            q = q.where(Comment.internal.is_(False))
        return (await self.session.scalars(q.order_by(Comment.created_at))).all()

    async def users(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, User]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(User).where(User.id.in_(list(ids))))
        return {u.id: u for u in rows}

    async def user_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email.strip().lower()))

    # -- follows ------------------------------------------------------------------------

    async def follow(self, report_id: uuid.UUID, user_id: uuid.UUID) -> Follow | None:
        q = select(Follow).where(Follow.report_id == report_id, Follow.user_id == user_id)
        return await self.session.scalar(q)

    async def followers(self, report_id: uuid.UUID) -> list[uuid.UUID]:
        q = select(Follow.user_id).where(Follow.report_id == report_id)
        return list((await self.session.scalars(q)).all())

    async def refresh_follower_count(self, report_id: uuid.UUID) -> int:
        count = int(
            await self.session.scalar(
                select(func.count()).select_from(Follow).where(Follow.report_id == report_id)
            )
            or 0
        )
        await self.session.execute(
            update(Report).where(Report.id == report_id).values(follower_count=count)
        )
        return count

    # -- staff --------------------------------------------------------------------------

    async def staff_of(self, department_id: uuid.UUID) -> list[uuid.UUID]:
        """Users holding officer or department_admin in the department."""
        q = (
            select(UserRole.user_id)
            .join(Role, Role.id == UserRole.role_id)
            .where(
                Role.name.in_(["officer", "department_admin"]),
                UserRole.scope == f"department:{department_id}",
            )
            .distinct()
        )
        return list((await self.session.scalars(q)).all())

    # -- notifications ------------------------------------------------------------------

    async def notifications(
        self, user_id: uuid.UUID, *, unread: bool, limit: int
    ) -> Sequence[Notification]:
        q = select(Notification).where(Notification.user_id == user_id)
        if unread:
            q = q.where(Notification.read_at.is_(None))
        q = q.order_by(Notification.created_at.desc()).limit(limit)
        return (await self.session.scalars(q)).all()

    async def unread_count(self, user_id: uuid.UUID) -> int:
        q = (
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        return int(await self.session.scalar(q) or 0)

    async def mark_read(self, user_id: uuid.UUID, notification_id: uuid.UUID | None) -> int:
        q = update(Notification).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
        if notification_id is not None:
            q = q.where(Notification.id == notification_id)
        result = await self.session.execute(q.values(read_at=utcnow()))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- audit --------------------------------------------------------------------------

    async def audit(
        self,
        *,
        departments: set[uuid.UUID] | None,
        report_id: uuid.UUID | None,
        limit: int,
        offset: int = 0,
    ) -> Sequence[AuditEntry]:
        q = select(AuditEntry)
        if report_id is not None:
            q = q.where(AuditEntry.report_id == report_id)
        if departments is not None:
            q = q.where(AuditEntry.department_id.in_(list(departments)))
        q = q.order_by(AuditEntry.created_at.desc(), AuditEntry.id).limit(limit).offset(offset)
        return (await self.session.scalars(q)).all()

    # -- statistics ---------------------------------------------------------------------

    async def stats_rows(
        self, departments: set[uuid.UUID] | None
    ) -> Sequence[
        tuple[str, uuid.UUID | None, uuid.UUID | None, datetime, datetime | None, float, float]
    ]:
        q = select(
            Report.status,
            Report.category_id,
            Report.department_id,
            Report.created_at,
            Report.resolved_at,
            Report.lat,
            Report.lng,
        )
        if departments is not None:
            q = q.where(Report.department_id.in_(list(departments)))
        return [tuple(r) for r in (await self.session.execute(q)).all()]  # type: ignore[misc]
