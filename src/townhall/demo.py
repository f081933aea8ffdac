"""Demo users and data so a newcomer sees something real after `make run`."""

from __future__ import annotations

from townhall.core.auth.models import User
from townhall.core.auth.repository import UserRepository
from townhall.core.auth.service import AuthService
from townhall.core.config import Settings
from townhall.core.platform import build_platform
from townhall.modules.registry import load_apps

DEMO_USERS = (
    ("alice@example.com", "Alice Kim", ("user",)),
    ("bob@example.com", "Bob Lee", ("user",)),
    ("admin@example.com", "Admin", ("user", "admin")),
)


async def load_demo(settings: Settings, *, only_if_empty: bool) -> bool:
    """Create the demo accounts and every app's demo data; False if skipped."""
    async with build_platform(settings) as platform:
        async with platform.db.session() as session:
            users_repo = UserRepository(session)
            if only_if_empty and await users_repo.count() > 0:
                return False
            auth = AuthService(settings, platform.cache)
            users: dict[str, User] = {}
            for email, name, roles in DEMO_USERS:
                existing = await users_repo.get_by_email(email)
                users[email] = existing or await auth.create_user(
                    session,
                    email=email,
                    display_name=name,
                    password=settings.demo_password,
                    roles=roles,
                    email_verified=True,
                )
        for app in load_apps():
            if app.demo is not None:
                async with platform.db.session() as session:
                    await app.demo(platform, session, users)
    return True
