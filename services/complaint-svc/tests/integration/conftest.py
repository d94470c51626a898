from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from collect_common.testing.apps import offline_settings, service_client
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
        token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(
            "handler-1", [Role.COMPLAINT]
        )
        async with service_client(
            create_app,
            offline_settings(Settings, pg_url),
            clock,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            yield client

    return start


@pytest.fixture
async def api(start_api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with start_api() as client:
        yield client
