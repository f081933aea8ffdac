"""Business rules of the Reports app: filing, routing, workflow, triage, duplicates, audit."""

from __future__ import annotations

import math
import statistics
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, NoReturn

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.rbac import grant_role
from townhall.core.auth.repository import RoleRepository
from townhall.core.db import after_commit, utcnow
from townhall.core.deps import Principal
from townhall.core.errors import BadRequest, Conflict, NotFound, Unauthorized, Unprocessable
from townhall.core.jobs import enqueue_after_commit
from townhall.core.platform import Platform
from townhall.modules.report import auth, workflow
from townhall.modules.report.classify import similarity
from townhall.modules.report.models import (
    OPEN_STATUSES,
    AuditEntry,
    Category,
    Comment,
    Department,
    Follow,
    Report,
    ReportPhoto,
    ReportStatus,
    ReportUpdate,
    RoutingRule,
)
from townhall.modules.report.notify import notify
from townhall.modules.report.photos import store_photos
from townhall.modules.report.pii import has_pii, mask_pii
from townhall.modules.report.repository import ReportRepository
from townhall.modules.report.schemas import (
    Assign,
    CategoryIn,
    CategoryPatch,
    CommentIn,
    CommentOut,
    DepartmentIn,
    DepartmentPatch,
    Merge,
    NearbyOut,
    Override,
    PhotoOut,
    Reanalyze,
    ReportDraft,
    ReportOut,
    RuleIn,
    StaffGrant,
    Stats,
    StatusChange,
    UpdateOut,
)

EARTH_M = 6_371_000.0


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(a))


def rule_matches(rule: RoutingRule, category_id: uuid.UUID | None, lat: float, lng: float) -> bool:
    if rule.category_id is not None and rule.category_id != category_id:
        return False
    return (
        (rule.min_lat is None or lat >= rule.min_lat)
        and (rule.max_lat is None or lat <= rule.max_lat)
        and (rule.min_lng is None or lng >= rule.min_lng)
        and (rule.max_lng is None or lng <= rule.max_lng)
    )


