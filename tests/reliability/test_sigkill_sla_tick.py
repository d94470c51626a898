"""SIGKILL in the middle of an SLA tick: complaint-svc is killed while its scheduler fires
a large batch of due SLA timers; after the restart every due timer has fired exactly once
(one warning or breach event each, none twice, none lost)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from reliability_kit import count, daytime_clock, new_database, service

from collect_common.clock import OffsetFile, OffsetFileClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from collect_common.testing.probe import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.e2e]

TICKETS = 1500
SLA_EVENTS = (
    "SELECT count(*) FROM outbox "
    "WHERE event_type IN ('complaint.sla_warning.v1', 'complaint.sla_breached.v1')"
)
UNEVEN = (  # tickets whose SLA events are not exactly their two warnings and their breach
    "SELECT count(*) FROM (SELECT key FROM outbox "
    "WHERE event_type IN ('complaint.sla_warning.v1', 'complaint.sla_breached.v1') "
    "GROUP BY key HAVING count(*) <> 3) AS t"
)
DUE = "SELECT count(*) FROM timers WHERE kind = 'complaint.sla' AND due_at <= %s"


async def test_complaint_svc_killed_mid_tick_fires_every_due_timer_once_after_restart(
    postgres_server: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    clock_file = daytime_clock(tmp_path)
    clock = OffsetFileClock(clock_file)
    db = new_database(postgres_server, "sla_kill")
    proc = service("complaint", db, kafka_bootstrap, tmp_path, clock_file)
    tokens = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock)
    complaint = {
        "type": "attitude",
        "complainant_name": "Complainant",
        "complainant_contact": "complainant@example.com",
        "content": "The agent was rude on the phone.",
    }
    proc.start()
    try:
        headers = {"Authorization": f"Bearer {tokens.issue('handler-1', [Role.COMPLAINT])}"}
        async with httpx.AsyncClient(base_url=proc.url, timeout=60, headers=headers) as http:
            sem = asyncio.Semaphore(8)

            async def file(n: int) -> None:
                async with sem:
                    r = await http.post("/v1/tickets", json={**complaint, "case_id": f"c-{n}"})
                    assert r.status_code == 201, r.text

            await asyncio.gather(*(file(n) for n in range(TICKETS)))

        # every ticket's call-back step (10 min) passes its warnings and its breach at once
        OffsetFile(clock_file).advance(timedelta(minutes=11))
        due = count(db, DUE, clock.now())
        assert due >= 3 * TICKETS  # 50 %, 75 % and breach of the call-back step, each ticket

        def fired() -> int:
            return count(db, "SELECT count(*) FROM timers WHERE state = 'fired'")

        async def mid_tick() -> bool:
            return fired() >= 300

        await wait_until(mid_tick, timeout=60, what="the scheduler to fire a few batches")
        proc.kill()  # SIGKILL in the middle of the tick
        at_kill = fired()
        assert 0 < at_kill < due, (at_kill, due)

        proc.start()

        async def all_fired() -> bool:
            return fired() >= due

        await wait_until(all_fired, timeout=120, what="every due timer to fire after restart")
        assert fired() == due
        assert count(db, SLA_EVENTS) == due
        assert count(db, UNEVEN) == 0  # per ticket: none twice, none lost
        print(f"\nkilled with {at_kill} of {due} due SLA timers fired; after restart {due} fired")
    finally:
        proc.stop()
