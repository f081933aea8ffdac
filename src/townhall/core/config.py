"""Settings: the only reader of the environment."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
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

    env: Environment = Field(
        Environment.development,
        description=(
            "`development`, `test` or `production`; production refuses embedded defaults that lose"
            " data across machines"
        ),
    )
    var_dir: Path = Field(
        Path("var"),
        description=(
            "Directory of the embedded SQLite file, local blobs and the generated secret; "
            "production: a persistent directory"
        ),
    )
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description=(
            "Public URL of the site (OAuth redirects, links in notifications, the same-origin "
            "check of forms)"
        ),
    )
    secret_key: SecretStr | None = Field(
        None,
        description=(
            "Signing secret of tokens, cookies and local file URLs; unset: generated once into "
            "`VAR_DIR/secret`; production: required, a long random string"
        ),
    )
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING, ERROR)")
    log_json: bool = Field(
        False,
        description="One JSON object per log line instead of key=value text; production: `true`",
    )

    # Infrastructure URLs; None means the embedded default.
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the database; unset: SQLite (WAL) at `VAR_DIR/townhall.db`; "
            "production: `postgresql://user@host/db`"
        ),
    )
    database_replica_url: str | None = Field(
        None,
        description="Read replica used for lists and search; unset: reads go to `DATABASE_URL`",
    )
    database_replica_lag_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description=(
            "After a user's write, their reads go to the primary for this long "
            "(read-your-writes); set above the replica's worst lag"
        ),
    )
    database_pool_size: int = Field(
        10, description="PostgreSQL connections per process (plus as many overflow)"
    )
    redis_url: str | None = Field(
        None,
        description=(
            "Redis for cache, locks, rate limits, sessions, pub/sub and Socket.IO; unset: "
            "in-process (one process only); production: `redis://host:6379/0` with AOF; required "
            "for `serve --workers N`"
        ),
    )
    broker_url: str | None = Field(
        None,
        description=(
            "Job broker; unset: durable job queue in the database, run inside `serve`; production:"
            " `amqp://user:pass@host/` or `redis://`"
        ),
    )
    storage_url: str | None = Field(
        None, description="Object storage; unset: `file://VAR_DIR/blobs`; production: `s3://bucket`"
    )
    s3_endpoint: str | None = Field(
        None, description="S3-compatible endpoint (MinIO etc.); unset: AWS"
    )
    s3_access_key_id: str | None = Field(
        None, description="S3 access key id (with `S3_SECRET_ACCESS_KEY`)"
    )
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key")
    s3_region: str = Field("us-east-1", description="S3 region")

    # HTTP limits.
    max_body_bytes: int = Field(
        10 * 1024 * 1024, description="Largest request body in bytes (10 MiB); larger ones get 413"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description=(
            "Origins allowed to open Socket.IO connections (JSON list); empty: same origin only"
        ),
    )

    # Auth.
    access_token_minutes: int = Field(15, description="Lifetime of a JWT access token")
    refresh_token_days: int = Field(
        30, description="Lifetime of a refresh token (and of the session it belongs to)"
    )
    login_attempts_per_account: int = Field(
        5, description="Failed log-ins per account per window before 429"
    )
    login_attempts_per_ip: int = Field(
        20, description="Log-ins per client IP per window before 429"
    )
    login_window_seconds: int = Field(300, description="Window of both log-in rate limits")
    signup_per_ip_per_hour: int = Field(20, description="Sign-ups per client IP per hour")
    link_saves_per_minute: int = Field(
        120, description="Link saves per user per minute (10x per client IP; 0: no limit)"
    )
    report_filings_per_hour: int = Field(
        60, description="Reports filed per user per hour (10x per client IP; 0: no limit)"
    )
    cookie_secure: bool = Field(
        False, description="Mark auth cookies Secure (HTTPS only); production: `true` behind TLS"
    )
    oauth_google_client_id: str | None = Field(
        None, description="Google OAuth client id; unset: the Google button is hidden"
    )
    oauth_google_client_secret: SecretStr | None = Field(
        None, description="Google OAuth client secret"
    )
    oauth_kakao_client_id: str | None = Field(
        None, description="Kakao OAuth client id (REST API key); unset: the Kakao button is hidden"
    )
    oauth_kakao_client_secret: SecretStr | None = Field(
        None, description="Kakao OAuth client secret"
    )
    oauth_naver_client_id: str | None = Field(
        None, description="Naver OAuth client id; unset: the Naver button is hidden"
    )
    oauth_naver_client_secret: SecretStr | None = Field(
        None, description="Naver OAuth client secret"
    )
    # Overrides of provider endpoints (tests point these at a local fake provider).
    oauth_google_metadata_url: str = Field(
        "https://accounts.google.com/.well-known/openid-configuration",
        description="Google OIDC discovery document (tests point it at a local fake provider)",
    )
    oauth_kakao_metadata_url: str = Field(
        "https://kauth.kakao.com/.well-known/openid-configuration",
        description="Kakao OIDC discovery document",
    )
    oauth_naver_authorize_url: str = Field(
        "https://nid.naver.com/oauth2.0/authorize", description="Naver authorization endpoint"
    )
    oauth_naver_token_url: str = Field(
        "https://nid.naver.com/oauth2.0/token", description="Naver token endpoint"
    )
    oauth_naver_userinfo_url: str = Field(
        "https://openapi.naver.com/v1/nid/me", description="Naver profile API"
    )

    # Settings stored in the database (core/secrets): encrypted at rest, keyed by a key id.
    settings_encryption_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            "Key id -> key (JSON object) encrypting the secrets of the `app_settings` table; the "
            "id `default` is always derived from `SECRET_KEY`. Keep retired ids so their values "
            "stay readable"
        ),
    )
    settings_encryption_key_id: str | None = Field(
        None,
        description=(
            "Key id encrypting new values; unset: the only key of `SETTINGS_ENCRYPTION_KEYS`, "
            "or `default`"
        ),
    )
    settings_refresh_seconds: float = Field(
        10.0,
        description="How long a process uses the settings read from the database before re-reading",
    )

    # AI providers; nothing set means the offline provider.
    ai_base_url: str | None = Field(
        None,
        description=(
            "OpenAI-compatible endpoint (OpenAI, OpenRouter, Ollama, vLLM); unset: the offline "
            "provider"
        ),
    )
    ai_api_key: SecretStr | None = Field(None, description="API key of `AI_BASE_URL`")
    ai_model: str = Field("gpt-4o-mini", description="Default chat model of `AI_BASE_URL`")
    ai_timeout_seconds: float = Field(30.0, description="Timeout of one AI request")
    roboflow_api_key: SecretStr | None = Field(
        None, description="Roboflow API key for object detection; unset: the offline detector"
    )
    roboflow_model: str = Field("coco/3", description="Roboflow model (`project/version`)")
    roboflow_base_url: str = Field(
        "https://detect.roboflow.com", description="Roboflow inference endpoint"
    )
    # AI (core/ai): retries on 429/5xx/timeouts, routing by task, offline fallback.
    ai_max_retries: int = Field(3, description="Retries of an AI request on 429, 5xx and timeouts")
    ai_retry_backoff_seconds: float = Field(
        0.5, description="First delay between AI retries (doubles each time)"
    )
    ai_max_invalid_outputs: int = Field(
        2, description="Model outputs that fail validation before the task gives up"
    )
    ai_routes: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Task (or `app.*`) -> `openai[:model]`, `roboflow[:model]` or `offline` (JSON object)"
        ),
    )
    ai_fallback_offline: bool = Field(
        True, description="Answer with the offline provider when the configured one fails"
    )

    # Jobs (core/jobs): broker_url unset = the durable embedded broker in the database.
    worker_in_process: bool = Field(
        True,
        description=(
            "Run job consumers inside `serve`; production: `false` with `townhall worker` processes"
        ),
    )
    job_poll_seconds: float = Field(
        0.2, description="How often the embedded broker looks for due jobs"
    )
    job_lease_seconds: float = Field(
        60.0, description="A claimed embedded job is run again when its lease expires"
    )
    job_concurrency: int = Field(10, description="Jobs run at once per worker process")
    job_shutdown_seconds: float = Field(
        10.0, description="A graceful stop waits this long for running jobs"
    )
    job_schedule_poll_seconds: float = Field(
        1.0, description="How often cron ticks and sweepers are checked"
    )
    job_queue_prefix: str = Field(
        "", description="Prepended to RabbitMQ/Redis queue names (tests isolate with it)"
    )
    job_modules: list[str] = Field(
        default_factory=list, description="Extra modules declaring `@task` (JSON list)"
    )

    # Pub/sub, shared Redis client and real-time connections (core/pubsub, core/realtime).
    redis_max_connections: int = Field(
        50, description="Size of the shared Redis connection pool; bursts wait for a connection"
    )
    pubsub_queue_size: int = Field(
        1000,
        description="Messages buffered per subscriber; overflow is dropped and reported as a gap",
    )
    pubsub_channel_prefix: str = Field(
        "",
        max_length=64,
        pattern=r"^[^*?\[\]\\]*$",
        description=(
            "Prepended to every Redis pub/sub channel (pub/sub ignores the database number, so "
            "deployments sharing one Redis set different prefixes)"
        ),
    )
    realtime_send_queue: int = Field(
        256,
        description=(
            "Messages queued per WebSocket/SSE connection; a full queue closes it with 4408 "
            "`resync`"
        ),
    )
    realtime_heartbeat_seconds: float = Field(
        20.0, description="Ping interval of WebSocket/SSE connections"
    )
    realtime_connections_per_user: int = Field(
        64,
        ge=0,
        description=(
            "Open WebSocket/SSE connections one signed-in user may hold on one process (0 = no "
            "limit); one more is closed with 1013 or answered 429"
        ),
    )

    # Outbound HTTP: hosts or CIDRs the SSRF guard lets through (tests serve fixtures locally).
    outbound_allowlist: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts or CIDRs the SSRF guard lets through (JSON list; tests serve fixtures locally)"
        ),
    )

    # Sync engine (src/townhall/sync): document limit, retries, snapshots, retention, catch-up.
    sync_max_document_bytes: int = Field(1024 * 1024, description="Largest Sync API document")
    sync_max_retries: int = Field(
        12, description="Retries of a write that lost an optimistic-concurrency race"
    )
    sync_retry_base_seconds: float = Field(0.002, description="First delay between those retries")
    sync_retry_max_seconds: float = Field(0.1, description="Longest delay between those retries")
    sync_snapshot_every_events: int = Field(
        1000, description="A snapshot is taken after this many events"
    )
    sync_snapshot_every_minutes: float = Field(
        60.0, description="... or after this many minutes with new events"
    )
    sync_snapshots_keep: int = Field(3, description="Snapshots kept per document")
    sync_event_retention_days: float = Field(
        7.0, description="Events older than this (and covered by a snapshot) are deleted"
    )
    sync_event_retention_count: int = Field(1000, description="Events kept per document at least")
    sync_catchup_max_events: int = Field(
        5000, description="A reconnecting client further behind gets a snapshot instead of events"
    )
    sync_client_idle_days: float = Field(
        30.0, description="State vectors of clients idle this long are forgotten"
    )
    sync_subscriber_queue: int = Field(1000, description="Events buffered per live subscriber")
    sync_poll_seconds: float = Field(2.0, description="Fallback database poll of live streams")

    # Demo data is loaded by `townhall demo` / `make run`.
    demo_password: str = Field(
        "demo-password", description="Password of every demo account (`townhall demo`)"
    )

    # Collab engine (seed 000): Yjs rooms, signaling relay, write-back buffer, flusher.
    collab_key_prefix: str = Field(
        "", description="Prepended to every collab Redis key (tests isolate with it)"
    )
    collab_max_update_bytes: int = Field(1024 * 1024, description="Largest Yjs update message")
    collab_max_document_bytes: int = Field(8 * 1024 * 1024, description="Largest Yjs document")
    collab_flush_cron: str = Field(
        "* * * * *",
        description=(
            "Schedule of the `collab.flush` job writing the buffer to the database (cron: "
            "minute hour day month weekday)"
        ),
    )
    collab_flush_seconds: float = Field(
        0.0,
        description=(
            "Extra in-process flush loop of the write-back buffer (besides the "
            "`collab_flush_cron` job); 0: off"
        ),
    )
    collab_versions_kept: int = Field(50, description="Saved versions kept per document")
    collab_store_debounce_seconds: float = Field(
        2.0, description="A room stores its document this long after the last edit"
    )
    collab_store_max_debounce_seconds: float = Field(
        10.0, description="... and at least this often while edits keep coming"
    )
    collab_signaling_max_topics: int = Field(
        32, description="WebRTC signaling topics per connection"
    )
    collab_signaling_max_message_bytes: int = Field(
        64 * 1024, description="Largest WebRTC signaling message"
    )
    collab_signaling_messages_per_second: int = Field(
        50, description="Signaling messages per connection per second"
    )
    collab_signaling_ping_seconds: float = Field(
        30.0, description="Ping interval of signaling connections"
    )

    # Quiz app (seed 003): live games over Socket.IO; state in Redis when redis_url is set.
    quiz_key_prefix: str = Field(
        "", description="Prepended to every quiz Redis key and the Socket.IO channel"
    )
    quiz_first_correct_bonus: int = Field(
        100, description="Bonus points of the first correct answer"
    )
    quiz_watchdog_seconds: float = Field(
        0.1, description="How often every worker sweeps overdue questions"
    )
    quiz_close_grace_ms: int = Field(
        150, description="The watchdog closes a question this long after its deadline"
    )
    quiz_events_per_second: float = Field(
        20.0, description="Socket.IO events per socket per second (bursts of twice that)"
    )
    quiz_host_absent_seconds: float = Field(
        300.0, description="A game whose host has no connected socket this long is ended"
    )
    quiz_chat_per_minute: int = Field(20, description="Chat messages per player per minute")
    quiz_ranking_in_broadcast: int = Field(
        500, description="Players in the broadcast ranking; the rest ask for their rank with `me`"
    )
    quiz_game_ttl_hours: float = Field(
        12.0, description="A game's live state expires this long after its last change"
    )
    quiz_max_image_bytes: int = Field(5 * 1024 * 1024, description="Largest quiz image upload")
    quiz_redis_pool: int = Field(200, description="Redis connections of the quiz game store")

    # Docs app (seed 000, service A): uploaded page images.
    doc_max_image_bytes: int = Field(
        10 * 1024 * 1024, description="Largest image uploaded into a Docs page"
    )

    # Sheets app (seed 000, service B): import limits and range API sizes.
    sheet_max_import_bytes: int = Field(
        10 * 1024 * 1024, description="Largest CSV or XLSX file imported into Sheets"
    )
    sheet_max_import_unzipped_bytes: int = Field(
        100 * 1024 * 1024, description="Largest total unpacked size of an imported XLSX"
    )
    sheet_max_import_zip_ratio: float = Field(
        100.0, description="Highest compression ratio of an XLSX part (zip-bomb guard)"
    )
    sheet_max_import_cells: int = Field(
        500_000, description="Most non-empty cells one import may bring into a workbook"
    )
    sheet_max_range_cells: int = Field(
        100_000, description="Most cells one range read or write of the Sheets API may cover"
    )

    # Links app (seed 002): pipeline retries, fetch limits, oEmbed, scrape lock.
    link_retries: int = Field(
        2,
        description=(
            "Retries of each Links pipeline step after its first attempt (seed 002: retry while "
            "retry_count < 3, so 3 attempts)"
        ),
    )
    link_retry_delay_seconds: float = Field(30.0, description="Delay before each of those retries")
    link_fetch_timeout_seconds: float = Field(
        10.0, description="Timeout of one page or image fetch"
    )
    link_max_page_bytes: int = Field(5 * 1024 * 1024, description="Largest page fetched")
    link_max_image_bytes: int = Field(10 * 1024 * 1024, description="Largest image fetched")
    link_max_image_pixels: int = Field(
        40_000_000, description="Largest image decoded (decompression-bomb guard)"
    )
    link_max_redirects: int = Field(5, description="Redirects followed per fetch")
    link_scrape_lock_seconds: int = Field(
        300, description="One scrape of a URL at a time, for at most this long"
    )
    link_stalled_minutes: float = Field(
        10.0, description="The sweeper re-enqueues links stuck this long"
    )
    link_youtube_oembed_url: str = Field(
        "https://www.youtube.com/oembed", description="YouTube oEmbed endpoint"
    )

    # Reports app (seed 004): service area (default: Jeonbuk around Jeonju), photos, AI, routing.
    report_area_min_lat: float = Field(
        35.30, description="South edge of the service area (default: Jeonbuk)"
    )
    report_area_max_lat: float = Field(36.20, description="North edge of the service area")
    report_area_min_lng: float = Field(126.35, description="West edge of the service area")
    report_area_max_lng: float = Field(127.95, description="East edge of the service area")
    report_map_center: tuple[float, float] = Field(
        (35.8242, 127.1480), description="Map centre (lat, lng; default: Jeonju city hall)"
    )
    report_tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png", description="Map tile URL template"
    )
    report_min_photos: int = Field(1, description="Photos a report needs at least")
    report_max_photos: int = Field(10, description="Photos a report may have at most")
    report_max_photo_bytes: int = Field(8 * 1024 * 1024, description="Largest report photo")
    report_max_photo_pixels: int = Field(
        40_000_000, description="Largest report photo decoded (decompression-bomb guard)"
    )
    report_ai_threshold: float = Field(
        0.6, description="AI suggestions at or above this confidence route the report"
    )
    report_duplicate_radius_m: float = Field(
        250.0, description="Open reports this close to a new one are offered as possible duplicates"
    )
    report_retries: int = Field(3, description="Retries of each report pipeline step")
    report_retry_delay_seconds: float = Field(10.0, description="First delay between those retries")
    report_transitions: dict[str, list[str]] = Field(
        default_factory=dict,
        description="State -> allowed next states (JSON object); empty: the built-in workflow",
    )

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
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: of processes starting together exactly one creates the file, and it is
            # private from its first byte.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return read_secret_file(path)
        secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as file:
            file.write(secret)
        return secret


def read_secret_file(path: Path, wait_seconds: float = 5.0) -> str:
    """The secret another process wrote; waits out the moment between its create and write."""
    deadline = time.monotonic() + wait_seconds
    while True:
        secret = path.read_text().strip()
        if secret:
            return secret
        if time.monotonic() > deadline:
            raise ConfigurationError(f"{path} is empty; delete it or set TOWNHALL_SECRET_KEY")
        time.sleep(0.01)


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


TABLE_START = "<!-- settings table: generated by `python -m townhall.core.config README.md` -->"
TABLE_END = "<!-- end of settings table -->"


def _shown_default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, StrEnum):
        value = value.value
    elif isinstance(value, bool | list | dict | tuple):
        value = json.dumps(value)  # how the environment variable spells it
    return f"`{value}`" if str(value) else '`""`'


def settings_table() -> str:
    """Every setting as a Markdown table: variable, default, description."""
    rows = ["| setting | default | description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = _shown_default(field.get_default(call_default_factory=True))
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `TOWNHALL_{name.upper()}` | {default} | {description} |")
    return "\n".join(rows)


def with_settings_table(text: str) -> str:
    """`text` (the README) with the generated table between its two markers."""
    start = text.index(TABLE_START) + len(TABLE_START)
    return f"{text[:start]}\n{settings_table()}\n{text[text.index(TABLE_END) :]}"


if __name__ == "__main__":
    readme = Path(sys.argv[1])
    readme.write_text(with_settings_table(readme.read_text()))
