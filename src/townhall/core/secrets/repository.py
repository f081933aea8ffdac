"""All SQL of the app_settings table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.db import utcnow
from townhall.core.secrets.crypto import Sealed
from townhall.core.secrets.models import AppSetting


class AppSettingRepository:
    """Stored settings of one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> Sequence[AppSetting]:
        rows = await self.session.execute(select(AppSetting).order_by(AppSetting.key))
        return rows.scalars().all()

    async def get(self, key: str) -> AppSetting | None:
        # populate_existing: an upsert in this session bypassed the identity map.
        return await self.session.get(AppSetting, key, populate_existing=True)

    async def put(
        self, key: str, *, value: str | None, sealed: Sealed | None, updated_by: uuid.UUID | None
    ) -> None:
        """Insert or replace the row of `key` (a plain `value` or a `sealed` secret)."""
        values: dict[str, Any] = {
            "value": value,
            "ciphertext": sealed.data if sealed else None,
            "key_id": sealed.key_id if sealed else None,
            "updated_by": updated_by,
            "updated_at": utcnow(),
        }
        # One atomic upsert: two admins saving the same new key at once must not hit a 500.
        postgres = self.session.get_bind().dialect.name == "postgresql"
        insert = pg_insert if postgres else sqlite_insert
        statement = insert(AppSetting).values(key=key, **values)
        await self.session.execute(
            statement.on_conflict_do_update(index_elements=[AppSetting.key], set_=values)
        )

    async def delete(self, key: str) -> bool:
        result = await self.session.execute(delete(AppSetting).where(AppSetting.key == key))
        return bool(result.rowcount)  # type: ignore[attr-defined]
