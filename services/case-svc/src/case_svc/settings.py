"""Settings of case-svc: the common ones, plus what this service adds."""

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from collect_common.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class Settings(ServiceSettings):
    service_name: str = "case-svc"
    migrations_dir: Path = MIGRATIONS
    policy_file: Path | None = Field(
        default=None,
        description="TOML/JSON PolicyBook of CasePolicy versions per bank contract "
        "(CASE-BUCKET, CASE-INTAKE, CASE-PROMISE, CASE-HARDSHIP); none: the defaults",
    )
    policy_contract: str = Field(
        default="default", description="Which contract's policy version this deployment uses"
    )
    strategy_file: Path | None = Field(
        default=None,
        description="TOML/JSON strategy table (CASE-STRATEGY); none: the built-in table v1",
    )

    # CASE-INTAKE, the streamed NDJSON form (POST /v1/accounts/import-ndjson)
    ndjson_chunk_rows: int = Field(
        default=1000, ge=1, le=10000, description="Rows per unit of work of an NDJSON import"
    )
    ndjson_max_line_bytes: int = Field(
        default=64 * 1024, ge=1024, description="A longer NDJSON line is rejected unread"
    )
    ndjson_max_reported_rejections: int = Field(
        default=10000, ge=0, description="Rejected lines listed in the answer (all are counted)"
    )

    # CASE-FEEDBACK, pushing the change feed to the bank (off unless a URL is set)
    feed_push_url: str | None = Field(
        default=None, description="The bank's endpoint that receives change batches"
    )
    feed_push_target: str = Field(
        default="bank", min_length=1, max_length=64, description="Name of the cursor row"
    )
    feed_push_bank_id: str | None = Field(
        default=None, description="Push only this bank's changes (None: every bank's)"
    )
    feed_push_batch: int = Field(default=500, ge=1, le=10000)
    feed_push_poll_seconds: float = Field(default=1.0, gt=0)
    feed_push_max_backoff_seconds: float = Field(default=60.0, gt=0)
    feed_push_timeout_seconds: float = Field(default=10.0, gt=0)
    feed_push_gap_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a hole in the change sequence may be an uncommitted write "
        "before it is taken for a rolled-back one and passed",
    )
    feed_push_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 secret (>= 32 bytes) signing every push"
    )
    feed_push_key_id: str = "case-feed"

    @model_validator(mode="after")
    def _push_is_signed(self) -> Self:
        if self.feed_push_url:
            secret = self.feed_push_secret.get_secret_value() if self.feed_push_secret else ""
            if len(secret.encode()) < 32:
                raise ValueError("feed_push_url needs feed_push_secret of at least 32 bytes")
        return self
