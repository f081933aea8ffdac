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
    # AI (core/ai): retries on 429/5xx/timeouts, routing by task, offline fallback.
    ai_max_retries: int = 3
    ai_retry_backoff_seconds: float = 0.5
    ai_max_invalid_outputs: int = 2
    # task (or "app.*") -> "openai[:model]" | "roboflow[:model]" | "offline"
    ai_routes: dict[str, str] = Field(default_factory=dict)
    ai_fallback_offline: bool = True

    # Jobs (core/jobs): broker_url unset = the durable embedded broker in the database.
    worker_in_process: bool = True
    job_poll_seconds: float = 0.2
    job_lease_seconds: float = 60.0  # a claimed embedded job is re-run when its lease expires
    job_concurrency: int = 10  # jobs run at once per worker process
    job_shutdown_seconds: float = 10.0  # graceful stop waits this long for running jobs
    job_schedule_poll_seconds: float = 1.0  # how often cron ticks and sweepers are checked
    job_queue_prefix: str = ""  # prepended to RabbitMQ/Redis queue names (tests isolate with it)
    job_modules: list[str] = Field(default_factory=list)  # extra modules declaring @task

    # Pub/sub, shared Redis client and real-time connections (core/pubsub, core/realtime).
    redis_max_connections: int = 50
    pubsub_queue_size: int = 1000  # per subscriber; overflow drops and reports a gap
    realtime_send_queue: int = 256  # per connection; a full queue closes it with 4408 "resync"
    realtime_heartbeat_seconds: float = 20.0

    # Outbound HTTP: hosts or CIDRs the SSRF guard lets through (tests serve fixtures locally).
    outbound_allowlist: list[str] = Field(default_factory=list)

    # Sync engine (src/townhall/sync): document limit, retries, snapshots, retention, catch-up.
    sync_max_document_bytes: int = 1024 * 1024
    sync_max_retries: int = 12
    sync_retry_base_seconds: float = 0.002
    sync_retry_max_seconds: float = 0.1
    sync_snapshot_every_events: int = 1000
    sync_snapshot_every_minutes: float = 60.0
    sync_snapshots_keep: int = 3
    sync_event_retention_days: float = 7.0
    sync_event_retention_count: int = 1000
    sync_catchup_max_events: int = 5000
    sync_client_idle_days: float = 30.0
    sync_subscriber_queue: int = 1000
    sync_poll_seconds: float = 2.0

    # Demo data is loaded by `townhall demo` / `make run`.
    demo_password: str = "demo-password"

    # Collab engine (seed 000): Yjs rooms, signaling relay, write-back buffer, flusher.
    collab_key_prefix: str = ""  # prepended to every collab Redis key (tests isolate with it)
    collab_max_update_bytes: int = 1024 * 1024
    collab_max_document_bytes: int = 8 * 1024 * 1024
    # The collab.flush cron job runs every minute; this adds a faster in-process loop (0 = off).
    collab_flush_seconds: float = 0.0
    collab_versions_kept: int = 50
    collab_store_debounce_seconds: float = 2.0
    collab_store_max_debounce_seconds: float = 10.0
    collab_signaling_max_topics: int = 32
    collab_signaling_max_message_bytes: int = 64 * 1024
    collab_signaling_messages_per_second: int = 50
    collab_signaling_ping_seconds: float = 30.0

    # Quiz app (seed 003): live games over Socket.IO; state in Redis when redis_url is set.
    quiz_key_prefix: str = ""  # prepended to every quiz Redis key and the Socket.IO channel
    quiz_first_correct_bonus: int = 100
    quiz_watchdog_seconds: float = 0.1  # how often every worker sweeps overdue questions
    quiz_close_grace_ms: int = 150  # the watchdog closes a question this long after its deadline
    quiz_events_per_second: float = 20.0  # per socket, burst twice that
    quiz_chat_per_minute: int = 20
    quiz_ranking_in_broadcast: int = 500  # players beyond it fetch their rank with `me`
    quiz_game_ttl_hours: float = 12.0
    quiz_max_image_bytes: int = 5 * 1024 * 1024
    quiz_redis_pool: int = 200

    # Links app (seed 002): pipeline retries, fetch limits, oEmbed, scrape lock.
    link_retries: int = 3
    link_retry_delay_seconds: float = 30.0
    link_fetch_timeout_seconds: float = 10.0
    link_max_page_bytes: int = 5 * 1024 * 1024
    link_max_image_bytes: int = 10 * 1024 * 1024
    link_max_image_pixels: int = 40_000_000
    link_max_redirects: int = 5
    link_scrape_lock_seconds: int = 300
    link_stalled_minutes: float = 10.0
    link_youtube_oembed_url: str = "https://www.youtube.com/oembed"

    # Reports app (seed 004): service area (default: Jeonbuk around Jeonju), photos, AI, routing.
    report_area_min_lat: float = 35.30
    report_area_max_lat: float = 36.20
    report_area_min_lng: float = 126.35
    report_area_max_lng: float = 127.95
    report_map_center: tuple[float, float] = (35.8242, 127.1480)  # Jeonju city hall
    report_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    report_min_photos: int = 1
    report_max_photos: int = 10
    report_max_photo_bytes: int = 8 * 1024 * 1024
    report_max_photo_pixels: int = 40_000_000
    report_ai_threshold: float = 0.6  # suggestions at or above it route the report
    report_duplicate_radius_m: float = 250.0
    report_retries: int = 3
    report_retry_delay_seconds: float = 10.0
    # state -> allowed next states; empty = the built-in workflow (modules/report/workflow.py)
    report_transitions: dict[str, list[str]] = Field(default_factory=dict)

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
