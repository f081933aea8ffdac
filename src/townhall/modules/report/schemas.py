"""Pydantic shapes of the Reports API (inputs forbid unknown fields)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ReportDraft(In):
    """The text fields of a new report (photos come as multipart files)."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    category: str | None = Field(default=None, max_length=60)  # a category code
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)
    address: str = Field(default="", max_length=500)
    anonymous: bool = False


class StatusChange(In):
    status: str = Field(max_length=20)
    note: str = Field(min_length=1, max_length=2000)


class Assign(In):
    assignee_id: uuid.UUID | None = None  # None with self=True: oneself
    note: str = Field(default="", max_length=2000)


class Override(In):
    """Staff correction of the AI triage; each field optional, a note required."""

    category: str | None = Field(default=None, max_length=60)
    department_id: uuid.UUID | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    note: str = Field(min_length=1, max_length=2000)


class Merge(In):
    into_id: uuid.UUID
    note: str = Field(default="", max_length=2000)


StatusName = Literal["received", "assigned", "in_progress", "resolved", "rejected", "duplicate"]


def _open_statuses() -> list[StatusName]:
    return ["received", "assigned", "in_progress"]


class Reanalyze(In):
    """Which reports a batch re-analysis covers (default: every open one)."""

    status: list[StatusName] = Field(default_factory=_open_statuses, min_length=1)
    limit: int = Field(default=1000, ge=1, le=100_000)


class CommentIn(In):
    body: str = Field(min_length=1, max_length=5000)
    internal: bool = False


class DepartmentIn(In):
    slug: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9-]+$")
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)


class DepartmentPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)


class DepartmentOut(Out):
    id: uuid.UUID
    slug: str
    name: str
    email: str | None


class CategoryIn(In):
    code: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    name_ko: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    group: str = Field(default="", max_length=100)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    active: bool = True


class CategoryPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_ko: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    group: str | None = Field(default=None, max_length=100)
    keywords: list[str] | None = Field(default=None, max_length=50)
    active: bool | None = None


class CategoryOut(Out):
    id: uuid.UUID
    code: str
    name: str
    name_ko: str
    description: str
    group: str
    keywords: list[str]
    active: bool


class RuleIn(In):
    position: int = Field(default=100, ge=0, le=100000)
    category: str | None = Field(default=None, max_length=60)
    department_id: uuid.UUID
    min_lat: float | None = Field(default=None, ge=-90, le=90)
    max_lat: float | None = Field(default=None, ge=-90, le=90)
    min_lng: float | None = Field(default=None, ge=-180, le=180)
    max_lng: float | None = Field(default=None, ge=-180, le=180)


class RuleOut(Out):
    id: uuid.UUID
    position: int
    category_id: uuid.UUID | None
    department_id: uuid.UUID
    min_lat: float | None
    max_lat: float | None
    min_lng: float | None
    max_lng: float | None


class StaffGrant(In):
    email: str = Field(max_length=320)
    role: str = Field(pattern=r"^(officer|department_admin)$")
    department_id: uuid.UUID


class PhotoOut(BaseModel):
    id: uuid.UUID
    url: str
    original_url: str | None = None  # staff only
    width: int
    height: int


class UpdateOut(BaseModel):
    from_status: str
    to_status: str
    note: str
    created_at: datetime


class CommentOut(BaseModel):
    id: uuid.UUID
    author: str
    body: str
    internal: bool
    created_at: datetime


class ReportOut(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    category: str | None
    category_name: str | None
    lat: float
    lng: float
    address: str
    reporter: str | None  # display name, hidden when anonymous (staff still see it)
    anonymous: bool
    mine: bool = False
    status: str
    priority: int
    department_id: uuid.UUID | None
    department: str | None
    assignee_id: uuid.UUID | None = None
    duplicate_of_id: uuid.UUID | None
    routing: str
    follower_count: int
    following: bool = False
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    photos: list[PhotoOut] = Field(default_factory=list)
    updates: list[UpdateOut] = Field(default_factory=list)
    comments: list[CommentOut] = Field(default_factory=list)
    analysis: dict[str, Any] | None = None  # staff only
    masked: bool = True


class ReportPage(BaseModel):
    items: list[ReportOut]
    total: int


class NearbyOut(BaseModel):
    id: uuid.UUID
    title: str
    status: str
    distance_m: float
    similarity: float
    follower_count: int


class NotificationOut(Out):
    id: uuid.UUID
    report_id: uuid.UUID | None
    kind: str
    title: str
    body: str
    read_at: datetime | None
    created_at: datetime


class AuditOut(Out):
    id: uuid.UUID
    actor_id: uuid.UUID | None
    action: str
    report_id: uuid.UUID | None
    department_id: uuid.UUID | None
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


# A plain 2-item array, not a tuple: `prefixItems` trips up OpenAPI tools (schemathesis 4.32).
LatLng = Annotated[list[float], Field(min_length=2, max_length=2, description="[lat, lng]")]


class Stats(BaseModel):
    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_department: dict[str, int]
    resolved: int
    avg_resolve_hours: float | None
    median_resolve_hours: float | None
    open_points: list[LatLng]
