from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from case_svc.main import create_app
from case_svc.settings import Settings
from collect_common.clock import FrozenClock
from collect_common.settings import DEV_API_KEYS

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def case_api(pg_url: str, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=pg_url,
        kafka_bootstrap_servers="127.0.0.1:1",
        relay_enabled=False,
        consumer_enabled=False,
        log_json=False,
    )
    app = create_app(settings, clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://case-svc", headers=BANK
        ) as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client
