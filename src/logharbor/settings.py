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
    secret_key: str = Field(default="", description="JWT signing key; generated once if unset")
    token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    allow_signup: bool = True
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    body_cap_bytes: int = Field(default=1024 * 1024, ge=256)
    body_preview_chars: int = Field(default=200, ge=0)
    masked_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_MASKED_KEYS))
    sqlite_busy_timeout_ms: int = 30_000
    db_pool_size: int = 10

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
