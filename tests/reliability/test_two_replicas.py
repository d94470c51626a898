"""Two replicas of each service, as real processes: case-, contact-, complaint- and qa-svc
each run as two processes on one database of their own and in one consumer group, on a
broker and a PostgreSQL cluster of the test's own, with one shared clock. The load is
split over both replicas of each service, and still:

- case-svc: the same batch of accounts imported through both replicas at once gives each
  contract one case and one ``case.imported.v1``; every bucket timer that the moved clock
  makes due fires once (CASE-BUCKET);
- contact-svc: concurrent call decisions beyond the daily cap, sent to both replicas at
  once, allow exactly the cap per debtor (CALL-DAILY-CAP), and the attempts agree;
- qa-svc: calls that breach the call-frequency window (QA-REALTIME), reported through
  both contact-svc replicas and consumed by both qa-svc replicas, raise one alert each;
- complaint-svc: tickets filed through both replicas have each due SLA timer fired once
  (COMP-SLA), one warning or breach event each.

Both replicas take part: each answers its share of the requests, each consumer holds
partitions of its group before the load starts and applies events, each scheduler fires
a share of the timers (``timers_fired_total`` of each process; their sum is the number
of timers due, so none was fired twice).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from reliability_kit import (
    BANK,
    DIALER,
    account,
    count,
    daytime_clock,
    event_ids_by_type,
    group_shared,
    metric_total,
    new_database,
    outbox_ids_by_type,
    person,
    replicas,
    rows,
    signed_call,
)

from collect_common.clock import OffsetFile, OffsetFileClock
from collect_common.security.auth import Role
from collect_common.testing.infra import LocalKafka, LocalPostgres
from collect_common.testing.probe import wait_until
from collect_common.testing.processes import ServiceProcess
from contact_svc.domain.policy import ContactPolicy  # type: ignore[import-untyped]
from qa_svc.domain.policy import QaPolicy  # type: ignore[import-untyped]

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

SERVICES = ("case", "contact", "complaint", "qa")
SHARED = 50  # accounts sent to both case-svc replicas at once
OWN = 50  # accounts sent to one case-svc replica only, for each replica
CONTRACTS = SHARED + 2 * OWN  # 150: their bucket timers need two scheduler batches (100)
CAPPED_DEBTORS = 6  # debtors whose call decisions go over the daily cap
EXTRA_DECISIONS = 4  # decisions asked per debtor beyond the cap
QA_DEBTORS = 6  # debtors called too often for qa-svc's frequency window
TICKETS = 50  # x 3 SLA timers due: two scheduler batches
CAP: int = ContactPolicy().daily_call_cap  # CALL-DAILY-CAP in force (no policy file)
WINDOW_LIMIT: int = QaPolicy().max_calls_per_window  # QA-REALTIME in force (no policy file)
CALLS: int = WINDOW_LIMIT + 2  # per qa debtor: the window is breached, by two calls
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 31 days past due (overdue since 2027-02-10): every case's bucket moves from M1 to M2
BUCKET_DAY = datetime(2027, 3, 13, 10, 0, tzinfo=SHANGHAI)
SLA_EVENTS_BY_TICKET = (
    "SELECT key, count(*) FROM outbox "
    "WHERE event_type IN ('complaint.sla_warning.v1', 'complaint.sla_breached.v1') GROUP BY key"
)
DUE_BY_TICKET = (
    "SELECT subject, count(*) FROM timers WHERE kind = 'complaint.sla' AND due_at <= %s "
    "GROUP BY subject"
)
BUCKETS_DUE = "SELECT count(*) FROM timers WHERE kind = 'case.bucket' AND due_at <= %s"
FIRED = "SELECT count(*) FROM timers WHERE kind = %s AND state = 'fired'"
BY_KEY = "SELECT key, count(*) FROM outbox WHERE event_type = %s GROUP BY key"
PER_DEBTOR = "SELECT debtor_id, count(*) FROM {} GROUP BY debtor_id"
UNPUBLISHED = "SELECT count(*) FROM outbox WHERE published_at IS NULL"


@dataclass
class Pairs:
    """The running pairs: each service's two processes and database, the shared clock."""

    procs: dict[str, list[ServiceProcess]]
    dbs: dict[str, str]
    clock_file: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    figures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock = OffsetFileClock(self.clock_file)
        self.rng = random.Random(self.run)

    @asynccontextmanager
    async def clients(
        self, name: str, headers: dict[str, str]
    ) -> AsyncIterator[list[httpx.AsyncClient]]:
        """An HTTP client for each replica of ``name``."""
        http = [
            httpx.AsyncClient(base_url=p.url, headers=headers, timeout=60) for p in self.procs[name]
        ]
        try:
            yield http
        finally:
            for client in http:
                await client.aclose()

    async def settled(self, condition: Callable[[], Awaitable[bool]], what: str, name: str) -> None:
        """Wait for ``condition``; on a time-out, fail with the replicas' logs."""
        procs = self.procs[name] if name else [p for ps in self.procs.values() for p in ps]
        try:
            await wait_until(condition, timeout=90, what=what)
        except TimeoutError as exc:
            logs = "\n".join(f"== {p.log_path}\n{p.log_tail(30)}" for p in procs)
            raise AssertionError(f"{exc}\n{logs}") from None

    async def per_replica(self, name: str, sample: str, **labels: str) -> list[int]:
        """A counter of ``/metrics`` as each replica of ``name`` counted it."""
        return [int(await metric_total(p.url, sample, **labels)) for p in self.procs[name]]


