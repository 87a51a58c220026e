"""Settings from ``LOGHARBOR_*`` environment variables, built once and passed down explicitly."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from logharbor.collector.redaction import DEFAULT_MASKED_KEYS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOGHARBOR_", extra="ignore")

    data_dir: Path = Field(
        default=Path("logharbor-data"),
        description="Holds the SQLite database and the generated secret key.",
    )
    database_url: str = Field(
        default="", description="sqlite:///path or postgresql://...; default: SQLite in data_dir"
    )
    events_url: str = Field(
        default="",
        description=(
            "clickhouse://user:pass@host:8123[,host2:8123]/db[?cluster=name] or "
            "chdb:///dir/db: traffic records and core logs go there; empty: the database above"
        ),
    )
    secret_key: str = Field(default="", description="JWT signing key; generated once if unset")
    token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    allow_signup: bool = True
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    body_cap_bytes: int = Field(default=1024 * 1024, ge=256)
    body_preview_chars: int = Field(default=200, ge=0)
    masked_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_MASKED_KEYS))
    sqlite_busy_timeout_ms: int = 30_000
    db_pool_size: int = 20
    opentelemetry: bool = Field(
        default=False,
        description=(
            "FastAPI's OpenTelemetry traces, metrics and logs (to the globally configured "
            "providers). Off by default: it looks the providers up on every request."
        ),
    )
    # --- alerts (webhooks) and the retention job (retention_job.py) ---
    webhook_allow_http: bool = Field(default=False, description="Allow http:// webhook URLs")
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook hosts on loopback/private/link-local/reserved addresses",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, description="Outbox poll interval")
    webhook_group_seconds: float = Field(
        default=2.0, ge=0, description="Wait before a first message so a burst becomes one"
    )
    webhook_default_cooldown_seconds: int = Field(default=60, ge=0, le=86_400)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    webhook_concurrency: int = Field(default=4, ge=1, le=64)
    # Rollup detail kept by the retention job: per-minute rows for this many days, per-hour rows
    # for this many (at least as many); per-day rows for ever. See stats/thinning.py.
    stats_minute_days: int = Field(default=14, ge=1, le=36_500)
    stats_hour_days: int = Field(default=400, ge=1, le=36_500)
    # For collectors that send no routeTemplate (Arkyn's): count /users/42 under /users/:id.
    stats_template_pathnames: bool = False
    retention_interval_minutes: float = Field(default=60.0, gt=0)
    retention_batch_size: int = Field(default=1000, ge=1)
    webhook_outbox_keep_days: int = Field(default=7, ge=1)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'logharbor.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured key, else one generated on first start and kept in the data dir.

        Several workers may start at once, so the file is created exclusively and whoever loses
        the race reads the winner's key.
        """
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret_key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):
                key = path.read_text().strip()
                if key:
                    return key
                time.sleep(0.01)
            raise RuntimeError(f"{path} exists but is empty") from None
        key = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
