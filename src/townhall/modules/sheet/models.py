"""Tables of the Sheets app: workbooks and their members (cells live in the collab document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from townhall.core.db import Base, TimestampMixin, new_id, utcnow


def new_workbook_id() -> str:
    """32 hex characters: a valid collab document id, used as the workbook's id directly."""
    return uuid.uuid4().hex


class WorkbookRole(StrEnum):
    """A member's role in a workbook."""

    owner = "owner"
    editor = "editor"
    viewer = "viewer"


class SheetWorkbook(TimestampMixin, Base):
    """A workbook; its sheets and cells are the collab document ("sheet", id)."""

    __tablename__ = "sheet_workbooks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_workbook_id)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Refreshed from the document on every flush (on_store), for the list page.
    sheet_count: Mapped[int] = mapped_column(Integer, default=0)
    cell_count: Mapped[int] = mapped_column(Integer, default=0)


class SheetMember(Base):
    """A user's membership of a workbook (the owner has a row too)."""

    __tablename__ = "sheet_members"
    __table_args__ = (UniqueConstraint("workbook_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    workbook_id: Mapped[str] = mapped_column(ForeignKey("sheet_workbooks.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
