"""OAuth 2.0 / OIDC log-in through Authlib for Google, Kakao and Naver."""

from __future__ import annotations

from dataclasses import dataclass

from townhall.core.config import Settings


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str


PROVIDERS = (
    ProviderInfo("google", "Google"),
    ProviderInfo("kakao", "Kakao"),
    ProviderInfo("naver", "Naver"),
)


def configured_providers(settings: Settings) -> list[ProviderInfo]:
    """Providers with a client id and secret; the others are hidden."""
    return [
        p
        for p in PROVIDERS
        if getattr(settings, f"oauth_{p.name}_client_id")
        and getattr(settings, f"oauth_{p.name}_client_secret")
    ]
