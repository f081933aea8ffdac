"""The dependency handing a handler the effective Settings (stored overrides applied)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from townhall.core.config import Settings
from townhall.core.deps import PlatformDep


async def get_effective_settings(platform: PlatformDep) -> Settings:
    return await platform.app_settings.effective()


EffectiveSettings = Annotated[Settings, Depends(get_effective_settings)]