async def import_through_both(pairs: Pairs) -> list[str]:
    """The same batch sent to both case-svc replicas at once, and a batch to each: one case
    and one ``case.imported.v1`` per contract. Returns the case ids."""
    shared = [account(pairs.run, i, pairs.rng) for i in range(SHARED)]
    own = [[account(pairs.run, 1000 * (n + 1) + i, pairs.rng) for i in range(OWN)] for n in (0, 1)]
    async with pairs.clients("case", BANK) as case:
        answers = await asyncio.gather(
            case[0].post("/v1/accounts/import", json={"accounts": shared}),
            case[1].post("/v1/accounts/import", json={"accounts": shared}),
            case[0].post("/v1/accounts/import", json={"accounts": own[0]}),
            case[1].post("/v1/accounts/import", json={"accounts": own[1]}),
        )
    for r in answers:
        assert r.status_code == 200, r.text
    first, second, own_first, own_second = (r.json() for r in answers)
    # the shared batch: each row created by one replica and found unchanged by the other
    assert first["created"] + second["created"] == SHARED, (first, second)
    assert first["unchanged"] + second["unchanged"] == SHARED, (first, second)
    assert first["updated"] == second["updated"] == 0
    assert first["rejected"] == second["rejected"] == 0
    ids_first = {row["contract_no"]: row["case_id"] for row in first["rows"]}
    ids_second = {row["contract_no"]: row["case_id"] for row in second["rows"]}
    assert ids_first == ids_second  # the same case for each contract, whoever answered
    assert own_first["created"] == own_second["created"] == OWN
    case_of = {
        **ids_first,
        **{row["contract_no"]: row["case_id"] for row in own_first["rows"]},
        **{row["contract_no"]: row["case_id"] for row in own_second["rows"]},
    }
    db = pairs.dbs["case"]
    assert len(case_of) == len(set(case_of.values())) == CONTRACTS
    assert count(db, "SELECT count(*) FROM cases") == CONTRACTS
    assert count(db, "SELECT count(DISTINCT contract_no) FROM cases") == CONTRACTS
    imported = dict(rows(db, BY_KEY, "case.imported.v1"))
    assert imported == dict.fromkeys(case_of.values(), 1)  # one event per case
    pairs.figures.append(
        f"case-svc: the shared batch of {SHARED} created {first['created']}/"
        f"{second['created']} by replica 1/2; {CONTRACTS} cases, one case.imported.v1 each"
    )
    return sorted(case_of.values())


