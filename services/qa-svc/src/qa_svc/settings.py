"""Settings of qa-svc: the common ones, plus what this service adds."""

from pathlib import Path

from pydantic import Field

from collect_common.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class Settings(ServiceSettings):
    service_name: str = "qa-svc"
    migrations_dir: Path = MIGRATIONS
    policy_file: Path | None = Field(
        default=None,
        description="TOML/JSON PolicyBook of QaPolicy versions per bank contract "
        "(QA-REALTIME, QA-QUIET); none: the defaults",
    )
    policy_contract: str = Field(
        default="default", description="Which contract's policy version this deployment uses"
    )
    consumer_max_batch: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="Contact events the live rules evaluate in one transaction: one read of the "
        "debtors' window state and bulk writes per batch, so larger batches cost less per event",
    )
