"""Alembic glue shared by every service's ``migrations/env.py``.

Each service keeps its own history under ``services/<name>-svc/migrations``;
``env.py`` there is two lines calling :func:`run_env` with the service's metadata.
Migrations run before the service starts (``alembic upgrade head`` in deployment,
:func:`upgrade` at start in development); the services never call ``create_all``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config


def alembic_config(script_location: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_sync(script_location: Path, url: str, revision: str = "head") -> None:
    _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(script_location, url), revision)


async def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    """Upgrade from inside a running event loop (env.py starts its own loop in a thread)."""
    await asyncio.to_thread(upgrade_sync, script_location, url, revision)


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def run_env(metadata: MetaData) -> None:
    """The body of a service's ``migrations/env.py``."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or ""
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    is_sqlite = url.startswith("sqlite")

    def configure(connection: Connection | None) -> None:
        context.configure(
            connection=connection,
            url=None if connection is not None else url,
            target_metadata=metadata,
            render_as_batch=is_sqlite,  # SQLite alters tables by copy
            compare_type=True,
        )

    if context.is_offline_mode():
        configure(None)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config(
            {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
        )
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
