"""Membership rules shared by the apps whose documents are collab documents (Docs, Sheets)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.collab.schemas import UserRef
from townhall.core.auth.models import User
from townhall.core.auth.repository import UserRepository
from townhall.core.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.collab.hooks import Role

# owner > editor > viewer: a role grants everything a lower one does.
RANK = {"viewer": 0, "editor": 1, "owner": 2}


def has_role(role: str | None, needs: str) -> bool:
    """Whether `role` (owner/editor/viewer, None: no access) includes `needs`."""
    return role is not None and RANK.get(role, -1) >= RANK[needs]


def require_role(role: str, needs: str, what: str) -> None:
    """403 unless `role` includes `needs`; `what` names the thing ("workspace", "workbook")."""
    if not has_role(role, needs):
        raise Forbidden(f"this needs the {needs} role in the {what}")


def collab_role(role: str | None) -> Role | None:
    """A member role as the collab engine sees it: owners and editors write, viewers read."""
    if role is None or role not in RANK:
        return None
    return "editor" if has_role(role, "editor") else "viewer"


async def invitee(session: AsyncSession, email: str) -> User:
    """The active account behind an email (case-insensitive), or 404 telling how to fix it."""
    user = await UserRepository(session).get_by_email(email.strip())
    if user is None or not user.is_active:
        raise NotFound(f"no townhall account uses {email}; ask them to sign up first")
    return user


def user_ref(user: User) -> UserRef:
    """How a member is shown to the others."""
    return UserRef(id=user.id, email=user.email, display_name=user.display_name)
