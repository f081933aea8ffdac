"""Sign-up, log-in, refresh rotation with reuse detection, log-out, password change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from cashews import Cache
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth import tokens
from townhall.core.auth.models import AuthSession, OAuthAccount, User
from townhall.core.auth.passwords import passwords_for
from townhall.core.auth.rbac import grant_role
from townhall.core.auth.repository import OAuthRepository, SessionRepository, UserRepository
from townhall.core.cache import hit_rate_limit, reset_rate_limit
from townhall.core.config import Settings
from townhall.core.db import utcnow
from townhall.core.errors import Conflict, Unauthorized


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True)
class ClientInfo:
    ip: str = ""
    user_agent: str = ""


def session_cache_key(user_id: uuid.UUID, family_id: uuid.UUID) -> str:
    # Seed 002 checks `user:{id}:session`; one key per session family lets log-out be per device.
    return f"user:{user_id}:session:{family_id}"


class AuthService:
    """Account operations; callers commit."""

    def __init__(self, settings: Settings, cache: Cache) -> None:
        self.settings = settings
        self.cache = cache
        self.passwords = passwords_for(settings)

    async def create_user(
        self,
        session: AsyncSession,
        *,
        email: str,
        display_name: str,
        password: str | None,
        locale: str = "en",
        email_verified: bool = False,
        roles: tuple[str, ...] = ("user",),
    ) -> User:
        users = UserRepository(session)
        email = email.strip().lower()
        if await users.get_by_email(email) is not None:
            raise Conflict("an account with this email already exists")
        user = User(
            email=email,
            display_name=display_name,
            locale=locale,
            password_hash=self.passwords.hash(password) if password else None,
            email_verified=email_verified,
        )
        try:
            async with session.begin_nested():
                await users.add(user)
        except IntegrityError as exc:
            raise Conflict("an account with this email already exists") from exc
        for role in roles:
            await grant_role(session, user.id, role)
        return user

    async def signup(
        self,
        session: AsyncSession,
        *,
        email: str,
        password: str,
        display_name: str,
        locale: str,
        client: ClientInfo,
    ) -> IssuedTokens:
        await hit_rate_limit(
            self.cache,
            f"signup:ip:{client.ip}",
            limit=self.settings.signup_per_ip_per_hour,
            window=3600,
        )
        user = await self.create_user(
            session, email=email, display_name=display_name, password=password, locale=locale
        )
        return await self.start_session(session, user, client)

    async def login(
        self, session: AsyncSession, *, email: str, password: str, client: ClientInfo
    ) -> IssuedTokens:
        window = self.settings.login_window_seconds
        account_key = f"login:account:{email.lower()}"
        await hit_rate_limit(
            self.cache,
            f"login:ip:{client.ip}",
            limit=self.settings.login_attempts_per_ip,
            window=window,
        )
        await hit_rate_limit(
            self.cache, account_key, limit=self.settings.login_attempts_per_account, window=window
        )
        user = await UserRepository(session).get_by_email(email)
        valid = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not valid or not user.is_active:
            raise Unauthorized("wrong email or password")
        await reset_rate_limit(self.cache, account_key, window=window)
        return await self.start_session(session, user, client)

    async def start_session(
        self,
        session: AsyncSession,
        user: User,
        client: ClientInfo,
        family_id: uuid.UUID | None = None,
    ) -> IssuedTokens:
        """Issue an access token and a refresh token (a new family unless given)."""
        secret = tokens.new_refresh_secret()
        now = utcnow()
        family = family_id or uuid.uuid4()
        auth_session = await SessionRepository(session).add(
            AuthSession(
                family_id=family,
                user_id=user.id,
                token_hash=tokens.hash_refresh_secret(secret),
                created_at=now,
                expires_at=now + timedelta(days=self.settings.refresh_token_days),
                user_agent=client.user_agent[:200],
                ip=client.ip[:64],
            )
        )
        await self.cache.set(
            session_cache_key(user.id, family),
            "1",
            expire=timedelta(days=self.settings.refresh_token_days),
        )
        minutes = self.settings.access_token_minutes
        return IssuedTokens(
            access_token=tokens.issue_access_token(
                self.settings.secret(), user.id, family, minutes
            ),
            refresh_token=tokens.format_refresh_token(auth_session.id, secret),
            expires_in=minutes * 60,
            user=user,
        )

    async def refresh(
        self, session: AsyncSession, refresh_token: str, client: ClientInfo
    ) -> IssuedTokens:
        """Rotate: a used (rotated) token presented again revokes its whole family."""
        session_id, secret = tokens.parse_refresh_token(refresh_token)
        sessions = SessionRepository(session)
        current = await sessions.get(session_id)
        now = utcnow()
        if current is None or current.token_hash != tokens.hash_refresh_secret(secret):
            raise Unauthorized("invalid refresh token")
        if current.revoked_at is not None:
            raise Unauthorized("session revoked")
        if current.rotated_at is not None or not await sessions.mark_rotated(current.id, now):
            await self._revoke_family(session, current.user_id, current.family_id)
            raise Unauthorized(
                "refresh token reuse detected; the session was revoked", commit_changes=True
            )
        if current.expires_at <= now:
            raise Unauthorized("refresh token expired")
        user = await UserRepository(session).get(current.user_id)
        if user is None or not user.is_active:
            raise Unauthorized("account disabled")
        return await self.start_session(session, user, client, family_id=current.family_id)

    async def logout(self, session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        await self._revoke_family(session, user_id, family_id)

    async def _revoke_family(
        self, session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID
    ) -> None:
        await SessionRepository(session).revoke_family(family_id, utcnow())
        await self._mark_revoked(user_id, family_id)

    async def _mark_revoked(self, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        # Outlives every access token of the family, so none is accepted after this.
        await self.cache.set(
            session_cache_key(user_id, family_id),
            "0",
            expire=timedelta(minutes=self.settings.access_token_minutes + 1),
        )

    async def change_password(
        self,
        session: AsyncSession,
        user: User,
        *,
        current: str | None,
        new: str,
        keep_family: uuid.UUID,
    ) -> None:
        """Change (or, for an OAuth-only account, set) the password; sign out other devices."""
        # An account without a password (made by an OAuth log-in) has nothing to prove here:
        # the caller is already authenticated by that provider's session.
        if user.password_hash is not None and not self.passwords.verify(
            user.password_hash, current or ""
        ):
            raise Unauthorized("current password is wrong")
        user.password_hash = self.passwords.hash(new)
        now = utcnow()
        families = await SessionRepository(session).revoke_user(
            user.id, now, keep_family=keep_family
        )
        for family in families:
            await self._mark_revoked(user.id, family)

    async def update_profile(
        self, session: AsyncSession, user: User, *, display_name: str | None, locale: str | None
    ) -> User:
        """Change display name and/or locale (None keeps the current value)."""
        if display_name is not None:
            user.display_name = display_name
        if locale is not None:
            user.locale = locale
        await session.flush()
        return user

    async def _claim_unverified(self, session: AsyncSession, user: User) -> None:
        """The provider proved who owns the email; drop what an unproven sign-up set up.

        Otherwise whoever signed up first with someone else's address (account pre-hijacking)
        would keep a password and sessions on the account its real owner now uses.
        """
        user.password_hash = None
        user.email_verified = True
        for family in await SessionRepository(session).revoke_user(user.id, utcnow()):
            await self._mark_revoked(user.id, family)

    async def authenticate(
        self, session: AsyncSession, access_token: str
    ) -> tuple[User, uuid.UUID]:
        """The user behind a valid, unrevoked access token, and its session family."""
        claims = tokens.decode_access_token(self.settings.secret(), access_token)
        key = session_cache_key(claims.user_id, claims.family_id)
        state = await self.cache.get(key)
        if state is None:
            active = await SessionRepository(session).family_is_active(claims.family_id, utcnow())
            state = "1" if active else "0"
            await self.cache.set(key, state, expire=timedelta(minutes=5))
        if state != "1":
            raise Unauthorized("session revoked")
        user = await UserRepository(session).get(claims.user_id)
        if user is None or not user.is_active:
            raise Unauthorized("account disabled")
        return user, claims.family_id

    async def oauth_login(
        self,
        session: AsyncSession,
        *,
        provider: str,
        subject: str,
        email: str | None,
        email_verified: bool,
        display_name: str,
        client: ClientInfo,
    ) -> IssuedTokens:
        """Log in through a provider; link to an existing account only by a verified email."""
        accounts = OAuthRepository(session)
        linked = await accounts.get(provider, subject)
        users = UserRepository(session)
        user: User | None = None
        if linked is not None:
            user = await users.get(linked.user_id)
        elif email:
            existing = await users.get_by_email(email)
            if existing is not None:
                if not email_verified:
                    raise Conflict(
                        "an account with this email already exists; log in with its password"
                    )
                if not existing.email_verified:
                    await self._claim_unverified(session, existing)
                user = existing
            else:
                user = await self.create_user(
                    session,
                    email=email,
                    display_name=display_name or email.split("@")[0],
                    password=None,
                    email_verified=email_verified,
                )
            try:
                async with session.begin_nested():
                    await accounts.add(
                        OAuthAccount(
                            provider=provider, subject=subject, user_id=user.id, email=email
                        )
                    )
            except IntegrityError as exc:
                # A concurrent first log-in of the same provider account won the link.
                raise Conflict(f"this {provider} account is being linked; try again") from exc
        if user is None:
            raise Unauthorized(f"{provider} did not share an email address")
        if not user.is_active:
            raise Unauthorized("account disabled")
        return await self.start_session(session, user, client)