async def decisions_beyond_the_cap(
    pairs: Pairs, contact: list[httpx.AsyncClient], case_of: dict[str, str]
) -> None:
    """More concurrent call decisions than the cap for each debtor, spread over both
    contact-svc replicas: the cap allowed per debtor, never more (CALL-DAILY-CAP)."""
    asks = [
        (debtor, (i + k) % 2)
        for i, debtor in enumerate(sorted(case_of))
        for k in range(CAP + EXTRA_DECISIONS)
    ]
    pairs.rng.shuffle(asks)
    decided = await asyncio.gather(
        *(
            contact[replica].post(
                "/v1/contact-decisions", json={"case_id": case_of[debtor], "channel": "call"}
            )
            for debtor, replica in asks
        )
    )
    allowed: Counter[str] = Counter()
    allowed_by = [0, 0]
    for (debtor, replica), r in zip(asks, decided, strict=True):
        assert r.status_code == 200, r.text
        answer = r.json()
        if answer["allowed"]:
            allowed[debtor] += 1
            allowed_by[replica] += 1
        else:
            assert [d["rule"] for d in answer["denials"]] == ["CALL-DAILY-CAP"], answer
    assert allowed == dict.fromkeys(case_of, CAP)  # the cap, never more, per debtor
    db = pairs.dbs["contact"]
    assert dict(rows(db, PER_DEBTOR.format("contact_attempts"))) == dict.fromkeys(case_of, CAP)
    assert dict(rows(db, BY_KEY, "contact.attempted.v1")) == dict.fromkeys(case_of, CAP)
    denied = dict(rows(db, PER_DEBTOR.format("contact_denials")))
    assert denied == dict.fromkeys(case_of, EXTRA_DECISIONS)
    pairs.figures.append(
        f"contact-svc: {len(asks)} concurrent decisions for {len(case_of)} debtors "
        f"(cap {CAP}): {sum(allowed.values())} allowed (by replica 1/2 {allowed_by[0]}/"
        f"{allowed_by[1]}), {sum(denied.values())} denied"
    )


