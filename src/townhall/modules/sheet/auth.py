"""Who may open a workbook's collab document: registered as the collab service "sheet"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pycrdt

from townhall.collab.hooks import Role, ServiceHooks, register_service
from townhall.modules.sheet.service import store_counts, workbook_role

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.deps import Principal


async def authorize(
    principal: Principal | None, service: str, doc_id: str, session: AsyncSession
) -> Role | None:
    """Owner and editors write, viewers read, everyone else (anonymous too) gets nothing."""
    return await workbook_role(session, principal.id if principal else None, doc_id)


async def on_store(service: str, doc_id: str, state: bytes, session: AsyncSession) -> None:
    """After a flush: refresh the workbook's sheet and cell counts."""
    await store_counts(session, doc_id, state)


ROOTS: dict[str, type[Any]] = {"sheets": pycrdt.Map}


def register() -> None:
    """Replace the collab engine's placeholder for "sheet" with the Sheets app's hooks."""
    register_service(ServiceHooks("sheet", authorize=authorize, on_store=on_store, roots=ROOTS))


register()
