"""Open311 GeoReport v2 at /open311/v2 (JSON and XML), mapped onto reports and categories."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from townhall.core.auth.service import AuthService
from townhall.core.cache import hit_action_limit
from townhall.core.db import utcnow
from townhall.core.deps import Principal, authenticate, token_from
from townhall.core.errors import AppError, TooManyRequests
from townhall.core.platform import Platform
from townhall.modules.report.endpoints import FILING_ACTION, FILING_WINDOW
from townhall.modules.report.models import OPEN_STATUSES, Category, Report
from townhall.modules.report.pii import mask_pii
from townhall.modules.report.repository import ReportRepository
from townhall.modules.report.schemas import ReportDraft
from townhall.modules.report.service import ReportService

router = APIRouter(prefix="/open311/v2", tags=["open311"])
SPEC = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_WINDOW = timedelta(days=90)
MAX_PAGE = 1000  # the spec's 1000-result cap doubles as the page_size limit


class Open311Error(Exception):
    def __init__(self, code: int, description: str, headers: dict[str, str] | None = None) -> None:
        self.code = code
        self.description = description
        self.headers = headers


def _xml(root: str, item: str, rows: Sequence[dict[str, Any]]) -> bytes:
    top = ET.Element(root)
    for row in rows:
        el = ET.SubElement(top, item)
        _fill(el, row)
    return _document(top)


def _document(top: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="utf-8"?>' + bytes(ET.tostring(top, encoding="utf-8"))


def _fill(el: ET.Element, row: dict[str, Any]) -> None:
    for key, value in row.items():
        child = ET.SubElement(el, key)
        if isinstance(value, dict):
            _fill(child, value)
        elif isinstance(value, list):
            singular = key[:-1] if key.endswith("s") else "item"
            for v in value:
                sub = ET.SubElement(child, singular)
                if isinstance(v, dict):
                    _fill(sub, v)
                else:
                    sub.text = str(v)
        elif value is not None:
            child.text = str(value).lower() if isinstance(value, bool) else str(value)


def _respond(
    fmt: str,
    root: str,
    item: str,
    rows: list[dict[str, Any]],
    code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    if fmt == "xml":
        body = _xml(root, item, rows)
        return Response(body, status_code=code, media_type="text/xml", headers=headers)
    return JSONResponse(rows, status_code=code, headers=headers)


def _error(fmt: str, exc: Open311Error) -> Response:
    row = {"code": exc.code, "description": exc.description}
    return _respond(fmt, "errors", "error", [row], exc.code, exc.headers)


def _format(name: str) -> tuple[str, str]:
    stem, _, fmt = name.rpartition(".")
    if fmt not in ("json", "xml") or not stem:
        raise Open311Error(404, "use the .json or .xml format")
    return stem, fmt


def _service(c: Category) -> dict[str, Any]:
    return {
        "service_code": c.code,
        "service_name": c.name,
        "description": c.description or c.name_ko,
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(c.keywords),
        "group": c.group,
    }


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") if dt else None


async def _request_row(
    service: ReportService,
    r: Report,
    categories: dict[uuid.UUID, Category],
    agencies: dict[uuid.UUID, str],
) -> dict[str, Any]:
    cat = categories.get(r.category_id) if r.category_id else None
    photos = await service.repo.photos(r.id)
    updates = await service.repo.updates(r.id)
    return {
        "service_request_id": str(r.id),
        "status": "open" if r.status in [s.value for s in OPEN_STATUSES] else "closed",
        "status_notes": mask_pii(updates[-1].note) if updates else None,
        "service_name": cat.name if cat else None,
        "service_code": cat.code if cat else None,
        "description": mask_pii(r.description or r.title),
        "agency_responsible": agencies.get(r.department_id) if r.department_id else None,
        "service_notice": None,
        "requested_datetime": _iso(r.created_at),
        "updated_datetime": _iso(r.updated_at),
        "expected_datetime": None,
        "address": mask_pii(r.address) or None,
        "address_id": None,
        "zipcode": None,
        "lat": r.lat,
        "long": r.lng,
        "media_url": (
            # the public copy is published once the analysis has blurred faces and plates
            await service.platform.storage.signed_url(photos[0].public_key)
            if photos and r.analyzed_at is not None
            else None
        ),
    }


async def _principal(
    request: Request, platform: Platform, session: Any, form: FormData | None
) -> Principal | None:
    token = token_from(request, None)
    if token is None:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
    if token is None and form is not None:
        token = str(form.get("api_key") or "") or None
    if token is None:
        token = request.query_params.get("api_key")
    if token is None:
        return None
    try:
        return await authenticate(AuthService(platform.settings, platform.cache), session, token)
    except AppError:
        return None


def _float(value: Any, name: str) -> float:
    try:
        out = float(str(value))
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise Open311Error(400, f"{name} must be a number")
    return out


def _int(value: str | None, name: str, default: int) -> int:
    """A positive integer query parameter (the page/page_size extension), at most 1000 pages."""
    if value in (None, ""):
        return default
    try:
        out = int(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a positive integer") from None
    if not 1 <= out <= MAX_PAGE:
        raise Open311Error(400, f"{name} must be between 1 and {MAX_PAGE}")
    return out


@router.get("/{name}")
async def get_top(name: str, request: Request) -> Response:
    """discovery, services and requests (JSON or XML)."""
    fmt = "xml" if name.endswith(".xml") else "json"
    try:
        stem, fmt = _format(name)
        platform: Platform = request.app.state.platform
        async with platform.db.session() as session:
            principal = await _principal(request, platform, session, None)
            service = ReportService(session, platform, principal)
            if stem == "discovery":
                base = str(request.base_url).rstrip("/") + "/open311/v2/"
                row = {
                    "changeset": "2026-01-01T00:00:00Z",
                    "contact": "townhall reports",
                    "key_service": "Sign in on /login; send the access token as api_key",
                    "endpoints": [
                        {
                            "specification": SPEC,
                            "url": base,
                            "changeset": "2026-01-01T00:00:00Z",
                            "type": "production",
                            "formats": ["application/json", "text/xml"],
                        }
                    ],
                }
                if fmt == "xml":
                    top = ET.Element("discovery")
                    _fill(top, row)
                    body = _document(top)
                    return Response(body, media_type="text/xml")
                return JSONResponse(row)
            if stem == "services":
                cats = await service.repo.categories(active_only=True)
                return _respond(fmt, "services", "service", [_service(c) for c in cats])
            if stem == "requests":
                return await _list_requests(service, request, fmt)
            raise Open311Error(404, f"unknown resource {stem}")
    except Open311Error as exc:
        return _error(fmt, exc)


async def _list_requests(service: ReportService, request: Request, fmt: str) -> Response:
    q = request.query_params
    ids: list[uuid.UUID] | None = None
    if q.get("service_request_id"):
        try:
            ids = [uuid.UUID(x.strip()) for x in q["service_request_id"].split(",") if x.strip()]
        except ValueError:
            raise Open311Error(400, "service_request_id must be ids separated by commas") from None
    category_ids = None
    if q.get("service_code"):
        found = [
            await service.repo.category_by_code(c.strip()) for c in q["service_code"].split(",")
        ]
        category_ids = [c.id for c in found if c is not None]
    statuses = None
    if q.get("status"):
        wanted = {s.strip() for s in q["status"].split(",")}
        if not wanted <= {"open", "closed"}:
            raise Open311Error(400, "status is open or closed")
        statuses = []
        if "open" in wanted:
            statuses += [s.value for s in OPEN_STATUSES]
        if "closed" in wanted:
            statuses += ["resolved", "rejected", "duplicate"]
    dates: dict[str, datetime] = {}
    for key, name in (("start_date", "since"), ("end_date", "until")):
        if q.get(key):
            try:
                when = datetime.fromisoformat(q[key].replace("Z", "+00:00"))
            except ValueError:
                raise Open311Error(400, f"{key} must be a w3 datetime") from None
            dates[name] = when if when.tzinfo else when.replace(tzinfo=UTC)  # the spec wants a zone
    if ids is None and "since" not in dates:
        # The spec's default window: the 90 days up to end_date (or now).
        dates["since"] = dates.get("until", utcnow()) - DEFAULT_WINDOW
    page, page_size = _int(q.get("page"), "page", 1), _int(q.get("page_size"), "page_size", 1000)
    rows, _ = await service.repo.find(
        ids=ids,
        category_ids=category_ids,
        status=statuses,
        since=dates.get("since"),
        until=dates.get("until"),
        limit=page_size,
        offset=(page - 1) * page_size,
    )
    categories = {c.id: c for c in await service.repo.categories()}
    agencies = {d.id: d.name for d in await service.repo.departments()}
    out = [await _request_row(service, r, categories, agencies) for r in rows]
    return _respond(fmt, "service_requests", "request", out)


@router.get("/services/{name}")
async def service_definition(name: str, request: Request) -> Response:
    fmt = "xml" if name.endswith(".xml") else "json"
    try:
        code, fmt = _format(name)
        platform: Platform = request.app.state.platform
        async with platform.db.session() as session:
            category = await ReportRepository(session).category_by_code(code)
        if category is None or not category.active:
            raise Open311Error(404, f"unknown service_code {code}")
        row = {"service_code": code, "attributes": []}
        if fmt == "xml":
            top = ET.Element("service_definition")
            _fill(top, row)
            return Response(
                _document(top),
                media_type="text/xml",
            )
        return JSONResponse(row)
    except Open311Error as exc:
        return _error(fmt, exc)


@router.get("/requests/{name}")
async def get_request(name: str, request: Request) -> Response:
    fmt = "xml" if name.endswith(".xml") else "json"
    try:
        stem, fmt = _format(name)
        try:
            report_id = uuid.UUID(stem)
        except ValueError:
            raise Open311Error(404, "unknown service_request_id") from None
        platform: Platform = request.app.state.platform
        async with platform.db.session() as session:
            service = ReportService(session, platform, None)
            report = await service.repo.get(report_id)
            if report is None:
                raise Open311Error(404, "unknown service_request_id")
            categories = {c.id: c for c in await service.repo.categories()}
            agencies = {d.id: d.name for d in await service.repo.departments()}
            row = await _request_row(service, report, categories, agencies)
        return _respond(fmt, "service_requests", "request", [row])
    except Open311Error as exc:
        return _error(fmt, exc)


@router.post("/{name}")
async def post_request(name: str, request: Request) -> Response:
    """Create a service request (form-encoded, as the spec says; JSON accepted too)."""
    fmt = "xml" if name.endswith(".xml") else "json"
    try:
        stem, fmt = _format(name)
        if stem != "requests":
            raise Open311Error(404, f"cannot POST {stem}")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                data = await request.json()
            except ValueError:
                raise Open311Error(400, "body is not JSON") from None
            if not isinstance(data, dict):
                raise Open311Error(400, "body must be an object")
            form = FormData([(str(k), str(v)) for k, v in data.items() if v is not None])
        else:
            form = await request.form()
        if not form.get("service_code"):
            raise Open311Error(400, "service_code is required")
        has_point = form.get("lat") not in (None, "") and form.get("long") not in (None, "")
        if not has_point:
            raise Open311Error(
                400, "a location is required: lat and long (address_string alone cannot be placed)"
            )
        lat, lng = _float(form.get("lat"), "lat"), _float(form.get("long"), "long")
        platform: Platform = request.app.state.platform
        async with platform.db.session() as session:
            principal = await _principal(request, platform, session, form)
            if principal is None:
                raise Open311Error(403, "a valid api_key (access token) is required")
            try:
                await hit_action_limit(
                    platform.cache,
                    FILING_ACTION,
                    limit=platform.settings.report_filings_per_hour,
                    window=FILING_WINDOW,
                    user_id=principal.id,
                    ip=request.client.host if request.client else "",
                )
            except TooManyRequests as exc:
                raise Open311Error(429, exc.message, exc.headers) from None
            service = ReportService(session, platform, principal)
            if await service.repo.category_by_code(str(form["service_code"])) is None:
                raise Open311Error(404, f"unknown service_code {form['service_code']}")
            description = str(form.get("description") or "")
            try:
                draft = ReportDraft(
                    title=(description or str(form["service_code"]))[:120],
                    description=description[:5000],
                    category=str(form["service_code"]),
                    lat=lat,
                    lng=lng,
                    address=str(form.get("address_string") or "")[:500],
                )
                report = await service.create(draft, [], source="open311", min_photos=0)
            except AppError as exc:
                raise Open311Error(400, exc.message) from None
            except ValueError as exc:
                raise Open311Error(400, str(exc).splitlines()[0]) from None
            row = {"service_request_id": str(report.id), "service_notice": "", "account_id": None}
        return _respond(fmt, "service_requests", "request", [row], 201)
    except Open311Error as exc:
        return _error(fmt, exc)
