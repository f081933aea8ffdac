"""The Reports HTTP API under /api/v1/reports (thin: rules live in service.py)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile, status
from fastapi.responses import Response
from pydantic import ValidationError

from townhall.core.deps import (
    CurrentPrincipal,
    DbSession,
    OptionalPrincipal,
    PlatformDep,
    ReadSession,
    action_limit,
)
from townhall.core.errors import Unprocessable
from townhall.modules.report.schemas import (
    Assign,
    AuditOut,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    CommentIn,
    DepartmentIn,
    DepartmentOut,
    DepartmentPatch,
    Merge,
    NearbyOut,
    NotificationOut,
    Override,
    Reanalyze,
    ReportDraft,
    ReportOut,
    ReportPage,
    RuleIn,
    RuleOut,
    StaffGrant,
    Stats,
    StatusChange,
)
from townhall.modules.report.service import ReportService

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


async def _service(
    session: DbSession, platform: PlatformDep, principal: OptionalPrincipal
) -> ReportService:
    return ReportService(session, platform, principal)


async def _read_service(
    session: ReadSession, platform: PlatformDep, principal: OptionalPrincipal
) -> ReportService:
    return ReportService(session, platform, principal)


Service = Annotated[ReportService, Depends(_service)]
ReadService = Annotated[ReportService, Depends(_read_service)]  # lists and search: the replica


def _unprocessable(exc: ValidationError) -> Unprocessable:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
    return Unprocessable(problems)


def draft_from_form(**fields: Any) -> ReportDraft:
    """Form strings -> a validated draft (422 naming each bad field, e.g. lat not a number)."""
    try:
        return ReportDraft.model_validate(fields)
    except ValidationError as exc:
        raise _unprocessable(exc) from exc


def csv_response(rows: list[list[Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- citizen ----------------------------------------------------------------------------


FILING_ACTION, FILING_WINDOW = "report.file", 3600  # Open311 filings share the quota
FILING_LIMIT = action_limit(FILING_ACTION, lambda s: s.report_filings_per_hour, FILING_WINDOW)


@router.post(
    "",
    response_model=ReportOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[FILING_LIMIT],
)
async def create_report(
    principal: CurrentPrincipal,
    service: Service,
    title: Annotated[str, Form(max_length=200)],
    lat: Annotated[str, Form(max_length=40)],
    lng: Annotated[str, Form(max_length=40)],
    description: Annotated[str, Form(max_length=5000)] = "",
    category: Annotated[str | None, Form(max_length=60)] = None,
    address: Annotated[str, Form(max_length=500)] = "",
    anonymous: Annotated[bool, Form()] = False,
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> ReportOut:
    """File a report (multipart: fields + 1-10 `photos`); analysis and routing follow."""
    draft = draft_from_form(
        title=title,
        description=description,
        category=category or None,
        lat=lat,
        lng=lng,
        address=address,
        anonymous=anonymous,
    )
    report = await service.create(draft, photos or [])
    return await service.out(report)


@router.get("", response_model=ReportPage)
async def list_reports(
    service: ReadService,
    queue: Annotated[str, Query(pattern="^(public|mine|inbox|triage|all)$")] = "public",
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> ReportPage:
    """public (masked) | mine | inbox (my departments) | triage (unrouted) | all (staff scope)."""
    items, total = await service.list_reports(queue, status=status_, limit=limit, offset=offset)
    return ReportPage(items=items, total=total)


@router.get("/nearby", response_model=list[NearbyOut])
async def nearby(
    service: ReadService,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    lng: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    category: Annotated[str | None, Query(max_length=60)] = None,
    text: Annotated[str, Query(max_length=2000)] = "",
) -> list[NearbyOut]:
    """Open reports of the category within the duplicate radius, most similar first."""
    return await service.nearby(lat, lng, category, text)


@router.get("/categories", response_model=list[CategoryOut])
async def categories(service: Service) -> list[CategoryOut]:
    return [CategoryOut.model_validate(c) for c in await service.repo.categories(active_only=True)]


@router.get("/departments", response_model=list[DepartmentOut])
async def departments(service: Service) -> list[DepartmentOut]:
    return [DepartmentOut.model_validate(d) for d in await service.repo.departments()]


@router.get("/notifications", response_model=list[NotificationOut])
async def notifications(
    principal: CurrentPrincipal,
    service: ReadService,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[NotificationOut]:
    rows = await service.repo.notifications(principal.id, unread=unread, limit=limit)
    return [NotificationOut.model_validate(n) for n in rows]


@router.post("/notifications/read")
async def mark_read(
    principal: CurrentPrincipal,
    service: Service,
    notification_id: Annotated[uuid.UUID | None, Query(alias="id")] = None,
) -> dict[str, int]:
    """Mark one (?id=) or all notifications read."""
    return {"marked": await service.repo.mark_read(principal.id, notification_id)}


@router.get("/stats", response_model=Stats)
async def stats(principal: CurrentPrincipal, service: ReadService) -> Stats:
    return await service.stats()


@router.get("/stats.csv")
async def stats_csv(principal: CurrentPrincipal, service: ReadService) -> Response:
    data = await service.stats()
    rows: list[list[Any]] = [["dimension", "key", "count"]]
    for dim, values in (
        ("status", data.by_status),
        ("category", data.by_category),
        ("department", data.by_department),
    ):
        rows += [[dim, k, v] for k, v in sorted(values.items())]
    rows += [["resolve_hours", "average", data.avg_resolve_hours or ""]]
    rows += [["resolve_hours", "median", data.median_resolve_hours or ""]]
    return csv_response(rows, "report-stats.csv")


@router.get("/audit", response_model=list[AuditOut])
async def audit(
    principal: CurrentPrincipal,
    service: ReadService,
    report_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AuditOut]:
    """The audit log (read-only) of the caller's scope, or of one report."""
    return [AuditOut.model_validate(a) for a in await service.audit_log(report_id, limit, offset)]