class ReportService:
    """One request's (or job's) view of the Reports domain, acting as `principal`."""

    def __init__(
        self, session: AsyncSession, platform: Platform, principal: Principal | None
    ) -> None:
        self.session = session
        self.platform = platform
        self.settings = platform.settings
        self.principal = principal
        self.repo = ReportRepository(session)

    @property
    def actor_id(self) -> uuid.UUID | None:
        return self.principal.id if self.principal else None

    # -- audit --------------------------------------------------------------------------

    async def audit(
        self,
        action: str,
        report: Report | None = None,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        target: str = "",
        department_id: uuid.UUID | None = None,
    ) -> None:
        await self.repo.add(
            AuditEntry(
                actor_id=self.actor_id,
                action=action,
                report_id=report.id if report else None,
                department_id=department_id or (report.department_id if report else None),
                target=target[:200],
                before=before,
                after=after,
            )
        )

    # -- validation helpers -------------------------------------------------------------

    def check_area(self, lat: float, lng: float) -> None:
        s = self.settings
        if not (s.report_area_min_lat <= lat <= s.report_area_max_lat) or not (
            s.report_area_min_lng <= lng <= s.report_area_max_lng
        ):
            raise Unprocessable(
                f"location ({lat}, {lng}) is outside the service area "
                f"(lat {s.report_area_min_lat}..{s.report_area_max_lat}, "
                f"lng {s.report_area_min_lng}..{s.report_area_max_lng})"
            )

    async def category_of(self, code: str | None) -> Category | None:
        if not code:
            return None
        category = await self.repo.category_by_code(code)
        if category is None or not category.active:
            raise Unprocessable(f"unknown category {code!r}")
        return category

    async def load(self, report_id: uuid.UUID, *, for_update: bool = False) -> Report:
        report = await self.repo.get(report_id, for_update=for_update)
        if report is None:
            raise NotFound("report not found")
        return report

    # -- filing -------------------------------------------------------------------------

    async def create(
        self,
        draft: ReportDraft,
        uploads: Sequence[UploadFile],
        *,
        source: str = "web",
        min_photos: int | None = None,
    ) -> Report:
        """File a report; analysis and routing follow in report.analyze after the commit."""
        assert self.principal is not None
        auth.require(self.principal, auth.CREATE)
        low = self.settings.report_min_photos if min_photos is None else min_photos
        if not low <= len(uploads) <= self.settings.report_max_photos:
            raise Unprocessable(
                f"a report needs {low} to {self.settings.report_max_photos} photos, "
                f"got {len(uploads)}"
            )
        self.check_area(draft.lat, draft.lng)
        category = await self.category_of(draft.category)
        report = Report(
            id=uuid.uuid4(),
            title=draft.title,
            description=draft.description,
            category_id=category.id if category else None,
            lat=draft.lat,
            lng=draft.lng,
            address=draft.address,
            reporter_id=self.principal.id,
            anonymous=draft.anonymous,
            source=source,
        )
        stored = await store_photos(self.platform, report.id, uploads)
        try:
            await self.repo.add(report)
            await self.repo.add(
                *[
                    ReportPhoto(
                        report_id=report.id,
                        position=n,
                        original_key=p.original_key,
                        public_key=p.public_key,
                        content_type=p.content_type,
                        width=p.width,
                        height=p.height,
                    )
                    for n, p in enumerate(stored)
                ]
            )
            self.session.add(Follow(report_id=report.id, user_id=self.principal.id))
            await self.audit("report.created", report, after=self.snapshot(report))
        except BaseException:
            for p in stored:
                await self.platform.storage.delete(p.original_key)
                await self.platform.storage.delete(p.public_key)
            raise
        enqueue_after_commit(
            self.session, self.platform.jobs, "report.analyze", report_id=str(report.id)
        )
        return report

    @staticmethod
    def snapshot(report: Report) -> dict[str, Any]:
        return {
            "status": report.status,
            "category_id": str(report.category_id) if report.category_id else None,
            "department_id": str(report.department_id) if report.department_id else None,
            "assignee_id": str(report.assignee_id) if report.assignee_id else None,
            "priority": report.priority,
            "routing": report.routing,
        }

    async def route(
        self, category_id: uuid.UUID | None, lat: float, lng: float
    ) -> uuid.UUID | None:
        """The department of the first matching rule; None = the triage queue."""
        if category_id is None:
            return None
        for rule in await self.repo.rules():
            if rule_matches(rule, category_id, lat, lng):
                return rule.department_id
        return None

    async def apply_analysis(self, report: Report, analysis: dict[str, Any]) -> None:
        """Store the AI's suggestion; route when confident, else leave for manual triage."""
        before = self.snapshot(report)
        report.analysis = analysis
        report.analyzed_at = utcnow()
        if report.routing in ("manual",) or report.status != ReportStatus.received:
            await self.audit("report.analyzed", report, before=before, after=self.snapshot(report))
            return  # staff already took over: the suggestion is advice only
        confident = float(analysis.get("confidence") or 0) >= self.settings.report_ai_threshold
        suggested = await self.repo.category_by_code(analysis.get("category") or "")
        if confident and suggested is not None:
            if report.category_id is None:
                report.category_id = suggested.id
            report.priority = int(analysis.get("priority") or report.priority)
            department = await self.route(report.category_id, report.lat, report.lng)
            report.department_id = department
            report.routing = "routed" if department else "triage"
        else:
            report.department_id = None
            report.routing = "triage"
        await self.session.flush()
        await self.audit("report.analyzed", report, before=before, after=self.snapshot(report))
        if report.department_id is not None:
            staff = set(await self.repo.staff_of(report.department_id))
            await notify(
                self.session,
                self.platform,
                staff,
                kind="report.routed",
                report_id=report.id,
                title=f"New report: {mask_pii(report.title)}",
                body=mask_pii(str(analysis.get("summary") or "")),
            )
        self._announce(report, "report.analyzed")

    def _announce(self, report: Report, event: str) -> None:
        data = {"type": event, "id": str(report.id), "status": report.status}
        pubsub = self.platform.pubsub

        async def hook() -> None:
            await pubsub.publish("report:events", data)

        after_commit(self.session, hook)

    # -- views --------------------------------------------------------------------------

    async def out(self, report: Report, *, detail: bool = True) -> ReportOut:
        return (await self.outs([report], detail=detail))[0]

    async def outs(self, reports: Sequence[Report], *, detail: bool = False) -> list[ReportOut]:
        """Serialise for the principal; only a staff detail view shows unmasked text (audited)."""
        categories = {c.id: c for c in await self.repo.categories()}
        departments = {d.id: d for d in await self.repo.departments()}
        user_ids = {r.reporter_id for r in reports if r.reporter_id}
        users = await self.repo.users(user_ids)
        me = self.actor_id
        result = []
        for r in reports:
            staff = auth.can(self.principal, auth.STAFF_READ, r.department_id)
            category = categories.get(r.category_id) if r.category_id else None
            department = departments.get(r.department_id) if r.department_id else None
            reporter = users.get(r.reporter_id) if r.reporter_id else None
            # Lists stay masked for everyone, so each unmasked view is a detail view we audit.
            reveal = staff and detail
            clean = (lambda t: t) if reveal else mask_pii
            # Faces and plates are blurred by the analysis: until then only staff and the
            # reporter see the photos.
            show_photos = (
                staff or r.analyzed_at is not None or (me is not None and r.reporter_id == me)
            )
            photos = []
            for p in await self.repo.photos(r.id) if show_photos else ():
                photos.append(
                    PhotoOut(
                        id=p.id,
                        url=await self.platform.storage.signed_url(p.public_key),
                        original_url=(
                            await self.platform.storage.signed_url(p.original_key)
                            if staff
                            else None
                        ),
                        width=p.width,
                        height=p.height,
                    )
                )
            out = ReportOut(
                id=r.id,
                title=clean(r.title),
                description=clean(r.description),
                category=category.code if category else None,
                category_name=category.name if category else None,
                lat=r.lat,
                lng=r.lng,
                address=clean(r.address),
                reporter=(
                    reporter.display_name
                    if reporter and (staff or not r.anonymous or r.reporter_id == me)
                    else None
                ),
                anonymous=r.anonymous,
                mine=me is not None and r.reporter_id == me,
                status=r.status,
                priority=r.priority,
                department_id=r.department_id,
                department=department.name if department else None,
                assignee_id=r.assignee_id if staff else None,
                duplicate_of_id=r.duplicate_of_id,
                routing=r.routing,
                follower_count=r.follower_count,
                created_at=r.created_at,
                updated_at=r.updated_at,
                resolved_at=r.resolved_at,
                photos=photos,
                analysis=r.analysis if staff else None,
                masked=not reveal,
            )
            if detail:
                updates = await self.repo.updates(r.id)
                out.updates = [
                    UpdateOut(
                        from_status=u.from_status,
                        to_status=u.to_status,
                        note=clean(u.note),
                        created_at=u.created_at,
                    )
                    for u in updates
                ]
                comments = await self.repo.comments(r.id, internal=staff)
                authors = await self.repo.users({c.author_id for c in comments if c.author_id})
                hidden = r.anonymous and not staff and r.reporter_id != me
                out.comments = [
                    CommentOut(
                        id=c.id,
                        author=(
                            "Anonymous reporter"
                            if hidden and c.author_id == r.reporter_id
                            else authors[c.author_id].display_name
                            if c.author_id in authors
                            else ""
                        ),
                        body=clean(c.body),
                        internal=c.internal,
                        created_at=c.created_at,
                    )
                    for c in comments
                ]
                if me is not None:
                    out.following = await self.repo.follow(r.id, me) is not None
                texts = [
                    r.title,
                    r.description,
                    r.address,
                    *(c.body for c in comments),
                    *(u.note for u in updates),
                ]
                if reveal and any(has_pii(t) for t in texts):
                    await self.audit("pii.view", r, target="report text")
            result.append(out)
        return result

    async def list_reports(
        self, queue: str, *, status: list[str] | None, limit: int, offset: int
    ) -> tuple[list[ReportOut], int]:
        """public | mine | inbox (my departments) | triage (no department) | all (staff scope)."""
        kwargs: dict[str, Any] = {"status": status, "limit": limit, "offset": offset}
        if queue != "public" and self.principal is None:
            raise Unauthorized(f"sign in to see the {queue} queue")
        if queue == "mine":
            assert self.principal is not None
            kwargs["reporter_id"] = self.principal.id
        elif queue in ("inbox", "all"):
            scope = auth.departments_with(self.principal, auth.STAFF_READ)
            if scope is not None and not scope:
                raise_forbidden()
            if scope is not None:  # None: unscoped staff see every department
                kwargs["departments"] = scope
        elif queue == "triage":
            if auth.departments_with(self.principal, auth.ASSIGN) is not None:
                raise_forbidden()
            kwargs["triage"] = True
        elif queue != "public":
            raise BadRequest(f"unknown queue {queue!r}")
        rows, total = await self.repo.find(**kwargs)
        return await self.outs(rows), total

    # -- workflow -----------------------------------------------------------------------

    async def _transition(self, report: Report, target: str, note: str) -> None:
        if not workflow.allowed(self.settings, report.status, target):
            raise Conflict(f"status cannot go from {report.status} to {target}")
        before = self.snapshot(report)
        previous = report.status
        report.status = target
        if target == ReportStatus.resolved:
            report.resolved_at = utcnow()
        elif target not in (ReportStatus.rejected, ReportStatus.duplicate):
            report.resolved_at = None
        await self.repo.add(
            ReportUpdate(
                report_id=report.id,
                actor_id=self.actor_id,
                from_status=previous,
                to_status=target,
                note=note,
            )
        )
        await self.audit(
            "report.status", report, before=before, after=self.snapshot(report), target=note
        )
        audience = {report.reporter_id, *await self.repo.followers(report.id)} - {
            None,
            self.actor_id,
        }
        await notify(
            self.session,
            self.platform,
            {u for u in audience if u is not None},
            kind="status.changed",
            report_id=report.id,
            title=f"{mask_pii(report.title)}: {previous} -> {target}",
            body=mask_pii(note),
        )
        self._announce(report, "status.changed")

    async def change_status(self, report_id: uuid.UUID, body: StatusChange) -> Report:
        assert self.principal is not None
        report = await self.load(report_id, for_update=True)
        auth.require(self.principal, auth.HANDLE, report.department_id)
        if body.status not in ReportStatus.__members__:
            raise Unprocessable(f"unknown status {body.status!r}")
        if body.status == ReportStatus.assigned and report.assignee_id is None:
            raise Conflict("assign the report to someone to move it to 'assigned'")
        if body.status == ReportStatus.duplicate:
            raise Conflict("merge the report into another one to mark it a duplicate")
        await self._transition(report, body.status, body.note)
        return report

    async def assign(self, report_id: uuid.UUID, body: Assign) -> Report:
        assert self.principal is not None
        report = await self.load(report_id, for_update=True)
        target = body.assignee_id or self.principal.id
        needed = auth.HANDLE if target == self.principal.id else auth.ASSIGN
        auth.require(self.principal, needed, report.department_id)
        if report.department_id is None:
            raise Conflict("route the report to a department before assigning it")
        if target not in await self.repo.staff_of(report.department_id):
            raise Unprocessable("the assignee is not an officer of the report's department")
        if report.status not in [s.value for s in OPEN_STATUSES]:
            raise Conflict(f"a {report.status} report cannot be assigned")
        before = self.snapshot(report)
        report.assignee_id = target
        await self.session.flush()
        await self.audit(
            "report.assign", report, before=before, after=self.snapshot(report), target=str(target)
        )
        if target != self.principal.id:
            await notify(
                self.session,
                self.platform,
                {target},
                kind="report.assigned",
                report_id=report.id,
                title=f"Assigned to you: {mask_pii(report.title)}",
                body=body.note,
            )
        if report.status == ReportStatus.received:
            users = await self.repo.users({target})
            await self._transition(
                report,
                ReportStatus.assigned,
                body.note or f"Assigned to {users[target].display_name}",
            )
        return report

    async def override(self, report_id: uuid.UUID, body: Override) -> Report:
        """Staff correction of category, department or priority (audited as an override)."""
        assert self.principal is not None
        report = await self.load(report_id, for_update=True)
        auth.require(self.principal, auth.ASSIGN, report.department_id)
        before = self.snapshot(report)
        if body.category is not None:
            category = await self.category_of(body.category)
            report.category_id = category.id if category else None
        if body.priority is not None:
            report.priority = body.priority
        moved = False
        if body.department_id is not None and body.department_id != report.department_id:
            if await self.repo.department(body.department_id) is None:
                raise Unprocessable("unknown department")
            report.department_id = body.department_id
            report.assignee_id = None
            moved = True
        elif body.category is not None and body.department_id is None:
            department = await self.route(report.category_id, report.lat, report.lng)
            if department is not None and department != report.department_id:
                report.department_id, report.assignee_id, moved = department, None, True
        report.routing = "manual"
        await self.session.flush()
        await self.audit(
            "report.override", report, before=before, after=self.snapshot(report), target=body.note
        )
        if moved and report.department_id is not None:
            await notify(
                self.session,
                self.platform,
                set(await self.repo.staff_of(report.department_id)) - {self.principal.id},
                kind="report.routed",
                report_id=report.id,
                title=f"Report routed to your department: {mask_pii(report.title)}",
                body=body.note,
            )
        return report

    async def merge(self, report_id: uuid.UUID, body: Merge) -> Report:
        """Mark as a duplicate of an open report; its reporter and followers follow that one."""
        assert self.principal is not None
        report = await self.load(report_id, for_update=True)
        auth.require(self.principal, auth.HANDLE, report.department_id)
        if body.into_id == report.id:
            raise Unprocessable("a report cannot duplicate itself")
        original = await self.load(body.into_id)
        if original.status not in [s.value for s in OPEN_STATUSES]:
            raise Conflict("merge into an open report")
        report.duplicate_of_id = original.id
        for user_id in {report.reporter_id, *await self.repo.followers(report.id)} - {None}:
            if user_id is not None and await self.repo.follow(original.id, user_id) is None:
                self.session.add(Follow(report_id=original.id, user_id=user_id))
        await self.session.flush()
        await self.repo.refresh_follower_count(original.id)
        await self._transition(
            report, ReportStatus.duplicate, body.note or f"Duplicate of {original.title}"
        )
        return report

    async def comment(self, report_id: uuid.UUID, body: CommentIn) -> Comment:
        assert self.principal is not None
        report = await self.load(report_id)
        if body.internal:
            auth.require(self.principal, auth.HANDLE, report.department_id)
        else:
            auth.require(self.principal, auth.CREATE)
        row = Comment(
            report_id=report.id, author_id=self.principal.id, body=body.body, internal=body.internal
        )
        await self.repo.add(row)
        return row

    async def set_follow(self, report_id: uuid.UUID, on: bool) -> int:
        assert self.principal is not None
        auth.require(self.principal, auth.CREATE)
        report = await self.load(report_id)
        existing = await self.repo.follow(report.id, self.principal.id)
        if on and existing is None:
            await self.repo.add(Follow(report_id=report.id, user_id=self.principal.id))
        elif not on and existing is not None:
            await self.repo.delete(existing)
        count = await self.repo.refresh_follower_count(report.id)
        report.follower_count = count
        return count

    # -- duplicates ---------------------------------------------------------------------

    async def nearby(
        self, lat: float, lng: float, category: str | None, text: str, limit: int = 10
    ) -> list[NearbyOut]:
        """Open reports of the category within the radius, most similar text first."""
        self.check_area(lat, lng)
        cat = await self.category_of(category) if category else None
        radius = self.settings.report_duplicate_radius_m
        found = []
        for r in await self.repo.nearby_open(lat, lng, radius, cat.id if cat else None):
            d = distance_m(lat, lng, r.lat, r.lng)
            if d <= radius:
                sim = similarity(text, f"{r.title} {r.description}") if text else 0.0
                found.append((sim, -d, r))
        found.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return [
            NearbyOut(
                id=r.id,
                title=mask_pii(r.title),
                status=r.status,
                distance_m=round(-negd, 1),
                similarity=round(sim, 3),
                follower_count=r.follower_count,
            )
            for sim, negd, r in found[:limit]
        ]

    # -- reference data (admin) ---------------------------------------------------------

    def _manage(self) -> None:
        assert self.principal is not None
        auth.require(self.principal, auth.MANAGE)

    async def create_department(self, body: DepartmentIn) -> Department:
        self._manage()
        if await self.repo.department_by_slug(body.slug):
            raise Conflict(f"department {body.slug!r} exists")
        row = Department(**body.model_dump())
        await self.repo.add(row)
        await self.audit(
            "department.created", target=body.slug, after=body.model_dump(), department_id=row.id
        )
        return row

    async def update_department(
        self, department_id: uuid.UUID, body: DepartmentPatch
    ) -> Department:
        self._manage()
        row = await self.repo.department(department_id)
        if row is None:
            raise NotFound("department not found")
        before = {"name": row.name, "email": row.email}
        for key, value in body.model_dump(exclude_unset=True).items():
            setattr(row, key, value)
        await self.session.flush()
        await self.audit(
            "department.updated",
            target=row.slug,
            before=before,
            after={"name": row.name, "email": row.email},
            department_id=row.id,
        )
        return row

    async def delete_department(self, department_id: uuid.UUID) -> None:
        self._manage()
        row = await self.repo.department(department_id)
        if row is None:
            raise NotFound("department not found")
        # The FK would silently drop those reports out of every inbox.
        held = await self.repo.count_in_department(row.id)
        if held:
            raise Conflict(f"department {row.slug!r} holds {held} report(s); reroute them first")
        await self.audit(
            "department.deleted", target=row.slug, before={"name": row.name}, department_id=row.id
        )
        await self.repo.delete(row)

    async def create_category(self, body: CategoryIn) -> Category:
        self._manage()
        if await self.repo.category_by_code(body.code):
            raise Conflict(f"category {body.code!r} exists")
        row = Category(**body.model_dump())
        await self.repo.add(row)
        await self.audit("category.created", target=body.code, after=body.model_dump())
        return row

    async def update_category(self, category_id: uuid.UUID, body: CategoryPatch) -> Category:
        self._manage()
        row = await self.repo.category(category_id)
        if row is None:
            raise NotFound("category not found")
        changes = body.model_dump(exclude_unset=True)
        before = {k: getattr(row, k) for k in changes}
        for key, value in changes.items():
            setattr(row, key, value)
        await self.session.flush()
        await self.audit("category.updated", target=row.code, before=before, after=changes)
        return row

    async def delete_category(self, category_id: uuid.UUID) -> None:
        self._manage()
        row = await self.repo.category(category_id)
        if row is None:
            raise NotFound("category not found")
        await self.audit("category.deleted", target=row.code, before={"name": row.name})
        await self.repo.delete(row)

    async def create_rule(self, body: RuleIn) -> RoutingRule:
        self._manage()
        category = await self.category_of(body.category) if body.category else None
        if await self.repo.department(body.department_id) is None:
            raise Unprocessable("unknown department")
        data = body.model_dump(exclude={"category"})
        row = RoutingRule(category_id=category.id if category else None, **data)
        await self.repo.add(row)
        await self.audit("rule.created", target=str(row.id), after={**body.model_dump(mode="json")})
        return row

    async def delete_rule(self, rule_id: uuid.UUID) -> None:
        self._manage()
        row = await self.repo.rule(rule_id)
        if row is None:
            raise NotFound("rule not found")
        await self.audit("rule.deleted", target=str(row.id), before={"position": row.position})
        await self.repo.delete(row)

    async def reanalyze(self, body: Reanalyze) -> int:
        """Batch re-analysis (admin): enqueue report.analyze for reports in these statuses."""
        self._manage()
        count = await enqueue_reanalysis(self.session, self.platform, body.status, body.limit)
        await self.audit("report.reanalyze", target=",".join(body.status), after={"count": count})
        return count

    async def grant_staff(self, body: StaffGrant, *, revoke: bool = False) -> None:
        """Grant or revoke officer/department_admin in a department (a permission change)."""
        assert self.principal is not None
        auth.require(self.principal, auth.STAFF_GRANT, body.department_id)
        if body.role == "department_admin":
            auth.require(self.principal, auth.MANAGE)
        if await self.repo.department(body.department_id) is None:
            raise Unprocessable("unknown department")
        user = await self.repo.user_by_email(body.email)
        if user is None:
            raise NotFound("no account with that e-mail")
        scope = f"department:{body.department_id}"
        if revoke:
            roles = RoleRepository(self.session)
            role = await roles.get_by_name(body.role)
            if role is not None:
                await roles.revoke(user.id, role.id, scope)
        else:
            await grant_role(self.session, user.id, body.role, scope)
        await self.audit(
            "permission.revoked" if revoke else "permission.granted",
            target=body.email,
            department_id=body.department_id,
            before=None if not revoke else {"role": body.role, "scope": scope},
            after=None if revoke else {"role": body.role, "scope": scope},
        )

    # -- statistics ---------------------------------------------------------------------

    async def stats(self) -> Stats:
        scope = auth.departments_with(self.principal, auth.STATS)
        if scope is not None and not scope:
            raise_forbidden()
        rows = await self.repo.stats_rows(scope)
        categories = {c.id: c.code for c in await self.repo.categories()}
        departments = {d.id: d.slug for d in await self.repo.departments()}
        hours = [
            (resolved - created).total_seconds() / 3600
            for status, _, _, created, resolved, _, _ in rows
            if status == ReportStatus.resolved and resolved is not None
        ]
        return Stats(
            total=len(rows),
            by_status=dict(Counter(r[0] for r in rows)),
            by_category=dict(
                Counter(categories.get(r[1], "none") if r[1] else "none" for r in rows)
            ),
            by_department=dict(
                Counter(departments.get(r[2], "triage") if r[2] else "triage" for r in rows)
            ),
            resolved=len(hours),
            avg_resolve_hours=round(statistics.fmean(hours), 2) if hours else None,
            median_resolve_hours=round(statistics.median(hours), 2) if hours else None,
            open_points=[[r[5], r[6]] for r in rows if r[0] in [s.value for s in OPEN_STATUSES]][
                :2000
            ],
        )

    async def audit_log(
        self, report_id: uuid.UUID | None, limit: int, offset: int = 0
    ) -> Sequence[AuditEntry]:
        scope = auth.departments_with(self.principal, auth.STATS)
        if scope is not None and not scope:
            if report_id is None:
                raise_forbidden()
            report = await self.load(report_id)
            if not auth.can(self.principal, auth.STAFF_READ, report.department_id):
                raise_forbidden()
            scope = None
        return await self.repo.audit(
            departments=scope, report_id=report_id, limit=limit, offset=offset
        )


async def enqueue_reanalysis(
    session: AsyncSession, platform: Platform, status: Sequence[str], limit: int
) -> int:
    """Queue report.analyze (after the commit) for the newest reports in these statuses."""
    ids = await ReportRepository(session).ids_in_status(status, limit)
    for report_id in ids:
        enqueue_after_commit(session, platform.jobs, "report.analyze", report_id=str(report_id))
    return len(ids)


def raise_forbidden() -> NoReturn:
    from townhall.core.errors import Forbidden

    raise Forbidden("staff only")
