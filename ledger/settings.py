"""One settings object: defaults, then the environment, then explicit overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_HOME = Path(os.environ.get("LEDGER_HOME", "var"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "y", "yes", "true", "on")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, passed down from the entry points."""

    home: Path = DEFAULT_HOME
    database_url: str = ""
    read_database_url: str = ""  # a streaming hot standby for projection reads (api/replica.py)
    group_commit: bool = True
    group_commit_max_events: int = 2000
    artifact_cache_bytes: int = 512 * 1024 * 1024
    max_batch_rows: int = 10_000
    max_body_bytes: int = 64 * 1024 * 1024
    max_model_bytes: int = 256 * 1024 * 1024
    page_limit: int = 1000
    digest_interval_seconds: int = 300
    body_timeout_seconds: float = 10.0  # a request must arrive in full within this (408 after)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'ledger.db'}")

    @property
    def secrets_dir(self) -> Path:
        return Path(os.environ.get("LEDGER_SECRETS_DIR", self.home / "secrets"))

    @property
    def digests_dir(self) -> Path:
        return Path(os.environ.get("LEDGER_DIGEST_DIR", self.home / "digests"))

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        home = Path(os.environ.get("LEDGER_HOME", "var"))
        settings = cls(
            home=home,
            database_url=os.environ.get("LEDGER_DATABASE_URL", ""),
            read_database_url=os.environ.get("LEDGER_READ_DATABASE_URL", ""),
            group_commit=_env_bool("LEDGER_GROUP_COMMIT", True),
            max_batch_rows=int(os.environ.get("LEDGER_MAX_BATCH_ROWS", 10_000)),
            max_body_bytes=int(os.environ.get("LEDGER_MAX_BODY_BYTES", 64 * 1024 * 1024)),
            artifact_cache_bytes=int(
                os.environ.get("LEDGER_ARTIFACT_CACHE_BYTES", 512 * 1024 * 1024)
            ),
            body_timeout_seconds=float(os.environ.get("LEDGER_BODY_TIMEOUT_SECONDS", 10.0)),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