async def calls_breaching_the_window(
    pairs: Pairs, contact: list[httpx.AsyncClient], case_of: dict[str, str]
) -> None:
    """More calls per debtor than qa-svc's frequency window allows, reported by the dialer
    through both contact-svc replicas: each breaching debtor gets one alert (QA-REALTIME)."""

    async def call_ended(debtor: str, k: int) -> None:
        now = pairs.clock.now()
        payload = {
            "delivery_id": f"dlv-{pairs.run}-{debtor}-{k}",
            "event": "ended",
            "call_id": f"call-{pairs.run}-{debtor}-{k}"[:64],
            "case_id": case_of[debtor],
            "debtor_id": debtor,
            "agent_id": f"agent-{pairs.run}",
            "at": now.isoformat(),
            "duration_seconds": 45,
            "disposition": "answered",
            "recording_uri": f"s3://recordings/{pairs.run}/{debtor}/{k}.ogg",
        }
        raw, headers = signed_call(payload, now)
        r = await contact[k % 2].post("/v1/webhooks/dialer/calls", content=raw, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["duplicate"] is False, r.json()

    await asyncio.gather(*(call_ended(d, k) for d in case_of for k in range(CALLS)))


async def alerts_once(pairs: Pairs, capped: list[str], called: list[str]) -> None:
    db = pairs.dbs["qa"]
    contacts = len(capped) * CAP + len(called) * CALLS

    async def recorded() -> bool:
        return count(db, "SELECT count(*) FROM contact_events") >= contacts

    await pairs.settled(recorded, "qa-svc's records of every attempt", "qa")
    assert count(db, "SELECT count(*) FROM contact_events") == contacts
    alerts = rows(db, "SELECT kind, debtor_id FROM alerts")
    # one alert per debtor called too often; none for the debtors kept to the cap
    assert sorted(alerts) == [("call_frequency", d) for d in sorted(called)], alerts
    raised = outbox_ids_by_type(db).get(("qa.events", "qa.alert_raised.v1"), [])
    assert len(raised) == len(set(raised)) == len(called)
    qa_applied = await pairs.per_replica("qa", "consumer_events_total", outcome="applied")
    contact_applied = await pairs.per_replica("contact", "consumer_events_total", outcome="applied")
    assert min(qa_applied) > 0, qa_applied  # both qa-svc consumers took part
    assert min(contact_applied) > 0, contact_applied  # and both contact-svc consumers
    pairs.figures.append(
        f"qa-svc: {len(called) * CALLS} calls through both contact-svc replicas (limit "
        f"{WINDOW_LIMIT} in {QaPolicy().call_window_hours} h) for {len(called)} debtors: "
        f"{len(alerts)} alerts, {len(raised)} qa.alert_raised.v1; events applied by "
        f"replica 1/2: qa-svc {qa_applied[0]}/{qa_applied[1]}, contact-svc "
        f"{contact_applied[0]}/{contact_applied[1]}"
    )


async def sla_timers_once(pairs: Pairs) -> None:
    """Tickets filed through both complaint-svc replicas; the clock moves past each
    ticket's call-back step: each due SLA timer fires once, on one replica or the other."""
    complaint = {
        "type": "attitude",
        "complainant_name": "Complainant",
        "complainant_contact": "complainant@example.com",
        "content": "The agent was rude on the phone.",
    }
    handler = person(pairs.clock_file, f"handler-{pairs.run}", Role.COMPLAINT)
    async with pairs.clients("complaint", handler) as tickets:
        filed = await asyncio.gather(
            *(
                tickets[n % 2].post(
                    "/v1/tickets", json={**complaint, "case_id": f"c-{pairs.run}-{n}"}
                )
                for n in range(TICKETS)
            )
        )
    for r in filed:
        assert r.status_code == 201, r.text
    ticket_ids = {r.json()["id"] for r in filed}
    assert len(ticket_ids) == TICKETS

    # every ticket's call-back step (10 min) passes its warnings and its breach
    OffsetFile(pairs.clock_file).advance(timedelta(minutes=11))
    db = pairs.dbs["complaint"]
    due_by_ticket = dict(rows(db, DUE_BY_TICKET, pairs.clock.now()))
    due = sum(due_by_ticket.values())
    assert set(due_by_ticket) == ticket_ids
    assert due >= 3 * TICKETS

    async def fired() -> bool:
        return count(db, FIRED, "complaint.sla") >= due

    await pairs.settled(fired, "complaint-svc's schedulers to fire", "complaint")
    assert count(db, FIRED, "complaint.sla") == due
    sla_events = dict(rows(db, SLA_EVENTS_BY_TICKET))
    assert sla_events == due_by_ticket  # each due timer's event once, per ticket
    fired_by = await pairs.per_replica("complaint", "timers_fired_total", kind="complaint.sla")
    assert sum(fired_by) == due, fired_by  # none fired twice, on one replica or across
    # which replica took which batch is the schedulers' race (printed, not asserted)
    pairs.figures.append(
        f"complaint-svc: {TICKETS} tickets, {due} SLA timers due, fired by replica 1/2 "
        f"{fired_by[0]}/{fired_by[1]}; {sum(sla_events.values())} warning/breach events"
    )


async def bucket_timers_once(pairs: Pairs, case_ids: list[str]) -> None:
    """The clock moves to the cases' 31st day past due: each case's bucket timer fires
    once, on one replica or the other, and the case moves from M1 to M2 once."""
    db = pairs.dbs["case"]
    OffsetFile(pairs.clock_file).write((BUCKET_DAY - datetime.now(UTC)).total_seconds())
    assert count(db, BUCKETS_DUE, pairs.clock.now()) == CONTRACTS

    async def fired() -> bool:
        return count(db, BUCKETS_DUE, pairs.clock.now()) == 0

    await pairs.settled(fired, "case-svc's schedulers to fire", "case")
    # each fired once, and waits for the debtor's next midnight (CASE-BUCKET)
    pending = rows(db, "SELECT due_at, state FROM timers WHERE kind = 'case.bucket'")
    assert len(pending) == CONTRACTS
    next_midnight = datetime(2027, 3, 14, tzinfo=SHANGHAI)
    assert set(pending) == {(next_midnight, "scheduled")}
    changed = dict(rows(db, BY_KEY, "case.bucket_changed.v1"))
    assert changed == dict.fromkeys(case_ids, 1)  # M1 -> M2, once per case
    fired_by = await pairs.per_replica("case", "timers_fired_total", kind="case.bucket")
    assert sum(fired_by) == CONTRACTS, fired_by  # none fired twice
    # which replica took which batch is the schedulers' race (printed, not asserted)
    pairs.figures.append(
        f"case-svc: {CONTRACTS} bucket timers due, fired by replica 1/2 "
        f"{fired_by[0]}/{fired_by[1]}; {len(changed)} case.bucket_changed.v1, one per case"
    )


async def test_two_replicas_of_each_service_share_the_load_and_nothing_happens_twice(
    restartable_kafka: LocalKafka, restartable_postgres: LocalPostgres, tmp_path: Path
) -> None:
    started = time.monotonic()
    clock_file = daytime_clock(tmp_path)
    bootstrap = restartable_kafka.bootstrap
    dbs = {name: new_database(restartable_postgres.url, name) for name in SERVICES}
    env = {"SCHEDULER_POLL_SECONDS": "0.2"}
    pairs = Pairs(
        procs={
            name: replicas(name, dbs[name], bootstrap, tmp_path, clock_file, env=env)
            for name in SERVICES
        },
        dbs=dbs,
        clock_file=clock_file,
    )
    procs = pairs.procs
    try:
        # the first replica of each service migrates its database; then the second joins
        for n in (0, 1):
            await asyncio.gather(*(asyncio.to_thread(procs[s][n].start) for s in SERVICES))

        async def groups_shared() -> bool:
            return all(group_shared(procs[name]) for name in SERVICES)

        # each consumer group has rebalanced over its two members before the load starts
        await pairs.settled(groups_shared, "each group's partitions to be split", "")
        pairs.figures.append(
            f"8 processes up, each group split over its two members, after "
            f"{time.monotonic() - started:.0f}s"
        )

        case_ids = await import_through_both(pairs)

        async def read_model() -> bool:
            return count(dbs["contact"], "SELECT count(*) FROM contact_cases") == CONTRACTS

        await pairs.settled(read_model, "contact-svc's read model of the cases", "contact")
        debtor_of = dict(rows(dbs["case"], "SELECT id, debtor_id FROM cases"))
        case_of: dict[str, str] = {}  # a debtor's case: one case per debtor
        for case_id in case_ids:
            case_of.setdefault(debtor_of[case_id], case_id)
        debtors = sorted(case_of)
        assert len(debtors) >= CAPPED_DEBTORS + QA_DEBTORS
        capped = debtors[:CAPPED_DEBTORS]
        called = debtors[CAPPED_DEBTORS : CAPPED_DEBTORS + QA_DEBTORS]
        async with pairs.clients("contact", DIALER) as contact:
            await decisions_beyond_the_cap(pairs, contact, {d: case_of[d] for d in capped})
            await calls_breaching_the_window(pairs, contact, {d: case_of[d] for d in called})
        await alerts_once(pairs, capped, called)
        await sla_timers_once(pairs)
        await bucket_timers_once(pairs, case_ids)

        # every case.imported.v1 recorded reached the broker, through one relay or the other
        async def drained() -> bool:
            return all(count(dbs[name], UNPUBLISHED) == 0 for name in SERVICES)

        await pairs.settled(drained, "every outbox to drain", "")
        on_topic = await event_ids_by_type(bootstrap, "case.events")
        recorded = outbox_ids_by_type(dbs["case"])["case.events", "case.imported.v1"]
        assert set(on_topic.get("case.imported.v1", [])) == set(recorded)
        published = {
            name: await pairs.per_replica(name, "outbox_published_total") for name in SERVICES
        }
        pairs.figures.append(
            "events published by replica 1/2 (one relay per database holds the lock): "
            + ", ".join(f"{name}-svc {n[0]}/{n[1]}" for name, n in published.items())
            + f"; whole test {time.monotonic() - started:.0f}s"
        )
        print("\n" + "\n".join(pairs.figures))
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for ps in procs.values() for p in ps))
