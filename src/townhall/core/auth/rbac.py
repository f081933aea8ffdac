"""Built-in roles and permissions, and the checks every path uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.repository import RoleRepository

ALL = "*"

# Apps register their own roles at import (see register_role); the platform's are here.
BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    "user": ("Every signed-up account", ["account.use"]),
    "admin": ("Operates townhall", [ALL]),
}


def register_role(name: str, description: str, permissions: list[str]) -> None:
    """Declare an app role; `sync_roles` writes it to the database."""
    BUILTIN_ROLES[name] = (description, permissions)


@dataclass(frozen=True)
class Grants:
    """What a user may do: permission -> scopes ('' means everywhere)."""

    roles: frozenset[tuple[str, str]] = frozenset()
    permissions: dict[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, permission: str, scope: str | None = None) -> bool:
        for name in (permission, ALL):
            scopes = self.permissions.get(name)
            if scopes is None:
                continue
            if "" in scopes or (scope is not None and scope in scopes):
                return True
        return False

    def has_role(self, role: str, scope: str | None = None) -> bool:
        return any(r == role and (scope is None or s in ("", scope)) for r, s in self.roles)

    def scopes_of(self, permission: str) -> frozenset[str]:
        return self.permissions.get(permission, frozenset()) | self.permissions.get(
            ALL, frozenset()
        )


async def load_grants(session: AsyncSession, user_id: uuid.UUID) -> Grants:
    repo = RoleRepository(session)
    roles = await repo.roles_of(user_id)
    perms: dict[str, set[str]] = {}
    for name, scope in await repo.permissions_of(user_id):
        perms.setdefault(name, set()).add(scope)
    return Grants(frozenset(roles), {k: frozenset(v) for k, v in perms.items()})


async def sync_roles(session: AsyncSession) -> None:
    """Write every declared role and permission to the database (idempotent)."""
    repo = RoleRepository(session)
    for name, (description, permissions) in BUILTIN_ROLES.items():
        await repo.ensure_role(name, description, permissions)


async def grant_role(session: AsyncSession, user_id: uuid.UUID, role: str, scope: str = "") -> None:
    repo = RoleRepository(session)
    found = await repo.get_by_name(role)
    if found is None:
        await sync_roles(session)
        found = await repo.get_by_name(role)
    if found is None:
        raise ValueError(f"unknown role {role!r}")
    await repo.grant(user_id, found.id, scope)
