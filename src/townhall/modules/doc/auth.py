"""Who may open a page's collab document: registered as the collab service "doc"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pycrdt

from townhall.collab.hooks import Role, ServiceHooks, register_service
from townhall.modules.doc.service import collab_role, store_text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.deps import Principal


async def authorize(
    principal: Principal | None, service: str, doc_id: str, session: AsyncSession
) -> Role | None:
    """Workspace role or page share -> editor/viewer; a page with a public link -> viewer."""
    role = await collab_role(session, principal.id if principal else None, doc_id)
    if role == "editor":
        return "editor"
    return "viewer" if role == "viewer" else None


async def on_store(service: str, doc_id: str, state: bytes, session: AsyncSession) -> None:
    """After a flush: extract the page's plain text for search."""
    await store_text(session, doc_id, state)


ROOTS: dict[str, type[Any]] = {"default": pycrdt.XmlFragment}


def register() -> None:
    """Replace the collab engine's placeholder for "doc" with the Docs app's hooks."""
    register_service(ServiceHooks("doc", authorize=authorize, on_store=on_store, roots=ROOTS))


register()