@router.get("/audit.csv")
async def audit_csv(
    principal: CurrentPrincipal,
    service: Service,
    report_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    rows: list[list[Any]] = [
        [
            "created_at",
            "actor_id",
            "action",
            "report_id",
            "department_id",
            "target",
            "before",
            "after",
        ]
    ]
    for a in await service.audit_log(report_id, limit):
        rows.append(
            [
                a.created_at.isoformat(),
                a.actor_id or "",
                a.action,
                a.report_id or "",
                a.department_id or "",
                a.target,
                json.dumps(a.before, ensure_ascii=False) if a.before else "",
                json.dumps(a.after, ensure_ascii=False) if a.after else "",
            ]
        )
    return csv_response(rows, "report-audit.csv")


# -- one report -------------------------------------------------------------------------


@router.get("/{report_id}", response_model=ReportOut)
async def get_report(report_id: uuid.UUID, service: Service) -> ReportOut:
    """A report: masked for the public, complete for staff of its department (PII view audited)."""
    return await service.out(await service.load(report_id))


@router.post("/{report_id}/status", response_model=ReportOut)
async def change_status(
    report_id: uuid.UUID, body: StatusChange, principal: CurrentPrincipal, service: Service
) -> ReportOut:
    return await service.out(await service.change_status(report_id, body))


@router.post("/{report_id}/assign", response_model=ReportOut)
async def assign(
    report_id: uuid.UUID, body: Assign, principal: CurrentPrincipal, service: Service
) -> ReportOut:
    """Assign to `assignee_id` (department admins) or to oneself (omit it)."""
    return await service.out(await service.assign(report_id, body))


@router.post("/{report_id}/override", response_model=ReportOut)
async def override(
    report_id: uuid.UUID, body: Override, principal: CurrentPrincipal, service: Service
) -> ReportOut:
    """Correct the AI triage: category, department, priority (audited)."""
    return await service.out(await service.override(report_id, body))


@router.post("/{report_id}/merge", response_model=ReportOut)
async def merge(
    report_id: uuid.UUID, body: Merge, principal: CurrentPrincipal, service: Service
) -> ReportOut:
    return await service.out(await service.merge(report_id, body))


@router.post("/{report_id}/comments", response_model=ReportOut, status_code=201)
async def comment(
    report_id: uuid.UUID, body: CommentIn, principal: CurrentPrincipal, service: Service
) -> ReportOut:
    await service.comment(report_id, body)
    return await service.out(await service.load(report_id))


@router.put("/{report_id}/follow")
async def follow(
    report_id: uuid.UUID, principal: CurrentPrincipal, service: Service
) -> dict[str, int]:
    """Follow (+1) a report: status changes are notified to followers."""
    return {"follower_count": await service.set_follow(report_id, True)}


@router.delete("/{report_id}/follow")
async def unfollow(
    report_id: uuid.UUID, principal: CurrentPrincipal, service: Service
) -> dict[str, int]:
    return {"follower_count": await service.set_follow(report_id, False)}


# -- administration ---------------------------------------------------------------------

admin = APIRouter(prefix="/api/v1/reports/admin", tags=["reports admin"])


@admin.post("/departments", response_model=DepartmentOut, status_code=201)
async def create_department(
    body: DepartmentIn, principal: CurrentPrincipal, service: Service
) -> DepartmentOut:
    return DepartmentOut.model_validate(await service.create_department(body))


@admin.patch("/departments/{department_id}", response_model=DepartmentOut)
async def update_department(
    department_id: uuid.UUID, body: DepartmentPatch, principal: CurrentPrincipal, service: Service
) -> DepartmentOut:
    return DepartmentOut.model_validate(await service.update_department(department_id, body))


@admin.delete("/departments/{department_id}", status_code=204)
async def delete_department(
    department_id: uuid.UUID, principal: CurrentPrincipal, service: Service
) -> None:
    await service.delete_department(department_id)


@admin.post("/categories", response_model=CategoryOut, status_code=201)
async def create_category(
    body: CategoryIn, principal: CurrentPrincipal, service: Service
) -> CategoryOut:
    return CategoryOut.model_validate(await service.create_category(body))


@admin.patch("/categories/{category_id}", response_model=CategoryOut)
async def update_category(
    category_id: uuid.UUID, body: CategoryPatch, principal: CurrentPrincipal, service: Service
) -> CategoryOut:
    return CategoryOut.model_validate(await service.update_category(category_id, body))


@admin.delete("/categories/{category_id}", status_code=204)
async def delete_category(
    category_id: uuid.UUID, principal: CurrentPrincipal, service: Service
) -> None:
    await service.delete_category(category_id)


@admin.get("/rules", response_model=list[RuleOut])
async def rules(principal: CurrentPrincipal, service: Service) -> list[RuleOut]:
    service._manage()
    return [RuleOut.model_validate(r) for r in await service.repo.rules()]


@admin.post("/rules", response_model=RuleOut, status_code=201)
async def create_rule(body: RuleIn, principal: CurrentPrincipal, service: Service) -> RuleOut:
    return RuleOut.model_validate(await service.create_rule(body))


@admin.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: uuid.UUID, principal: CurrentPrincipal, service: Service) -> None:
    await service.delete_rule(rule_id)


@admin.post("/reanalyze")
async def reanalyze(
    body: Reanalyze, principal: CurrentPrincipal, service: Service
) -> dict[str, int]:
    """Batch re-analysis: enqueue report.analyze for the reports in `status` (admin)."""
    return {"enqueued": await service.reanalyze(body)}


@admin.post("/staff", status_code=204)
async def grant_staff(body: StaffGrant, principal: CurrentPrincipal, service: Service) -> None:
    """Grant officer (department admins, admins) or department_admin (admins) in a department."""
    await service.grant_staff(body)


@admin.delete("/staff", status_code=204)
async def revoke_staff(body: StaffGrant, principal: CurrentPrincipal, service: Service) -> None:
    await service.grant_staff(body, revoke=True)
