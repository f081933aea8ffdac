"""Admin API shapes of the stored settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

# Stripped (a pasted key often ends in a newline); no control characters, which would break
# the HTTP headers these values end up in.
SettingValue = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class SettingIn(BaseModel):
    value: SettingValue


class SettingOut(BaseModel):
    """A declared setting: where its value comes from; a secret only ever masked."""

    key: str
    secret: bool
    description: str
    # database: stored here (overrides Settings); settings: the environment/default; unset.
    source: Literal["database", "settings", "unset"]
    value: str | None
    masked: str | None
    key_id: str | None
    updated_at: datetime | None
    # Why a stored value is unreadable (then the Settings value is used).
    error: str | None = None


class SettingsPage(BaseModel):
    items: list[SettingOut]
    key_id: str


class RotationOut(BaseModel):
    rotated: int
    key_id: str
