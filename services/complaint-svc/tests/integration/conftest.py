from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from complaint_svc.main import create_app
from complaint_svc.settings import Settings

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)

Api = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def start_api(pg_url: str, clock: FrozenClock) -> Api:
    """Starts the service (a new app each time, one database): the scheduler does not
    poll on its own; tests call ``app.state.runtime.scheduler.fire_due()``."""

    @asynccontextmanager
    async def start() -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(
            database_url=pg_url,
            kafka_bootstrap_servers="127.0.0.1:1",
            relay_enabled=False,
            consumer_enabled=False,
            scheduler_enabled=False,
            log_json=False,
        )
        app = create_app(settings, clock)
        token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(
            "handler-1", [Role.COMPLAINT]
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://complaint-svc",
                headers={"Authorization": f"Bearer {token}"},
            ) as client,
        ):
            client.app = app  # type: ignore[attr-defined]
            yield client

    return start


@pytest.fixture
async def api(start_api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with start_api() as client:
        yield client
