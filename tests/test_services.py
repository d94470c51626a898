"""Each of the four services is a working app: health, readiness, metrics, auth, migrations."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import inspect

from collect_common.db import create_engine
from collect_common.migrations import alembic_config, upgrade
from collect_common.settings import DEV_API_KEYS

SERVICES = ["case", "contact", "complaint", "qa"]
OPS_KEY = DEV_API_KEYS["ops-dashboard"][1]
BANK_KEY = DEV_API_KEYS["bank-core"][1]


def _app(name: str, tmp_path: Path):
    settings_mod = importlib.import_module(f"{name}_svc.settings")
    main = importlib.import_module(f"{name}_svc.main")
    settings = settings_mod.Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/{name}.db",
        kafka_bootstrap_servers="127.0.0.1:1",
        relay_enabled=False,
        consumer_enabled=False,
        log_json=False,
    )
    return main.create_app(settings)


@pytest.mark.parametrize("name", SERVICES)
async def test_service_starts_migrated_and_answers_health_readiness_metrics(
    name: str, tmp_path: Path
) -> None:
    app = _app(name, tmp_path)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c,
    ):
        assert (await c.get("/healthz")).json() == {"status": "ok", "service": f"{name}-svc"}
        ready = (await c.get("/readyz")).json()
        assert ready["checks"]["database"] == "up"
        info = await c.get("/v1/service-info", headers={"X-API-Key": OPS_KEY})
        assert info.status_code == 200 and info.json()["relay"] is None
        denied = await c.get("/v1/service-info", headers={"X-API-Key": BANK_KEY})
        assert denied.status_code == 403
        metrics = (await c.get("/metrics")).text
        assert f'http_requests_total{{method="GET",route="/healthz",service="{name}-svc"' in metrics
        assert (await c.get("/openapi.json")).json()["info"]["title"] == f"{name}-svc"
    # migrations ran at start: the platform tables exist in the service's own database
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/{name}.db")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    assert {"outbox", "processed_events", "alembic_version"} <= tables


@pytest.mark.postgres
@pytest.mark.parametrize("name", SERVICES)
async def test_alembic_history_upgrades_and_downgrades_on_postgresql(
    name: str, pg_url: str
) -> None:
    settings_mod = importlib.import_module(f"{name}_svc.settings")
    migrations = settings_mod.MIGRATIONS
    await upgrade(migrations, pg_url)
    engine = create_engine(pg_url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"outbox", "processed_events"} <= tables
    if name == "contact":
        assert "webhook_deliveries" in tables
    await asyncio.to_thread(command.downgrade, alembic_config(migrations, pg_url), "base")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    assert tables <= {"alembic_version"}


@pytest.mark.postgres
@pytest.mark.parametrize("name", SERVICES)
async def test_migrated_schema_matches_the_service_tables(name: str, pg_url: str) -> None:
    """Migrations are written by hand; the tables the code uses must be what they build."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    settings_mod = importlib.import_module(f"{name}_svc.settings")
    tables_mod = importlib.import_module(f"{name}_svc.adapters.tables")
    await upgrade(settings_mod.MIGRATIONS, pg_url)
    engine = create_engine(pg_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), tables_mod.metadata
            )
        )
    await engine.dispose()
    assert diff == []
