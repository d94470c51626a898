"""Settings of case-svc: the common ones, plus what this service adds."""

from pathlib import Path

from collect_common.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class Settings(ServiceSettings):
    service_name: str = "case-svc"
    migrations_dir: Path = MIGRATIONS
