"""Settings every service shares (pydantic-settings); each service extends them.

Values come from the environment (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` ...).
The defaults are for a developer's machine (``make run``) and are refused in
production: the dev secrets below are public knowledge.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collect_common.db import DatabaseTimeouts


def _dev_key(label: str) -> str:
    return base64.b64encode(hashlib.sha256(f"collect-dev-{label}".encode()).digest()).decode()


# Well-known development credentials (printed by `make run`, refused in production).
DEV_API_KEYS: dict[str, tuple[str, str]] = {
    # subject: (roles separated by |, plaintext key)
    "bank-core": ("bank", "ck_devbank_" + "b" * 32),
    "dialer": ("dialer", "ck_devdialer_" + "d" * 32),
    "ops-dashboard": ("ops", "ck_devops_" + "o" * 32),
    "bank-auditor": ("auditor", "ck_devauditor_" + "a" * 32),
}
DEV_TOKEN_SECRET = "dev-token-secret-not-for-production-use-0123456789"  # noqa: S105
DEV_FIELD_KEYS = f"dev1:{_dev_key('field')}"
DEV_INDEX_KEY = _dev_key("index")
DEV_WEBHOOK_SECRETS = "dialer-dev:dev-webhook-secret-not-for-production"


def _dev_api_key_registry() -> str:
    return ";".join(
        f"{subject}:{roles}:{hashlib.sha256(key.encode()).hexdigest()}"
        for subject, (roles, key) in DEV_API_KEYS.items()
    )


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Literal["dev", "test", "production"] = "dev"
    service_name: str = "service"
    database_url: str = Field(
        default="", description="SQLAlchemy async URL; empty: a SQLite file under var/"
    )
    # How long a request may wait on PostgreSQL before it fails and answers 503
    # (collect_common.db.DatabaseTimeouts); asyncpg's own defaults are 60 s and none.
    db_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, le=600, description="Establishing a database connection"
    )
    db_command_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Any one statement, client side (bounds a server that never answers); "
        "generous so long reports are not cut",
    )
    db_pool_timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="Waiting for a free pooled connection"
    )
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    log_level: str = "INFO"
    log_json: bool = True

    # security (SEC-PII, SEC-ACCESS)
    field_keys: SecretStr = SecretStr(DEV_FIELD_KEYS)
    blind_index_key: SecretStr = SecretStr(DEV_INDEX_KEY)
    token_secret: SecretStr = SecretStr(DEV_TOKEN_SECRET)
    token_issuer: str = "collect-platform"  # noqa: S105 (a name, not a secret)
    api_keys: SecretStr = Field(
        default=SecretStr(_dev_api_key_registry()),
        description="subject:role|role:sha256hex;... (hashes only, never the keys)",
    )
    webhook_secrets: SecretStr = SecretStr(DEV_WEBHOOK_SECRETS)

    # bus
    relay_enabled: bool = True
    relay_batch_size: int = Field(default=1000, ge=1, le=10000)
    consumer_enabled: bool = True
    consumer_max_attempts: int = Field(default=3, ge=1, le=20)
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        le=10_000_000,
        description="Allocations between young-generation garbage collections once the service "
        "has started (the startup heap is frozen out of the scans); 0: Python's defaults",
    )
    gc_full_collection_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Seconds between full garbage collections, so garbage that outlived a "
        "young-generation collection is freed by time, not only after hours of allocations; "
        "0: never (Python's own schedule)",
    )
    consumer_max_batch: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Most events the consumer applies in one transaction",
    )
    consumer_retry_backoff_seconds: float = Field(default=0.5, ge=0)
    readiness_requires_broker: bool = Field(
        default=False,
        description="Outbox absorbs writes while Kafka is down, so by default the broker "
        "is reported in /readyz but does not make the service unready.",
    )
    # durable timers (collect_common.timers): the runtime's TimerScheduler
    scheduler_enabled: bool = Field(
        default=True, description="Run the timer scheduler in this process (when it has timers)"
    )
    scheduler_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    clock_file: str = Field(
        default="",
        description="Development and end-to-end tests only (refused in production): the "
        "service's clock is the system time plus the offset in seconds read from this file, "
        "so one file moves time for every process that shares it",
    )
    migrate_on_start: bool = Field(
        default=True, description="Run Alembic upgrade head at start (dev); off in production"
    )

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> ServiceSettings:
        if self.environment != "production":
            return self
        dev_values = {
            "field_keys": DEV_FIELD_KEYS,
            "blind_index_key": DEV_INDEX_KEY,
            "token_secret": DEV_TOKEN_SECRET,
            "api_keys": _dev_api_key_registry(),
            "webhook_secrets": DEV_WEBHOOK_SECRETS,
        }
        for name, dev in dev_values.items():
            if getattr(self, name).get_secret_value() == dev:
                raise ValueError(f"{name}: the development default is refused in production")
        if self.clock_file:
            raise ValueError("clock_file: a moved clock is refused in production")
        if not self.database_url or self.database_url.startswith("sqlite"):
            raise ValueError("database_url: production runs on PostgreSQL")
        return self

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///var/{self.service_name}.db"

    def database_timeouts(self) -> DatabaseTimeouts:
        return DatabaseTimeouts(
            connect=self.db_connect_timeout_seconds,
            command=self.db_command_timeout_seconds,
            pool=self.db_pool_timeout_seconds,
        )
