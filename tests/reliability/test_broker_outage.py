"""Kafka goes away under load: case-svc keeps taking the bank's intake (the outbox absorbs
it); when the broker is back the outbox drains, contact-svc's read model catches up (a
decision about a case imported during the outage becomes allowed), and every event the
outbox recorded is on the topic (nothing lost)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_kit import (
    BANK,
    DIALER,
    account,
    column,
    count,
    daytime_clock,
    event_ids_on_topic,
    new_database,
    service,
)

from collect_common.testing.infra import LocalKafka
from collect_common.testing.probe import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

OUTAGE_SECONDS = 60.0  # a minute, as the issue asks
BATCH = 50  # accounts per intake call during the outage
PACE_SECONDS = 0.2  # one call every 0.2 s: 250 accounts a second, 15,000 in the minute


async def _decision(contact: httpx.AsyncClient, case_id: str) -> dict[str, Any] | None:
    r = await contact.post("/v1/contact-decisions", json={"case_id": case_id, "channel": "call"})
    if r.status_code == 404:
        return None  # contact-svc has not applied case.imported.v1 yet
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_intake_goes_on_while_kafka_is_down_and_nothing_is_lost_when_it_is_back(
    restartable_kafka: LocalKafka, postgres_server: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    rng = random.Random(run)
    clock = daytime_clock(tmp_path)
    case_db = new_database(postgres_server, "case")
    contact_db = new_database(postgres_server, "contact")
    bootstrap = restartable_kafka.bootstrap
    procs = [
        service("case", case_db, bootstrap, tmp_path, clock),
        service("contact", contact_db, bootstrap, tmp_path, clock),
    ]
    case_proc, contact_proc = procs
    try:
        for p in procs:
            p.start()
        async with (
            httpx.AsyncClient(base_url=case_proc.url, headers=BANK, timeout=30) as case,
            httpx.AsyncClient(base_url=contact_proc.url, headers=DIALER, timeout=30) as contact,
        ):
            r = await case.post("/v1/accounts/import", json={"accounts": [account(run, 0, rng)]})
            assert r.status_code == 200, r.text
            first = r.json()["rows"][0]["case_id"]

            async def first_known() -> bool:
                return await _decision(contact, first) is not None

            await wait_until(first_known, timeout=60, what="contact-svc to know the first case")

            await restartable_kafka.astop()
            down_at = time.monotonic()
            imported: list[str] = []
            n = 1
            while time.monotonic() - down_at < OUTAGE_SECONDS:
                # a steady load (the bank's batches at a fixed pace), not a flood: what is
                # accepted during the outage does not depend on how busy the machine is
                pause = down_at + (n // BATCH) * PACE_SECONDS - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                accounts = [account(run, n + i, rng) for i in range(BATCH)]
                n += BATCH
                r = await case.post("/v1/accounts/import", json={"accounts": accounts})
                assert r.status_code == 200, (r.text, case_proc.log_tail())
                assert r.json()["created"] == BATCH
                imported += [row["case_id"] for row in r.json()["rows"]]
            ready = (await case.get("/readyz")).json()
            assert ready["status"] == "degraded" and ready["checks"]["broker"] == "down"
            backlog = count(case_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            assert backlog >= len(imported)  # held back, not dropped

            restart_at = time.monotonic()
            await restartable_kafka.astart()
            back_at = time.monotonic()

            async def drained() -> bool:
                return count(case_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

            await wait_until(drained, timeout=60, what="case-svc's outbox to drain")
            drain_seconds = time.monotonic() - back_at

            async def last_allowed() -> bool:
                answer = await _decision(contact, imported[-1])
                return answer is not None and answer["allowed"] is True

            await wait_until(last_allowed, timeout=120, what="a decision on the last case")

            async def caught_up() -> bool:
                return count(contact_db, "SELECT count(*) FROM contact_cases") == len(imported) + 1

            await wait_until(caught_up, timeout=120, what="contact-svc's read model to catch up")

        outbox_ids = column(
            case_db, "SELECT event_id FROM outbox WHERE event_type = 'case.imported.v1'"
        )
        assert len(outbox_ids) == len(imported) + 1
        on_topic = await event_ids_on_topic(bootstrap, "case.events", "case.imported.v1")
        assert set(on_topic) == set(outbox_ids)  # every recorded event reached the broker
        print(  # figures for docs/reliability.md (shown with -s)
            f"\noutage {OUTAGE_SECONDS:.0f}s: {len(imported)} accounts imported while down; "
            f"broker restart took {back_at - restart_at:.1f}s; "
            f"outbox drained {drain_seconds:.1f}s after the broker was back; "
            f"{len(on_topic)} messages for {len(outbox_ids)} outbox rows"
        )
    finally:
        for p in procs:
            p.stop()
