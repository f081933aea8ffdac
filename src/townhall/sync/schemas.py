"""Request and response bodies of the Sync API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, min_length=1, max_length=64)


class CollectionOut(BaseModel):
    slug: str
    name: str
    owner_id: uuid.UUID
    role: str
    head: int
    created_at: datetime


class MemberSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Literal["read", "write"]


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    role: str


class DocumentOut(BaseModel):
    collection: str
    id: str
    version: int
    data: dict[str, Any] | None
    deleted: bool
    created_at: datetime
    updated_at: datetime


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next: str | None


class EventOut(BaseModel):
    stream: str
    seq: int
    doc_id: str
    version: int
    op: str
    patch: Any
    actor: str
    ts: datetime


class ChangesOut(BaseModel):
    stream: str
    head: int
    reset: bool
    reason: str | None = None
    snapshot_seq: int | None = None
    snapshot: dict[str, Any] | None = None
    events: list[EventOut]
    more: bool
    next: int


class SnapshotOut(BaseModel):
    stream: str
    seq: int
    documents: int
    created_at: datetime


class ClientStateOut(BaseModel):
    client_id: str
    email: str
    seq: int
    behind: int
    updated_at: datetime


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=64)
    streams: dict[str, int]
