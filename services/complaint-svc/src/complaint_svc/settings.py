"""Settings of complaint-svc: the common ones, plus what this service adds."""

from pathlib import Path

from pydantic import Field

from collect_common.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class Settings(ServiceSettings):
    service_name: str = "complaint-svc"
    migrations_dir: Path = MIGRATIONS
    policy_file: Path | None = Field(
        default=None,
        description="TOML/JSON PolicyBook of ComplaintPolicy versions per bank contract "
        "(COMP-SLA-*, COMP-CHANNELS); none: the defaults",
    )
    policy_contract: str = Field(
        default="default", description="Which contract's policy version this deployment uses"
    )
    consumer_group: str | None = Field(
        default=None,
        description="Kafka consumer group of the event handlers; none: the service name",
    )
