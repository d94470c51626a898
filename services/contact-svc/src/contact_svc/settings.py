"""Settings of contact-svc: the common ones, plus what this service adds."""

from pathlib import Path

from pydantic import Field

from collect_common.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class Settings(ServiceSettings):
    service_name: str = "contact-svc"
    migrations_dir: Path = MIGRATIONS
    policy_file: Path | None = Field(
        default=None,
        description="TOML/JSON PolicyBook of ContactPolicy versions per bank contract "
        "(CALL-QUIET, CALL-DAILY-CAP, SMS-WEEKLY-CAP); none: the defaults",
    )
    consumer_group: str | None = Field(
        default=None, description="Kafka consumer group of the read model; none: the service name"
    )
