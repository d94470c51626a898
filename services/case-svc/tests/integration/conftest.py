from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from case_svc.main import create_app
from case_svc.settings import Settings
from collect_common.clock import FrozenClock
from collect_common.settings import DEV_API_KEYS
from collect_common.testing.apps import offline_settings, service_client

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def case_api(pg_url: str, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = offline_settings(Settings, pg_url)
    async with service_client(create_app, settings, clock, headers=BANK) as client:
        yield client
