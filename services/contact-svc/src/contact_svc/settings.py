"""Settings of contact-svc: the common ones, plus what this service adds."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from collect_common.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class Settings(ServiceSettings):
    service_name: str = "contact-svc"
    migrations_dir: Path = MIGRATIONS
    policy_file: Path | None = Field(
        default=None,
        description="TOML/JSON PolicyBook of ContactPolicy versions per bank contract "
        "(CALL-QUIET, CALL-DAILY-CAP, SMS-WEEKLY-CAP, LETTER, VISIT-TEAM); none: the defaults",
    )
    consumer_group: str | None = Field(
        default=None, description="Kafka consumer group of the read model; none: the service name"
    )
    sms_provider: Literal["file", "http"] = Field(
        default="file",
        description="Where SMS go: a JSON-lines file (local default) or the HTTP gateway",
    )
    sms_file_path: Path = Field(
        default=Path("var/sms/outbox.jsonl"), description="The file sink's JSON-lines file"
    )
    sms_http_url: str | None = Field(
        default=None, description="The SMS gateway's send URL (sms_provider=http)"
    )
    sms_http_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token of the SMS gateway"
    )
    sms_http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    decision_batch_max: int = Field(
        default=256,
        ge=1,
        le=5000,
        description="Most pre-dial decisions taken in one transaction (group commit)",
    )
    decision_batch_linger_ms: float = Field(
        default=0.0,
        ge=0,
        le=50,
        description="Under load (asks already waiting), how long a decision batch waits for "
        "more asks before it starts; a lone ask never waits",
    )
    decision_batch_workers: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Decision batches in flight at once, each in its own transaction",
    )
