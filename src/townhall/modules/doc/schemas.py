"""Request and response bodies of the Docs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from townhall.collab.schemas import UserRef

MemberRole = Literal["owner", "editor", "viewer"]
ShareRoleName = Literal["editor", "viewer"]
# What the caller may do with a page: "owner" manages the workspace as well.
AccessRole = Literal["owner", "editor", "viewer"]

MAX_MARKDOWN_CHARS = 1_000_000


def _strip_title(value: str) -> str:
    return " ".join(value.split())


class WorkspaceCreate(BaseModel):
    """A new workspace; the caller becomes its owner."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = _strip_title(value)
        if not value:
            raise ValueError("name must not be blank")
        return value


class WorkspaceOut(BaseModel):
    """A workspace and the caller's role in it."""

    id: uuid.UUID
    name: str
    role: MemberRole
    created_at: datetime


class MemberIn(BaseModel):
    """Add an existing user (by email) to a workspace."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    role: MemberRole = "editor"


class MemberUpdate(BaseModel):
    """Change a member's role."""

    model_config = ConfigDict(extra="forbid")
    role: MemberRole


class MemberOut(BaseModel):
    """A workspace member."""

    user: UserRef
    role: MemberRole


class PageCreate(BaseModel):
    """A new page, at the end of its parent's children (or of the workspace's top level)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=300)
    parent_id: uuid.UUID | None = None
    icon: str | None = Field(default=None, max_length=16)


class PageUpdate(BaseModel):
    """Rename a page, or set/clear its icon and cover (fields left out are unchanged)."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=300)
    icon: str | None = Field(default=None, max_length=16)
    cover: str | None = Field(
        default=None,
        max_length=2000,
        description="An https:// image URL or the `key` of an image uploaded to this page; "
        "an empty string clears it.",
    )


class PageMove(BaseModel):
    """Move a page under `parent_id` (null: top level) at `index` among its new siblings."""

    model_config = ConfigDict(extra="forbid")
    parent_id: uuid.UUID | None = None
    index: int | None = Field(default=None, ge=0, description="Omitted: last.")


class PageOut(BaseModel):
    """A page's metadata (its body is the collab document `doc/<collab_id>`)."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    position: float
    title: str
    icon: str | None
    cover: str | None
    cover_url: str | None = Field(description="Where the cover image can be fetched")
    collab_id: str = Field(description="Document id for /api/v1/doc/save and the collab rooms")
    role: AccessRole
    favorite: bool
    public: bool
    trashed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PageNode(BaseModel):
    """A page in the tree with its children."""

    id: uuid.UUID
    title: str
    icon: str | None
    children: list[PageNode] = Field(default_factory=list)


class ShareIn(BaseModel):
    """Share a page (and its subpages) with an existing user."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    role: ShareRoleName = "viewer"


class ShareOut(BaseModel):
    """One user a page is shared with."""

    user: UserRef
    role: ShareRoleName


class PublicLinkOut(BaseModel):
    """The read-only public link of a page."""

    token: str
    url: str


class PublicPageOut(BaseModel):
    """What anyone with a public link may read."""

    title: str
    icon: str | None
    cover_url: str | None
    html: str


class SearchHit(BaseModel):
    """A page matching a search, with a snippet of its text."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    title: str
    icon: str | None
    snippet: str


class MarkdownImport(BaseModel):
    """Markdown to turn into a new page; a leading `# Title` becomes its title."""

    model_config = ConfigDict(extra="forbid")
    markdown: str = Field(max_length=MAX_MARKDOWN_CHARS)
    title: str | None = Field(default=None, max_length=300)
    parent_id: uuid.UUID | None = None


class ImageOut(BaseModel):
    """An uploaded image: `src` is the stable path to put in the page."""

    key: str
    src: str = Field(description="Path that redirects readers to a fresh signed URL")
    url: str = Field(description="A signed URL, valid for an hour")
    content_type: str
    size: int
