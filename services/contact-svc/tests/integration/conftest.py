from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from collect_common.bus.consumer import HandlerContext
from collect_common.clock import FrozenClock
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.types import CaseImported
from collect_common.settings import DEV_API_KEYS
from collect_common.testing.apps import offline_settings, service_client
from contact_svc.entrypoints.consumer import HANDLERS
from contact_svc.main import create_app
from contact_svc.settings import Settings

DIALER = {"X-API-Key": DEV_API_KEYS["dialer"][1]}
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai

Apply = Callable[[Event], Awaitable[None]]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def contact_api(pg_url: str, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = offline_settings(Settings, pg_url)
    async with service_client(create_app, settings, clock, headers=DIALER) as client:
        yield client


@pytest.fixture
def apply(contact_api: httpx.AsyncClient, clock: FrozenClock) -> Apply:
    """Apply one consumed event through the service's own handler, as the consumer does."""
    runtime = contact_api.app.state.runtime  # type: ignore[attr-defined]

    async def _apply(event: Event) -> None:
        envelope = wrap(event, source="/test", time=clock.now())
        async with runtime.uow() as uow:
            ctx = HandlerContext(uow=uow, envelope=envelope, record=None)  # type: ignore[arg-type]
            await HANDLERS[event.type_name](event, ctx)
            await uow.commit()

    return _apply


def imported(
    case_id: str, debtor_id: str, tz: str = "Asia/Shanghai", bank_id: str = "bank-a"
) -> CaseImported:
    return CaseImported(
        case_id=case_id,
        debtor_id=debtor_id,
        bank_id=bank_id,
        overdue_total=Decimal("5000.00"),
        overdue_since=datetime(2026, 8, 1).date(),
        bucket="M3",
        debtor_timezone=tz,
    )
