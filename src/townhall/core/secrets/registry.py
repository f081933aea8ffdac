"""The allow-list of settings admins may store in the database, each over a Settings field."""

from __future__ import annotations

from dataclasses import dataclass

from townhall.core.config import Settings


@dataclass(frozen=True)
class SettingSpec:
    """A storable setting: named like the Settings field it overrides; secrets are encrypted."""

    name: str
    secret: bool

    @property
    def description(self) -> str:
        return Settings.model_fields[self.name].description or ""


_OAUTH = ("google", "kakao", "naver")

# Only string fields: a stored value replaces the field as is (SecretStr for secrets).
DECLARED: dict[str, SettingSpec] = {
    spec.name: spec
    for spec in (
        SettingSpec("ai_base_url", secret=False),
        SettingSpec("ai_model", secret=False),
        SettingSpec("ai_api_key", secret=True),
        SettingSpec("roboflow_api_key", secret=True),
        *(SettingSpec(f"oauth_{p}_client_id", secret=False) for p in _OAUTH),
        *(SettingSpec(f"oauth_{p}_client_secret", secret=True) for p in _OAUTH),
    )
}
