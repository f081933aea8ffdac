"""Request and response bodies of the Links API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TAGS = 30
MAX_NOTE = 20_000


def _clean_tags(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    seen: dict[str, str] = {}
    for raw in value:
        name = " ".join(str(raw).lstrip("#").split())[:100]
        if name and name.lower() not in seen:
            seen[name.lower()] = name
    return list(seen.values())


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinkCreate(Input):
    """POST /links."""

    url: str = Field(min_length=1, max_length=10_000)
    source: str = Field(default="web", max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")
    note: str = Field(default="", max_length=MAX_NOTE)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    title: str | None = Field(default=None, max_length=1000)

    _tags = field_validator("tags")(_clean_tags)


class LinkUpdate(Input):
    """PATCH /links/{id}: only the fields given change."""

    title: str | None = Field(default=None, max_length=1000)
    note: str | None = Field(default=None, max_length=MAX_NOTE)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    is_read: bool | None = None
    is_archived: bool | None = None
    is_favorite: bool | None = None
    # When given, the update is refused with 409 if the link changed since (optimistic lock).
    version: int | None = None

    _tags = field_validator("tags")(_clean_tags)


class TagOut(BaseModel):
    name: str
    category: str | None = None
    is_auto_generated: bool = False
    confidence: float | None = None


class ThumbnailUrls(BaseModel):
    small: str | None = None
    medium: str | None = None
    large: str | None = None


class LinkOut(BaseModel):
    """A link as the API shows it."""

    id: uuid.UUID
    url: str
    normalized_url: str
    source: str
    title: str | None
    description: str | None
    author: str | None
    site_name: str | None
    published_at: datetime | None
    media_type: str | None
    thumbnail_original_url: str | None
    thumbnail_url: str | None
    thumbnails: ThumbnailUrls
    note: str
    tags: list[TagOut]
    status: str
    processing_error: str | None
    retry_count: int
    is_read: bool
    is_archived: bool
    is_favorite: bool
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    deleted_at: datetime | None = None


class SavedLink(LinkOut):
    duplicate: bool = False


class LinkPage(BaseModel):
    items: list[LinkOut]
    page: int | None = None
    limit: int
    total: int | None = None
    next_cursor: str | None = None


class TagSummary(BaseModel):
    name: str
    category: str | None
    kind: str
    count: int


class TagRename(Input):
    name: str = Field(min_length=1, max_length=100)


class TagMerge(Input):
    into: str = Field(min_length=1, max_length=100)


class SearchHit(LinkOut):
    rank: float


class SearchResult(BaseModel):
    query: str
    items: list[SearchHit]


class Tombstone(BaseModel):
    id: uuid.UUID
    deleted_at: datetime


class PullResponse(BaseModel):
    links: list[LinkOut]
    deleted: list[Tombstone]
    # The seed's position (send it back as `since`); `cursor` is the exact form of it.
    sync_timestamp: datetime
    cursor: str
    has_more: bool


ChangeType = Literal["create", "update", "note_update", "tags_update", "delete"]


class Change(Input):
    """One offline change; `base_version` (or `timestamp`) detects conflicts."""

    type: ChangeType
    link_id: uuid.UUID | None = None
    client_id: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=10_000)
    content: str | None = Field(default=None, max_length=MAX_NOTE)
    fields: dict[str, Any] | None = None
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    timestamp: datetime
    base_version: int | None = None
    force: bool = False

    _tags = field_validator("tags")(_clean_tags)


class PushRequest(Input):
    changes: list[Change] = Field(max_length=500)


class ChangeResult(BaseModel):
    index: int
    client_id: str | None = None
    link_id: uuid.UUID | None = None
    status: Literal["success", "conflict", "duplicate", "error"]
    new_version: int | None = None
    error: str | None = None
    server: LinkOut | None = None


class PushResponse(BaseModel):
    status: Literal["success", "partial"]
    results: list[ChangeResult]
    sync_timestamp: datetime


class ImportResult(BaseModel):
    total: int
    created: int
    duplicates: int
    errors: list[str]
