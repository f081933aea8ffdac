"""Settings stored in the database over Settings: encrypted secrets, masked listing, rotation."""

from __future__ import annotations

import asyncio
import time
import uuid

import structlog
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.config import Settings
from townhall.core.db import Database, DatabaseUnavailable, after_commit
from townhall.core.errors import Unprocessable
from townhall.core.secrets.crypto import Keyring, Sealed, UndecryptableSetting
from townhall.core.secrets.models import AppSetting
from townhall.core.secrets.registry import DECLARED, SettingSpec
from townhall.core.secrets.repository import AppSettingRepository
from townhall.core.secrets.schemas import SettingOut

log = structlog.get_logger(__name__)

MASK = "****"
# Secrets shorter than this are masked entirely: four characters of a short key give too much.
SHOW_TAIL_FROM = 12


class AppSettings:
    """This process's effective Settings: the Settings object with the stored overrides applied."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.base = settings
        self.db = db
        # Built now: a wrong key setting stops the process at start, not a request later.
        self.keyring = Keyring.from_settings(settings)
        self._effective = settings
        self._overrides: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def effective(self) -> Settings:
        """Settings with the stored overrides; the same object until a stored value changes."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await self._reload()
        return self._effective

    async def invalidate(self) -> None:
        """Re-read the table on next use (other processes follow within the refresh time)."""
        self._loaded_at = None

    def plaintext(self, row: AppSetting) -> str:
        if row.ciphertext is None:
            return row.value or ""
        return self.keyring.decrypt(row.key, Sealed(row.key_id or "", row.ciphertext))

    def _fresh(self) -> bool:
        age = self.base.settings_refresh_seconds
        return self._loaded_at is not None and time.monotonic() - self._loaded_at < age

    async def _reload(self) -> None:
        try:
            async with self.db.session() as session:
                rows = await AppSettingRepository(session).all()
        except (SQLAlchemyError, DatabaseUnavailable) as exc:
            # The database is the override, never a dependency of reading the defaults.
            log.warning("stored settings unreadable, keeping the last ones", error=str(exc)[:200])
            rows = None
        if rows is not None:
            overrides, errors = {}, {}
            for row in rows:
                if row.key not in DECLARED:
                    continue  # retired from the allow-list
                try:
                    overrides[row.key] = self.plaintext(row)
                except UndecryptableSetting as exc:
                    errors[row.key] = exc.message
            for key, message in errors.items():
                if self._errors.get(key) != message:
                    log.error("stored setting ignored, using the Settings value", error=message)
            self._errors = errors
            if overrides != self._overrides:
                self._overrides = overrides
                self._effective = self.base.model_copy(update=_typed(overrides))
        self._loaded_at = time.monotonic()


def _typed(overrides: dict[str, str]) -> dict[str, object]:
    return {k: SecretStr(v) if DECLARED[k].secret else v for k, v in overrides.items()}


def spec_of(key: str) -> SettingSpec:
    """The declared setting `key`; 422 naming the settable ones otherwise."""
    spec = DECLARED.get(key)
    if spec is None:
        raise Unprocessable(
            f"unknown setting {key!r}; settable: {', '.join(DECLARED)}",
            extra={"errors": [{"field": "key", "message": "not a settable setting"}]},
        )
    return spec


def mask(value: str) -> str:
    return MASK + value[-4:] if len(value) >= SHOW_TAIL_FROM else MASK


def _settings_value(settings: Settings, name: str) -> str | None:
    value = getattr(settings, name)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return None if value is None else str(value)


def _describe(spec: SettingSpec, row: AppSetting | None, store: AppSettings) -> SettingOut:
    error: str | None = None
    current: str | None
    if row is not None:
        try:
            current = store.plaintext(row)
        except UndecryptableSetting as exc:
            current, error = None, exc.message
    else:
        current = _settings_value(store.base, spec.name)
    shown = None if current is None else (mask(current) if spec.secret else current)
    return SettingOut(
        key=spec.name,
        secret=spec.secret,
        description=spec.description,
        source="database" if row is not None else ("settings" if current is not None else "unset"),
        value=None if spec.secret else shown,
        masked=shown if spec.secret else None,
        key_id=row.key_id if row is not None else None,
        updated_at=row.updated_at if row is not None else None,
        error=error,
    )


async def list_settings(session: AsyncSession, store: AppSettings) -> list[SettingOut]:
    """Every declared setting with its source; secrets masked, never in plaintext."""
    rows = {row.key: row for row in await AppSettingRepository(session).all()}
    return [_describe(spec, rows.get(name), store) for name, spec in DECLARED.items()]


async def read_setting(session: AsyncSession, store: AppSettings, key: str) -> str | None:
    """The stored plaintext of `key`, None when nothing is stored (for code, never for HTTP)."""
    spec_of(key)
    row = await AppSettingRepository(session).get(key)
    return None if row is None else store.plaintext(row)


async def set_setting(
    session: AsyncSession, store: AppSettings, key: str, value: str, *, actor: uuid.UUID | None
) -> None:
    """Store `value` for `key` (a secret only as ciphertext under the current key)."""
    spec = spec_of(key)
    sealed = store.keyring.encrypt(key, value) if spec.secret else None
    await AppSettingRepository(session).put(
        key, value=None if spec.secret else value, sealed=sealed, updated_by=actor
    )
    after_commit(session, store.invalidate)


async def delete_setting(session: AsyncSession, store: AppSettings, key: str) -> None:
    """Forget the stored value of `key`: its Settings value applies again."""
    spec_of(key)
    await AppSettingRepository(session).delete(key)
    after_commit(session, store.invalidate)


async def rotate_keys(session: AsyncSession, store: AppSettings) -> int:
    """Re-encrypt every secret stored under an older key id with the current one."""
    repo = AppSettingRepository(session)
    rotated = 0
    for row in await repo.all():
        if row.ciphertext is None or row.key_id == store.keyring.current:
            continue
        # An unreadable row raises (409) and the whole rotation rolls back.
        sealed = store.keyring.encrypt(row.key, store.plaintext(row))
        await repo.put(row.key, value=None, sealed=sealed, updated_by=row.updated_by)
        rotated += 1
    return rotated
