"""All SQL of the Sheets app: workbooks and their members."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from townhall.core.auth.models import User
from townhall.modules.sheet.models import SheetMember, SheetWorkbook

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession


class SheetRepository:
    """Queries over workbooks and members."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: object) -> None:
        self.session.add(row)
        await self.session.flush()

    async def get_workbook(self, workbook_id: str) -> SheetWorkbook | None:
        return await self.session.get(SheetWorkbook, workbook_id)

    async def workbooks_of(self, user_id: uuid.UUID) -> Sequence[tuple[SheetWorkbook, str, User]]:
        """(workbook, the user's role, owner) of every workbook the user is a member of."""
        stmt = (
            select(SheetWorkbook, SheetMember.role, User)
            .join(SheetMember, SheetMember.workbook_id == SheetWorkbook.id)
            .join(User, User.id == SheetWorkbook.owner_id)
            .where(SheetMember.user_id == user_id)
            .order_by(SheetWorkbook.updated_at.desc(), SheetWorkbook.id)
        )
        return [(w, r, u) for w, r, u in (await self.session.execute(stmt)).all()]

    async def member(self, workbook_id: str, user_id: uuid.UUID) -> SheetMember | None:
        stmt = select(SheetMember).where(
            SheetMember.workbook_id == workbook_id, SheetMember.user_id == user_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def members(self, workbook_id: str) -> Sequence[tuple[SheetMember, User]]:
        stmt = (
            select(SheetMember, User)
            .join(User, User.id == SheetMember.user_id)
            .where(SheetMember.workbook_id == workbook_id)
            .order_by(SheetMember.created_at, User.email)
        )
        return [(m, u) for m, u in (await self.session.execute(stmt)).all()]

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def delete(self, row: object) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def set_counts(self, workbook_id: str, sheets: int, cells: int) -> None:
        stmt = (
            update(SheetWorkbook)
            .where(SheetWorkbook.id == workbook_id)
            .values(sheet_count=sheets, cell_count=cells)
            .execution_options(synchronize_session="fetch")
        )
        await self.session.execute(stmt)
