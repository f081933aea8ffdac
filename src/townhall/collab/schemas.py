"""Request and response bodies of the collab API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SaveIn(BaseModel):
    """JSON form of a save: the document id and a base64 Yjs update."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    update: str = Field(min_length=1, description="Yjs update (encodeStateAsUpdate), base64")


class SaveOut(BaseModel):
    id: str
    service: str
    state_vector: str = Field(
        description="state vector of what the server now holds (database + buffer), base64"
    )
    buffered: int = Field(description="updates waiting in the write-back buffer")


class StateOut(BaseModel):
    id: str
    service: str
    role: str
    state: str = Field(description="the whole document as one Yjs update, base64")
    state_vector: str


class VersionOut(BaseModel):
    number: int
    name: str
    size: int
    created_at: datetime


class VersionDetail(VersionOut):
    state: str = Field(description="Yjs update of this version, base64")
    content: dict[str, Any] = Field(description="declared roots rendered as JSON")


class RestoreOut(BaseModel):
    number: int
    update: str = Field(description="the update that restored the version, base64")


class FlushOut(BaseModel):
    documents: int
    updates: int
    changed: int
    skipped: int


class UserRef(BaseModel):
    """A user as other members of a workspace or workbook see them."""

    id: uuid.UUID
    email: str
    display_name: str
