"""The `app_settings` table: settings stored by admins, secrets only as ciphertext."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from townhall.core.db import Base, utcnow


class AppSetting(Base):
    """One stored setting; a secret has `ciphertext` + `key_id` and no `value`."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text, default=None)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    key_id: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
