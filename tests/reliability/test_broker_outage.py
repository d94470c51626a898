"""Kafka goes away under load and every service keeps taking writes, each outbox absorbing
its events: the bank's intake into case-svc and, beside it, once a second each, a pre-dial
decision and a signed dialer call into contact-svc, a hotline complaint into complaint-svc
and a recorded violation into qa-svc. When the broker is back every outbox drains, every
event an outbox recorded is on its topic (nothing lost), and the consumers catch up:
contact-svc's read model and complaint holds, complaint-svc's tickets for the complaints
reported in calls, qa-svc's records of the contacts made during the outage."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
    event_ids_by_type,
    new_database,
    outbox_ids_by_type,
    person,
    service,
    signed_call,
)

from collect_common.clock import OffsetFileClock
from collect_common.security.auth import Role
from collect_common.testing.infra import LocalKafka
from collect_common.testing.probe import wait_until
from collect_common.testing.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

SERVICES = ("case", "contact", "complaint", "qa")
OUTAGE_SECONDS = 60.0  # a minute, as the issue asks
BATCH = 50  # accounts per intake call during the outage
PACE_SECONDS = 0.2  # one intake call every 0.2 s: 250 accounts a second, 15,000 in the minute
SIDE_PACE_SECONDS = 1.0  # one write a second to each of the other services, beside the intake
SIDE_WRITES = int(OUTAGE_SECONDS / SIDE_PACE_SECONDS)  # on schedule: 60 of each
UNPUBLISHED = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
# What the writes during the outage make each service record in its outbox.
CAUSED = {
    "case": {"case.imported.v1"},
    "contact": {
        "contact.attempted.v1",
        "contact.call_completed.v1",
        "contact.complaint_reported.v1",
    },
    "complaint": {"complaint.opened.v1"},
    "qa": {"qa.sanction_applied.v1"},
}


@dataclass
class Outage:
    """What the services accepted while the broker was down."""

    imported: list[str]  # case ids
    decisions: int = 0
    calls: int = 0
    complaint_calls: int = 0  # calls that ended with the debtor complaining
    hotline_tickets: int = 0
    violations: int = 0


async def paced(down_at: float, every: float, write: Callable[[int], Awaitable[None]]) -> None:
    """``write(0)``, ``write(1)``, ... one every ``every`` seconds from ``down_at`` until the
    outage's minute is over: a steady load, not a flood, so what is accepted during the
    outage does not depend on how busy the machine is."""
    n = 0
    while n * every < OUTAGE_SECONDS and time.monotonic() - down_at < OUTAGE_SECONDS:
        pause = down_at + n * every - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        await write(n)
        n += 1


async def _decision(contact: httpx.AsyncClient, case_id: str) -> dict[str, Any] | None:
    r = await contact.post("/v1/contact-decisions", json={"case_id": case_id, "channel": "call"})
    if r.status_code == 404:
        return None  # contact-svc has not applied case.imported.v1 yet
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def caught_up(
    condition: Callable[[], Awaitable[bool]], what: str, proc: ServiceProcess
) -> None:
    """Wait for a consumer's visible effect; on a time-out, fail with the service's log."""
    try:
        await wait_until(condition, timeout=120, what=what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{proc.log_tail()}") from None


async def drain_seconds(database: str, since: float, name: str) -> float:
    """Seconds from ``since`` until the service's outbox has nothing left to publish."""

    async def drained() -> bool:
        return count(database, UNPUBLISHED) == 0

    await wait_until(drained, timeout=120, what=f"{name}-svc's outbox to drain")
    return time.monotonic() - since


