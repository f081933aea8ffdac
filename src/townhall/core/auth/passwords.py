"""argon2 password hashing."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from townhall.core.config import Environment, Settings


class Passwords:
    """Hash and verify with one argon2 parameter set."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher
        # Verified against when the account does not exist, so timing does not reveal it.
        self._dummy_hash = hasher.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; always spends the same work."""
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False


@cache
def _passwords(cheap: bool) -> Passwords:
    if cheap:
        # Test runs hash thousands of passwords; strength is irrelevant there.
        return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return Passwords(PasswordHasher())


def passwords_for(settings: Settings) -> Passwords:
    """argon2id with the library's recommended cost; a cheap one only when env is `test`."""
    return _passwords(settings.env is Environment.test)
