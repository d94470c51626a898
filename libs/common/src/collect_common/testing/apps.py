"""A service's app, started in-process for tests, with an HTTP client bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from collect_common.clock import Clock
from collect_common.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def offline_settings(settings_type: type[S], database_url: str, **overrides: Any) -> S:
    """Settings for a test app: its own database, no broker, no background tasks.

    Events stay in the outbox and timers fire only when the test calls
    ``app.state.runtime.scheduler.fire_due()`` after moving its clock.
    """
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": "127.0.0.1:1",  # nothing listens there
        "relay_enabled": False,
        "consumer_enabled": False,
        "scheduler_enabled": False,
        "log_json": False,
    }
    values.update(overrides)
    return settings_type(**values)


@asynccontextmanager
async def service_client(
    create_app: Callable[[Any, Clock], FastAPI],
    settings: ServiceSettings,
    clock: Clock,
    *,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (migrations, lifespan) and yield a client; ``client.app`` is the app."""
    app = create_app(settings, clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=f"http://{settings.service_name}",
            headers=dict(headers or {}),
        ) as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client