async def test_every_service_takes_writes_while_kafka_is_down_and_nothing_is_lost_when_it_is_back(
    restartable_kafka: LocalKafka, postgres_server: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    rng = random.Random(run)
    clock_file = daytime_clock(tmp_path)
    clock = OffsetFileClock(clock_file)
    dbs = {name: new_database(postgres_server, name) for name in SERVICES}
    bootstrap = restartable_kafka.bootstrap
    procs: dict[str, ServiceProcess] = {
        name: service(name, dbs[name], bootstrap, tmp_path, clock_file) for name in SERVICES
    }
    handler = person(clock_file, f"handler-{run}", Role.COMPLAINT)
    qa_staff = person(clock_file, f"qa-{run}", Role.QA)
    agent = f"agent-{run}"
    try:
        for p in procs.values():
            p.start()
        async with (
            httpx.AsyncClient(base_url=procs["case"].url, headers=BANK, timeout=30) as case,
            httpx.AsyncClient(base_url=procs["contact"].url, headers=DIALER, timeout=30) as contact,
            httpx.AsyncClient(
                base_url=procs["complaint"].url, headers=handler, timeout=30
            ) as tickets,
            httpx.AsyncClient(base_url=procs["qa"].url, headers=qa_staff, timeout=30) as qa,
        ):
            clients = {"case": case, "contact": contact, "complaint": tickets, "qa": qa}
            r = await case.post("/v1/accounts/import", json={"accounts": [account(run, 0, rng)]})
            assert r.status_code == 200, r.text
            first = r.json()["rows"][0]["case_id"]

            async def first_known() -> bool:
                return await _decision(contact, first) is not None

            await wait_until(first_known, timeout=60, what="contact-svc to know the first case")
            answer = await _decision(contact, first)
            assert answer is not None
            debtor = answer["debtor_id"]

            await restartable_kafka.astop()
            down_at = time.monotonic()
            outage = Outage(imported=[])

            async def import_batch(k: int) -> None:
                accounts = [account(run, 1 + k * BATCH + i, rng) for i in range(BATCH)]
                r = await case.post("/v1/accounts/import", json={"accounts": accounts})
                assert r.status_code == 200, (r.text, procs["case"].log_tail())
                assert r.json()["created"] == BATCH
                outage.imported += [row["case_id"] for row in r.json()["rows"]]

            async def decide(k: int) -> None:
                body = {"case_id": first, "channel": "call", "agent_id": agent}
                r = await contact.post("/v1/contact-decisions", json=body)
                assert r.status_code == 200, (r.text, procs["contact"].log_tail())
                outage.decisions += 1

            async def call_ended(k: int) -> None:
                complained = k % 2 == 0  # every other call ends with a complaint
                payload = {
                    "delivery_id": f"dlv-{run}-{k}",
                    "event": "ended",
                    "call_id": f"call-{run}-{k}",
                    "case_id": first,
                    "debtor_id": debtor,
                    "agent_id": agent,
                    "at": clock.now().isoformat(),
                    "duration_seconds": 45,
                    "disposition": "complaint" if complained else "answered",
                    "recording_uri": f"s3://recordings/{run}/{k}.ogg",
                }
                raw, headers = signed_call(payload, clock.now())
                r = await contact.post("/v1/webhooks/dialer/calls", content=raw, headers=headers)
                assert r.status_code == 200, (r.text, procs["contact"].log_tail())
                assert r.json()["duplicate"] is False, r.json()
                outage.calls += 1
                outage.complaint_calls += complained

            async def hotline_complaint(k: int) -> None:
                body = {
                    "channel": "hotline",
                    "type": "attitude",
                    "complainant_name": "张三",
                    "complainant_contact": f"13{rng.randrange(10**9):09d}",
                    "content": "the agent was rude on the phone",
                    "case_id": first,
                }
                key = {"Idempotency-Key": f"hotline-{run}-{k}"}
                r = await tickets.post("/v1/tickets", json=body, headers=key)
                assert r.status_code == 201, (r.text, procs["complaint"].log_tail())
                outage.hotline_tickets += 1

            async def violation(k: int) -> None:
                body = {
                    "severity": "minor",
                    "rule_id": "CONTACT-CONDUCT",
                    "evidence": f"call-{run}-{k}",
                    "note": "raised voice",
                }
                r = await qa.post(f"/v1/agents/agent-{run}-{k}/violations", json=body)
                assert r.status_code == 201, (r.text, procs["qa"].log_tail())
                assert r.json()["sanction"]["sanction"] == "warning", r.json()  # QA-SANCTION
                outage.violations += 1

            async with asyncio.TaskGroup() as load:
                load.create_task(paced(down_at, PACE_SECONDS, import_batch))
                for write in (decide, call_ended, hotline_complaint, violation):
                    load.create_task(paced(down_at, SIDE_PACE_SECONDS, write))
            down_for = time.monotonic() - down_at
            side = (outage.decisions, outage.calls, outage.hotline_tickets, outage.violations)
            # each answered at the pace asked (a few seconds' lag allowed on a busy machine)
            assert min(side) >= SIDE_WRITES * 9 // 10, side

            for name, http in clients.items():
                r = await http.get("/readyz")  # still ready: the outbox takes the writes
                assert r.status_code == 200, (r.text, procs[name].log_tail())
                checks = r.json()
                assert checks["status"] == "degraded", (name, checks)
                assert checks["checks"] == {"database": "up", "broker": "down"}, (name, checks)

            backlog = {name: count(dbs[name], UNPUBLISHED) for name in SERVICES}
            # held back, not dropped: one event at least per accepted write
            assert backlog["case"] >= len(outage.imported), backlog
            assert backlog["contact"] >= outage.decisions + outage.calls, backlog
            assert backlog["complaint"] >= outage.hotline_tickets, backlog
            assert backlog["qa"] >= outage.violations, backlog

            restart_at = time.monotonic()
            await restartable_kafka.astart()
            back_at = time.monotonic()
            drains = await asyncio.gather(
                *(drain_seconds(dbs[name], back_at, name) for name in SERVICES)
            )
            drained = dict(zip(SERVICES, drains, strict=True))

            # contact-svc: the cases imported during the outage
            async def last_allowed() -> bool:
                answer = await _decision(contact, outage.imported[-1])
                return answer is not None and answer["allowed"] is True

            await caught_up(last_allowed, "a decision on the last case", procs["contact"])

            async def read_model() -> bool:
                return (
                    count(dbs["contact"], "SELECT count(*) FROM contact_cases")
                    == len(outage.imported) + 1
                )

            await caught_up(read_model, "contact-svc's read model to catch up", procs["contact"])

            # complaint-svc: a ticket for each complaint reported in a call (COMP-CHANNELS)
            from_calls = "SELECT count(*) FROM complaint_tickets WHERE channel = 'contact'"

            async def call_tickets() -> bool:
                return count(dbs["complaint"], from_calls) >= outage.complaint_calls

            await caught_up(call_tickets, "complaint-svc's tickets from calls", procs["complaint"])

            # contact-svc: a complaint hold for every ticket on the case (CONTACT-CONDUCT)
            complaints = outage.hotline_tickets + outage.complaint_calls
            holds = "SELECT count(*) FROM contact_holds WHERE kind = 'complaint' AND debtor_id = %s"

            async def held() -> bool:
                return count(dbs["contact"], holds, debtor) >= complaints

            await caught_up(held, "contact-svc's complaint holds", procs["contact"])

            # qa-svc: a contact record (QA-REALTIME's window) for each call of the outage
            outage_calls = column(
                dbs["contact"],
                "SELECT contact_id FROM calls WHERE call_id LIKE %s",
                f"call-{run}-%",
            )
            assert len(outage_calls) == outage.calls
            records = "SELECT contact_id FROM contact_events WHERE debtor_id = %s"

            async def recorded() -> bool:
                return set(outage_calls) <= set(column(dbs["qa"], records, debtor))

            await caught_up(recorded, "qa-svc's records of the calls", procs["qa"])

            for name in SERVICES:  # what the consumers emitted on the way is published too
                await drain_seconds(dbs[name], back_at, name)

        assert count(dbs["complaint"], from_calls) == outage.complaint_calls
        assert count(dbs["contact"], holds, debtor) == complaints
        # and no more records than contact-svc reported attempts with that debtor
        attempted = (
            "SELECT count(*) FROM outbox WHERE event_type = 'contact.attempted.v1' AND key = %s"
        )
        qa_records = column(dbs["qa"], records, debtor)
        assert len(qa_records) == len(set(qa_records)) == count(dbs["contact"], attempted, debtor)

        figures = []
        for name in SERVICES:
            outbox = outbox_ids_by_type(dbs[name])
            types = {event_type for _, event_type in outbox}
            assert CAUSED[name] <= types, (name, sorted(types))
            topics = {topic for topic, _ in outbox}
            on_topics = {topic: await event_ids_by_type(bootstrap, topic) for topic in topics}
            for (topic, event_type), ids in outbox.items():
                on_topic = on_topics[topic].get(event_type, [])
                # every recorded event reached the broker, and nothing else of its type did
                assert set(on_topic) == set(ids), (name, event_type, len(on_topic), len(ids))
            for topic, by_type in on_topics.items():
                assert set(by_type) == {t for tp, t in outbox if tp == topic}, (name, topic)
            messages = sum(len(ids) for by_type in on_topics.values() for ids in by_type.values())
            rows = sum(len(ids) for ids in outbox.values())
            figures.append(f"{name}-svc {messages} messages for {rows} outbox rows")

        contact_outbox = outbox_ids_by_type(dbs["contact"])
        assert len(contact_outbox["contact.events", "contact.call_completed.v1"]) == outage.calls
        reported = contact_outbox["contact.events", "contact.complaint_reported.v1"]
        assert len(reported) == outage.complaint_calls
        opened = outbox_ids_by_type(dbs["complaint"])["complaint.events", "complaint.opened.v1"]
        assert len(opened) == complaints
        sanctions = outbox_ids_by_type(dbs["qa"])["qa.events", "qa.sanction_applied.v1"]
        assert len(sanctions) == outage.violations
        imported = outbox_ids_by_type(dbs["case"])["case.events", "case.imported.v1"]
        assert len(imported) == len(outage.imported) + 1

        print(  # figures for docs/reliability.md (shown with -s)
            f"\noutage {down_for:.0f}s; accepted while down: case-svc {len(outage.imported)} "
            f"accounts ({len(outage.imported) // BATCH} imports), contact-svc "
            f"{outage.decisions} decisions + {outage.calls} call webhooks, complaint-svc "
            f"{outage.hotline_tickets} hotline tickets, qa-svc {outage.violations} violations; "
            f"outbox backlog at restart: "
            + ", ".join(f"{name}-svc {backlog[name]}" for name in SERVICES)
            + f"\nbroker restart took {back_at - restart_at:.1f}s; outbox drained after: "
            + ", ".join(f"{name}-svc {drained[name]:.1f}s" for name in SERVICES)
            + f"\nconsumers: contact-svc {len(outage.imported) + 1} cases and {complaints} "
            f"complaint holds, complaint-svc {outage.complaint_calls} tickets from calls, "
            f"qa-svc {len(qa_records)} contact records (the {outage.calls} calls among them)\n"
            + "; ".join(figures)
        )
    finally:
        for p in procs.values():
            p.stop()
