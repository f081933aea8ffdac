"""Settings: the only reader of the environment."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class ConfigurationError(RuntimeError):
    """A setting is missing or unsafe for the chosen environment."""


class Settings(BaseSettings):
    """Every knob of townhall; unset URLs mean the embedded default."""

    model_config = SettingsConfigDict(
        env_prefix="TOWNHALL_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Environment = Environment.development
    var_dir: Path = Path("var")
    base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr | None = None
    log_level: str = "INFO"
    log_json: bool = False

    # Infrastructure URLs; None means the embedded default.
    database_url: str | None = None
    database_replica_url: str | None = None
    database_pool_size: int = 10
    redis_url: str | None = None
    broker_url: str | None = None
    storage_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    # HTTP limits.
    max_body_bytes: int = 10 * 1024 * 1024
    cors_origins: list[str] = Field(default_factory=list)

    # Auth.
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    login_attempts_per_account: int = 5
    login_attempts_per_ip: int = 20
    login_window_seconds: int = 300
    signup_per_ip_per_hour: int = 20
    cookie_secure: bool = False
    oauth_google_client_id: str | None = None
    oauth_google_client_secret: SecretStr | None = None
    oauth_kakao_client_id: str | None = None
    oauth_kakao_client_secret: SecretStr | None = None
    oauth_naver_client_id: str | None = None
    oauth_naver_client_secret: SecretStr | None = None
    # Overrides of provider endpoints (tests point these at a local fake provider).
    oauth_google_metadata_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    oauth_kakao_metadata_url: str = "https://kauth.kakao.com/.well-known/openid-configuration"
    oauth_naver_authorize_url: str = "https://nid.naver.com/oauth2.0/authorize"
    oauth_naver_token_url: str = "https://nid.naver.com/oauth2.0/token"
    oauth_naver_userinfo_url: str = "https://openapi.naver.com/v1/nid/me"

    # AI providers; nothing set means the offline provider.
    ai_base_url: str | None = None
    ai_api_key: SecretStr | None = None
    ai_model: str = "gpt-4o-mini"
    ai_timeout_seconds: float = 30.0
    roboflow_api_key: SecretStr | None = None
    roboflow_model: str = "coco/3"
    roboflow_base_url: str = "https://detect.roboflow.com"

    # Jobs.
    worker_in_process: bool = True
    job_poll_seconds: float = 0.2

    # Pub/sub, shared Redis client and real-time connections (core/pubsub, core/realtime).
    redis_max_connections: int = 50
    pubsub_queue_size: int = 1000  # per subscriber; overflow drops and reports a gap
    realtime_send_queue: int = 256  # per connection; a full queue closes it with 4408 "resync"
    realtime_heartbeat_seconds: float = 20.0

    # Outbound HTTP: hosts or CIDRs the SSRF guard lets through (tests serve fixtures locally).
    outbound_allowlist: list[str] = Field(default_factory=list)

    # Demo data is loaded by `townhall demo` / `make run`.
    demo_password: str = "demo-password"

    @model_validator(mode="after")
    def _resolve_defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / 'townhall.db'}"
        self.database_url = normalise_database_url(self.database_url)
        if self.database_replica_url is not None:
            self.database_replica_url = normalise_database_url(self.database_replica_url)
        if self.storage_url is None:
            self.storage_url = f"file://{(self.var_dir / 'blobs').resolve()}"
        return self

    @property
    def is_production(self) -> bool:
        return self.env is Environment.production

    @property
    def is_sqlite(self) -> bool:
        return str(self.database_url).startswith("sqlite")

    def check_production(self) -> None:
        """Refuse embedded defaults that lose data across machines, naming the setting."""
        if not self.is_production:
            return
        missing = []
        if self.secret_key is None:
            missing.append("TOWNHALL_SECRET_KEY")
        if self.is_sqlite:
            missing.append("TOWNHALL_DATABASE_URL (PostgreSQL)")
        if self.redis_url is None:
            missing.append("TOWNHALL_REDIS_URL")
        if self.broker_url is None:
            missing.append("TOWNHALL_BROKER_URL")
        if str(self.storage_url).startswith("file://"):
            missing.append("TOWNHALL_STORAGE_URL (s3://bucket)")
        if missing:
            raise ConfigurationError("production mode needs these settings: " + ", ".join(missing))

    def secret(self) -> str:
        """The signing secret: configured, or generated once into var/secret."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.is_production:
            raise ConfigurationError("production mode needs TOWNHALL_SECRET_KEY")
        path = self.var_dir / "secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def normalise_database_url(url: str) -> str:
    """Map plain postgres/sqlite URLs to their async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
