"""All SQL of accounts, sessions, OAuth links and RBAC."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.models import (
    AuthSession,
    OAuthAccount,
    Permission,
    Role,
    RolePermission,
    User,
    UserRole,
)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email.lower()))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def list(self, *, offset: int = 0, limit: int = 50) -> Sequence[User]:
        result = await self.session.execute(
            select(User).order_by(User.created_at).offset(offset).limit(limit)
        )
        return result.scalars().all()

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, session_id: uuid.UUID) -> AuthSession | None:
        return await self.session.get(AuthSession, session_id)

    async def add(self, auth_session: AuthSession) -> AuthSession:
        self.session.add(auth_session)
        await self.session.flush()
        return auth_session

    async def mark_rotated(self, session_id: uuid.UUID, when: datetime) -> bool:
        """Rotate once: False if another request rotated or revoked it first."""
        result = await self.session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.rotated_at.is_(None),
                AuthSession.revoked_at.is_(None),
            )
            .values(rotated_at=when)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_family(self, family_id: uuid.UUID, when: datetime) -> None:
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.family_id == family_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=when)
        )

    async def revoke_user(
        self, user_id: uuid.UUID, when: datetime, *, keep_family: uuid.UUID | None = None
    ) -> list[uuid.UUID]:
        """Revoke every session family of the user but `keep_family`; return those revoked."""
        conditions = [AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)]
        if keep_family is not None:
            conditions.append(AuthSession.family_id != keep_family)
        families = await self.session.scalars(
            select(AuthSession.family_id).where(*conditions).distinct()
        )
        family_ids = list(families)
        await self.session.execute(update(AuthSession).where(*conditions).values(revoked_at=when))
        return family_ids

    async def family_is_active(self, family_id: uuid.UUID, now: datetime) -> bool:
        found = await self.session.scalar(
            select(AuthSession.id)
            .where(
                AuthSession.family_id == family_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .limit(1)
        )
        return found is not None


class OAuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, provider: str, subject: str) -> OAuthAccount | None:
        result = await self.session.execute(
            select(OAuthAccount).where(
                OAuthAccount.provider == provider, OAuthAccount.subject == subject
            )
        )
        return result.scalar_one_or_none()

    async def add(self, account: OAuthAccount) -> OAuthAccount:
        self.session.add(account)
        await self.session.flush()
        return account


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_name(self, name: str) -> Role | None:
        result = await self.session.execute(select(Role).where(Role.name == name))
        return result.scalar_one_or_none()

    async def ensure_role(self, name: str, description: str, permissions: Sequence[str]) -> Role:
        """Create the role and its permissions if missing (idempotent)."""
        role = await self.get_by_name(name)
        if role is None:
            role = Role(name=name, description=description)
            self.session.add(role)
            await self.session.flush()
        for perm_name in permissions:
            perm = await self.session.scalar(select(Permission).where(Permission.name == perm_name))
            if perm is None:
                perm = Permission(name=perm_name)
                self.session.add(perm)
                await self.session.flush()
            link = await self.session.get(RolePermission, (role.id, perm.id))
            if link is None:
                self.session.add(RolePermission(role_id=role.id, permission_id=perm.id))
        await self.session.flush()
        return role

    async def grant(self, user_id: uuid.UUID, role_id: int, scope: str = "") -> None:
        if await self.session.get(UserRole, (user_id, role_id, scope)) is None:
            self.session.add(UserRole(user_id=user_id, role_id=role_id, scope=scope))
            await self.session.flush()

    async def revoke(self, user_id: uuid.UUID, role_id: int, scope: str = "") -> None:
        link = await self.session.get(UserRole, (user_id, role_id, scope))
        if link is not None:
            await self.session.delete(link)
            await self.session.flush()

    async def roles_of(self, user_id: uuid.UUID) -> list[tuple[str, str]]:
        """(role name, scope) pairs held by the user."""
        result = await self.session.execute(
            select(Role.name, UserRole.scope)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user_id)
        )
        return [(name, scope) for name, scope in result.all()]

    async def permissions_of(self, user_id: uuid.UUID) -> list[tuple[str, str]]:
        """(permission name, scope) pairs the user holds through roles."""
        result = await self.session.execute(
            select(Permission.name, UserRole.scope)
            .join(RolePermission, RolePermission.permission_id == Permission.id)
            .join(UserRole, UserRole.role_id == RolePermission.role_id)
            .where(UserRole.user_id == user_id)
        )
        return [(name, scope) for name, scope in result.all()]

    async def users_with_role(self, role_name: str, scope: str | None = None) -> list[uuid.UUID]:
        query = (
            select(UserRole.user_id)
            .join(Role, Role.id == UserRole.role_id)
            .where(Role.name == role_name)
        )
        if scope is not None:
            query = query.where(UserRole.scope == scope)
        return list(await self.session.scalars(query))
