"""Admin API of the stored settings: /api/v1/admin/settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from townhall.core.deps import AdminPrincipal, DbSession, PlatformDep
from townhall.core.secrets import service
from townhall.core.secrets.schemas import RotationOut, SettingIn, SettingsPage

router = APIRouter(prefix="/api/v1/admin/settings", tags=["admin: settings"])

SettingKey = Annotated[str, Path(max_length=100)]


@router.get("")
async def list_settings(
    _admin: AdminPrincipal, session: DbSession, platform: PlatformDep
) -> SettingsPage:
    """Every settable setting and where its value comes from; secrets masked."""
    store = platform.app_settings
    items = await service.list_settings(session, store)
    return SettingsPage(items=items, key_id=store.keyring.current)


@router.put("/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def put_setting(
    key: SettingKey,
    body: SettingIn,
    admin: AdminPrincipal,
    session: DbSession,
    platform: PlatformDep,
) -> Response:
    """Store a value overriding the Settings one; secrets are encrypted at rest."""
    await service.set_setting(session, platform.app_settings, key, body.value, actor=admin.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_setting(
    key: SettingKey, _admin: AdminPrincipal, session: DbSession, platform: PlatformDep
) -> Response:
    """Forget the stored value; the Settings value applies again."""
    await service.delete_setting(session, platform.app_settings, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/rotate")
async def rotate_keys(
    _admin: AdminPrincipal, session: DbSession, platform: PlatformDep
) -> RotationOut:
    """Re-encrypt secrets stored under older key ids with the current key."""
    store = platform.app_settings
    rotated = await service.rotate_keys(session, store)
    return RotationOut(rotated=rotated, key_id=store.keyring.current)
