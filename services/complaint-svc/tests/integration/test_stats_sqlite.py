"""The reports, corrective actions and the portal's rate limit on SQLite (``make run``): the
same statements as on PostgreSQL, migrated by the same Alembic history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from collect_common.bus.consumer import HandlerContext
from collect_common.clock import FrozenClock
from collect_common.events.codec import wrap
from collect_common.events.types import CaseBucketChanged, CaseImported
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from collect_common.testing.apps import offline_settings, service_client
from complaint_svc.entrypoints.consumer import handlers
from complaint_svc.main import create_app
from complaint_svc.settings import Settings

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def lite(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = offline_settings(Settings, f"sqlite+aiosqlite:///{tmp_path / 'complaint.db'}")
    async with service_client(create_app, settings, clock) as client:
        yield client


def auth(clock: FrozenClock, role: Role) -> dict[str, str]:
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue("ops-1", [role])
    return {"Authorization": f"Bearer {token}"}


async def deliver(api: httpx.AsyncClient, event: CaseImported | CaseBucketChanged) -> None:
    app = api.app  # type: ignore[attr-defined]
    async with app.state.runtime.uow() as uow:
        ctx = HandlerContext(uow=uow, envelope=wrap(event, source="/t", time=NOW), record=None)  # type: ignore[arg-type]
        await handlers(lambda: app.state.complaint_context)[event.type_name](event, ctx)
        await uow.commit()


async def test_reports_actions_and_rate_limit_run_on_sqlite(
    lite: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await deliver(
        lite,
        CaseImported(
            case_id="case-a",
            debtor_id="d-a",
            bank_id="bank-a",
            overdue_total=Decimal("100.00"),
            overdue_since=date(2026, 10, 1),
            bucket="M1",
            debtor_timezone="Asia/Shanghai",
            region="310000",
            customer_group="retail",
            case_type="credit_card",
        ),
    )
    await deliver(
        lite,
        CaseBucketChanged(
            case_id="case-a",
            debtor_id="d-a",
            previous="M1",
            bucket="M2",
            days_past_due=31,
            as_of=date(2026, 11, 28),  # from 2026-11-27T16:00Z: before the ticket
        ),
    )
    form = {
        "type": "violation",
        "complainant_name": "王五",
        "complainant_contact": "13700000000",
        "content": "called at midnight",
        "case_id": "case-a",
    }
    r = await lite.post("/v1/tickets", json=form, headers=auth(clock, Role.COMPLAINT))
    assert r.status_code == 201, r.text
    ticket_id = r.json()["id"]
    clock.advance(timedelta(minutes=3))
    done = await lite.post(
        f"/v1/tickets/{ticket_id}/steps/contact/complete", headers=auth(clock, Role.COMPLAINT)
    )
    assert done.status_code == 200, done.text

    ops = auth(clock, Role.OPS)
    week = (await lite.get("/v1/stats/weekly?week=2026-W48", headers=ops)).json()
    assert week["total"] == 1
    assert {c["key"]: c["count"] for c in week["by_case_type"]} == {"credit_card": 1}
    trend = (await lite.get("/v1/stats/monthly?months=2&through=2026-11", headers=ops)).json()
    assert trend["totals"] == [0, 1]
    assert {s["key"]: s["counts"] for s in trend["by_bucket"]} == {"M2": [0, 1]}
    assert {s["key"]: s["counts"] for s in trend["by_region"]} == {"310000": [0, 1]}
    sla = (await lite.get("/v1/stats/sla?from=2026-11-28&to=2026-11-28", headers=ops)).json()
    assert sla["steps"][0] == {
        "step": "contact",
        "rule": "COMP-SLA-CONTACT",
        "completed": 1,
        "within_sla": 1,
        "attainment": 1.0,
        "breached": 0,
    }

    action = await lite.post(
        "/v1/corrective-actions",
        json={
            "ticket_id": ticket_id,
            "description": "review night dialing lists",
            "owner": "lead-1",
            "deadline": (clock.now() + timedelta(hours=1)).isoformat(),
        },
        headers=ops,
    )
    assert action.status_code == 201, action.text
    clock.advance(timedelta(hours=2))
    ops = auth(clock, Role.OPS)
    overdue = (await lite.get("/v1/corrective-actions?overdue=true", headers=ops)).json()
    assert [a["id"] for a in overdue["items"]] == [action.json()["id"]]

    public = {"Authorization": ""}
    statuses = [
        (await lite.post("/v1/portal/complaints", json=form, headers=public)).status_code
        for _ in range(11)
    ]
    assert statuses == [201] * 10 + [429]
    clock.advance(timedelta(minutes=1))
    assert (await lite.post("/v1/portal/complaints", json=form, headers=public)).status_code == 201
