"""The platform's flows end to end: four service processes, real Kafka and PostgreSQL, one
moved clock, driven only through the HTTP APIs and signed dialer webhooks.

One platform serves the whole module (starting it is the slow part). The flows run in
file order on the platform's clock, which only moves forward: the QA week is committed
before it starts (the fixture), the flows' contacts happen during it, and the last flow
draws the week's sample after it ends and recomputes it as an auditor would.

Times: the week 2027-W09 runs Monday 2027-03-01 00:00 to 2027-03-08 00:00, Asia/Shanghai.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from demo_loader import load_demo  # scripts/demo/demo_loader.py, on the path (conftest.py)
from e2e_platform import (
    AUDITOR,
    BANK,
    DIALER,
    OPS,
    Platform,
    client,
    mobile,
    start_platform,
    stop_platform,
)
from prometheus_client.parser import text_string_to_metric_families

from collect_common.events import EventEnvelope
from collect_common.security.auth import Role
from collect_common.testing.identities import national_id
from collect_common.testing.kafka import platform_partitions, start_group_at_end
from collect_common.testing.probe import wait_until
from qa_svc.domain import sampling
from qa_svc.domain.policy import QaPolicy

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

CST = timedelta(hours=8)  # Asia/Shanghai, no daylight saving
HOUR = timedelta(hours=1)
WEEK = "2027-W09"
WEEK_STARTS = datetime(2027, 3, 1, tzinfo=UTC) - CST
WEEK_ENDS = datetime(2027, 3, 8, tzinfo=UTC) - CST
TOPICS = ("case.events", "contact.events", "complaint.events", "qa.events")
WAIT = 30.0  # seconds for an event to cross the bus and be applied


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of March 2027 given in Shanghai local time."""
    return datetime(2027, 3, day, hour, minute, tzinfo=UTC) - CST


@dataclass
class World:
    """What the flows learn from each other: the cases imported and who holds them."""

    platform: Platform
    offsets: dict[TopicPartition, int]  # where contact and complaint events began
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> case
    agents: list[str] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(uuid.uuid4().int))

    def case(self, label: str) -> dict[str, Any]:
        return self.cases[label]

    def qa(self) -> dict[str, str]:
        return self.platform.person(f"qa-{self.platform.run}", Role.QA)

    def handler(self) -> dict[str, str]:
        return self.platform.person(f"handler-{self.platform.run}", Role.COMPLAINT)


@pytest.fixture(scope="module")
def world(postgres_server: str, kafka_bootstrap: str, tmp_path_factory: Any) -> Iterator[World]:
    # The services' consumer groups start after what earlier tests left on the topics.
    async def prepare() -> dict[TopicPartition, int]:
        for group in ("case-svc", "contact-svc", "complaint-svc", "qa-svc"):
            await start_group_at_end(kafka_bootstrap, group, *TOPICS)
        return await _end_offsets(kafka_bootstrap, "contact.events", "complaint.events")

    offsets = asyncio.run(prepare())
    workdir: Path = tmp_path_factory.mktemp("platform")
    # Sunday before the QA week, 10:00 in Shanghai
    platform = start_platform(
        postgres_server, kafka_bootstrap, workdir, shanghai(1, 10) - 24 * HOUR
    )
    try:
        # QA-SAMPLE: the week's seed is committed before the week starts
        with httpx.Client(base_url=platform.urls["qa"], timeout=30) as qa:
            headers = platform.person(f"qa-{platform.run}", Role.QA)
            r = qa.post("/v1/samples/commitments", json={"week": WEEK}, headers=headers)
            assert r.status_code == 201, r.text
        yield World(platform, offsets)
    finally:
        codes = stop_platform(platform)
    assert set(codes) <= {0, -15}, platform.log_tails()


async def _end_offsets(bootstrap: str, *topics: str) -> dict[TopicPartition, int]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        parts = platform_partitions(*topics)
        ends: dict[TopicPartition, int] = await reader.end_offsets(parts)
        return ends
    finally:
        await reader.stop()


async def eventually(
    probe: Callable[[], Awaitable[Any]], what: str, platform: Platform, timeout: float = WAIT
) -> Any:
    """Poll ``probe`` until it returns something truthy; return it."""
    found: list[Any] = []

    async def ready() -> bool:
        value = await probe()
        if value:
            found.append(value)
            return True
        return False

    try:
        await wait_until(ready, timeout=timeout, what=what)
    except TimeoutError:
        raise AssertionError(f"{what}\n{platform.log_tails()}") from None
    return found[-1]


def account(world: World, label: str, *, timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    """An M1 account with a good repayment record (the gentle track), one debtor each."""
    return {
        "contract_no": f"LN-E2E-{world.platform.run}-{label}",
        "name": "张三",
        "national_id": national_id(world.rng),
        "phones": [mobile(world.rng)],
        "principal": "12000.00",
        "interest": "350.25",
        "fees": "50.00",
        "overdue_since": "2027-02-10",
        "debtor_timezone": timezone,
        "history": "good",
    }


async def all_pages(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], **query: str
) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **query} | ({"cursor": cursor} if cursor else {})
        r = await http.get(path, params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def decide(
    world: World, label: str, agent_id: str | None = None, channel: str = "call"
) -> dict[str, Any]:
    """The dialer's pre-dial question, once contact-svc knows the case."""
    body = {"case_id": world.case(label)["id"], "channel": channel}
    if agent_id is not None:
        body["agent_id"] = agent_id
    async with client(world.platform, "contact", headers=DIALER) as contact:

        async def known() -> dict[str, Any] | None:
            r = await contact.post("/v1/contact-decisions", json=body)
            if r.status_code == 404:
                return None  # case.imported.v1 not applied yet
            assert r.status_code == 200, r.text
            result: dict[str, Any] = r.json()
            return result

        answer: dict[str, Any] = await eventually(
            known, f"contact-svc to know case {label}", world.platform
        )
        return answer


def call_ended(
    world: World, label: str, n: int, *, disposition: str = "answered", seconds: int = 95
) -> dict[str, Any]:
    case = world.case(label)
    return {
        "delivery_id": f"dlv-{world.platform.run}-{label}-{n}",
        "event": "ended",
        "call_id": f"call-{world.platform.run}-{label}-{n}",
        "case_id": case["id"],
        "debtor_id": case["debtor_id"],
        "agent_id": case["agent_id"],
        "at": world.platform.now().isoformat(),
        "duration_seconds": seconds,
        "disposition": disposition,
        "recording_uri": f"s3://recordings/{world.platform.run}/{label}-{n}.ogg",
        "speech_rate_wpm": 140.0,
        "volume_db": -18.0,
    }


async def send_call(world: World, payload: dict[str, Any]) -> dict[str, Any]:
    raw, headers = world.platform.signed_call(payload)
    async with client(world.platform, "contact") as contact:
        r = await contact.post("/v1/webhooks/dialer/calls", content=raw, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def read_case(world: World, label: str) -> dict[str, Any]:
    async with client(world.platform, "case", headers=BANK) as case:
        r = await case.get(f"/v1/cases/{world.case(label)['id']}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# -- (1) intake, buckets, tracks, assignment, the bank's feed ------------------------------

LABELS = ("cap", "quiet", "freq", "complaint", "spare1", "spare2", "settle", "extra1", "extra2")


async def test_1_the_bank_imports_accounts_cases_get_buckets_tracks_agents_and_the_feed_shows_them(
    world: World,
) -> None:
    p = world.platform
    p.move_to(shanghai(1, 10))
    run = p.run
    world.agents = [f"agent-{run}-{i}" for i in range(1, 4)]
    async with client(p, "case") as case:
        for agent in world.agents:
            r = await case.put(
                f"/v1/agents/{agent}",
                json={"team_id": "team-e2e", "skills": ["gentle", "standard"], "capacity": 20},
                headers=OPS,
            )
            assert r.status_code == 200, r.text
        rows = [
            account(
                world, label, timezone="America/New_York" if label == "quiet" else "Asia/Shanghai"
            )
            for label in LABELS
        ]
        bad = {**account(world, "bad"), "national_id": "110105194912310021"}
        r = await case.post(
            "/v1/accounts/import",
            json={"accounts": [*rows, bad]},
            headers={**BANK, "Idempotency-Key": f"import-{run}"},
        )
        assert r.status_code == 200, r.text
        summary = r.json()
        assert (summary["created"], summary["rejected"]) == (len(LABELS), 1)
        rejected = summary["rows"][-1]
        assert rejected["errors"][0]["field"] == "national_id"
        assert rejected["errors"][0]["rule"] == "CASE-INTAKE"
        ids = {label: row["case_id"] for label, row in zip(LABELS, summary["rows"], strict=False)}

        r = await case.post("/v1/assignments/run", headers=OPS)
        assert r.status_code == 200, r.text
        assert r.json()["assigned"] == len(LABELS)

        for label, case_id in ids.items():
            r = await case.get(f"/v1/cases/{case_id}", headers=BANK)
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["bucket"] == "M1"  # 19 days past due
            assert got["strategy"]["track"] == "gentle" and "call" in got["strategy"]["channels"]
            assert got["agent_id"] in world.agents
            assert got["debtor"]["national_id"] != rows[LABELS.index(label)]["national_id"]
            world.cases[label] = got

        feed = await all_pages(case, "/v1/changes", BANK)
    ours = [c for c in feed if c["case_id"] in ids.values()]
    for case_id in ids.values():
        kinds = {c["change"] for c in ours if c["case_id"] == case_id}
        assert any("imported" in k for k in kinds), kinds
    assert all("national_id" not in str(c["data"]) for c in ours)  # ids, codes, amounts only


# -- (2) the pre-dial check: allowed, the daily cap, quiet hours ---------------------------


async def test_2_the_dialer_is_allowed_then_capped_per_day_and_denied_in_the_debtors_quiet_hours(
    world: World,
) -> None:
    p = world.platform
    p.move_to(shanghai(1, 10, 5))
    agent = world.case("cap")["agent_id"]
    for n in range(3):
        answer = await decide(world, "cap", agent)
        assert answer["allowed"] is True and answer["denials"] == [], (n, answer)
    answer = await decide(world, "cap", agent)
    assert answer["allowed"] is False
    assert [d["rule"] for d in answer["denials"]] == ["CALL-DAILY-CAP"]
    assert answer["next_allowed_at"] is not None

    # 02:05 UTC is 21:05 the evening before in New York: quiet time for that debtor
    answer = await decide(world, "quiet", world.case("quiet")["agent_id"])
    assert answer["allowed"] is False
    assert "CALL-QUIET" in [d["rule"] for d in answer["denials"]]
    assert datetime.fromisoformat(answer["next_allowed_at"]) > p.now()


# -- (3) QA's live rules on the dialer's webhooks ------------------------------------------


async def test_3_calls_beyond_the_live_rule_limit_raise_exactly_one_qa_alert(
    world: World,
) -> None:
    p = world.platform
    p.move_to(shanghai(1, 10, 10))
    case = world.case("freq")
    limit = QaPolicy().max_calls_per_window
    for n in range(limit + 2):  # two calls beyond the limit, minutes apart
        outcome = await send_call(world, call_ended(world, "freq", n))
        assert outcome["duplicate"] is False
        p.advance(timedelta(minutes=2))
    # the calls beyond the daily cap are flagged by contact-svc too
    assert outcome["flagged"] is True and "CALL-DAILY-CAP" in outcome["flag_rules"]

    async with client(p, "qa", headers=OPS) as qa:

        async def alert_with_every_call() -> list[dict[str, Any]] | None:
            alerts = [
                a
                for a in await all_pages(qa, "/v1/alerts", OPS)
                if a["debtor_id"] == case["debtor_id"]
            ]
            if alerts and len(alerts[0]["evidence_event_ids"]) == limit + 2:
                return alerts
            return None

        alerts = await eventually(alert_with_every_call, "the frequency alert", p)
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert alert["rule_id"] == "QA-REALTIME" and alert["check"] == "call_frequency"
    assert alert["agent_id"] == case["agent_id"] and alert["status"] == "open"


# -- (4) a complaint in a call: the ticket, its recording, its SLA clock ----------------------


async def ticket_of(world: World, label: str) -> dict[str, Any]:
    """The complaint ticket of the debtor, as complaint handling finds it: the debtor's
    complaint hold in contact-svc names it."""
    p = world.platform
    debtor = world.case(label)["debtor_id"]
    async with client(p, "contact") as contact:

        async def hold() -> dict[str, Any] | None:
            r = await contact.get(
                "/v1/contact-holds", params={"debtor_id": debtor, "kind": "complaint"}, headers=OPS
            )
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            return items[0] if items else None

        found: dict[str, Any] = await eventually(hold, "the complaint hold", p)
    async with client(p, "complaint") as complaint:
        r = await complaint.get(f"/v1/tickets/{found['ticket_id']}", headers=world.handler())
    assert r.status_code == 200, r.text
    ticket: dict[str, Any] = r.json()
    return ticket


def step(ticket: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in ticket["steps"] if s["step"] == name)


def breaches(metrics_text: str, step_name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == "complaint_sla_alerts_total"
        and s.labels.get("step") == step_name
        and s.labels.get("level") == "breach"
    )


async def test_4_a_complaint_in_a_call_opens_a_ticket_with_the_recording_and_its_sla_breach_shows(
    world: World,
) -> None:
    p = world.platform
    p.move_to(shanghai(1, 10, 20))
    call = call_ended(world, "complaint", 1, disposition="complaint")
    await send_call(world, call)

    ticket = await ticket_of(world, "complaint")
    assert ticket["channel"] == "contact" and ticket["call_id"] == call["call_id"]
    assert ticket["case_id"] == world.case("complaint")["id"]
    assert ticket["agent_id"] == call["agent_id"]
    assert call["recording_uri"] in str(ticket["evidence"])
    contact_step = step(ticket, "contact")
    assert contact_step["rule"] == "COMP-SLA-CONTACT" and contact_step["breached"] is False
    world.cases["complaint"]["ticket_id"] = ticket["id"]

    async with client(p, "complaint") as complaint:
        before = breaches((await complaint.get("/metrics")).text, "contact")
        # nobody calls the complainant back: past the 10-minute deadline
        p.move_to(datetime.fromisoformat(contact_step["deadline"]) + timedelta(minutes=1))

        async def breached() -> bool:
            text = (await complaint.get("/metrics")).text
            return breaches(text, "contact") > before

        await eventually(breached, "the COMP-SLA-CONTACT breach in /metrics", p)
        r = await complaint.get(f"/v1/tickets/{ticket['id']}", headers=world.handler())
    assert step(r.json(), "contact")["breached"] is True


# -- (5) substantiated: QA re-check, the sanction ladder, suspension, reassignment -------------


async def test_5_a_substantiated_complaint_leads_to_suspension_denied_calls_and_reassigned_cases(
    world: World,
) -> None:
    p = world.platform
    p.move_to(shanghai(1, 10, 40))
    ticket_id = world.case("complaint")["ticket_id"]
    agent = world.case("complaint")["agent_id"]
    handler = world.handler()
    async with client(p, "complaint") as complaint:
        for name in ("contact", "verify", "evidence"):
            r = await complaint.post(
                f"/v1/tickets/{ticket_id}/steps/{name}/complete", headers=handler
            )
            assert r.status_code == 200, r.text
        early = await complaint.post(
            f"/v1/tickets/{ticket_id}/outcome",
            json={"substantiated": True},
            headers={**handler, "Idempotency-Key": f"early-{p.run}"},
        )
        assert early.status_code == 409 and early.json()["rule"] == "COMP-JOINT", early.text
        for department in ("collection", "compliance", "customer_service"):
            r = await complaint.post(
                f"/v1/tickets/{ticket_id}/findings",
                json={"department": department, "text": f"{department}: the agent shouted"},
                headers={**handler, "Idempotency-Key": f"finding-{p.run}-{department}"},
            )
            assert r.status_code == 201, r.text
        r = await complaint.post(
            f"/v1/tickets/{ticket_id}/outcome",
            json={
                "substantiated": True,
                "remedies": ["change_of_approach"],
                "sanction_requested": True,
                "sanction_severity": "serious",
                "apology_recorded": True,
            },
            headers={**handler, "Idempotency-Key": f"outcome-{p.run}"},
        )
        assert r.status_code == 200, r.text

    async with client(p, "qa") as qa:

        async def sanctioned() -> dict[str, Any] | None:
            r = await qa.get(f"/v1/agents/{agent}/sanctions", headers=world.qa())
            assert r.status_code == 200, r.text
            history: dict[str, Any] = r.json()
            return history if history["items"] else None

        history = await eventually(sanctioned, "QA's sanction of the agent", p)
        assert [s["sanction"] for s in history["items"]] == ["fine"], history
        assert history["suspended"] is False

        async def recheck() -> list[dict[str, Any]] | None:
            tasks = await all_pages(qa, "/v1/reviews", OPS, kind="recheck")
            mine = [t for t in tasks if t["agent_id"] == agent]
            return mine or None

        (task,) = await eventually(recheck, "QA's re-check of the agent", p)
        assert task["ticket_id"] == ticket_id and task["case_id"] == world.case("complaint")["id"]

        # a second serious violation: the ladder suspends the agent
        r = await qa.post(
            f"/v1/agents/{agent}/violations",
            json={
                "severity": "serious",
                "rule_id": "CONTACT-CONDUCT",
                "evidence": ticket_id,
                "note": "insulted the debtor again",
            },
            headers=world.qa(),
        )
        assert r.status_code == 201, r.text
        assert r.json()["sanction"]["sanction"] == "suspension", r.json()

    other = next(
        label
        for label, c in world.cases.items()
        if c["agent_id"] == agent and label not in ("complaint", "cap", "freq", "settle")
    )

    async def denied_for_sanction() -> dict[str, Any] | None:
        answer = await decide(world, other, agent)
        return answer if "QA-SANCTION" in [d["rule"] for d in answer["denials"]] else None

    answer = await eventually(denied_for_sanction, "contact-svc to deny the suspended agent", p)
    assert answer["allowed"] is False

    mine = [label for label, c in world.cases.items() if c["agent_id"] == agent]

    async def reassigned() -> dict[str, str | None] | None:
        holders = {label: (await read_case(world, label))["agent_id"] for label in mine}
        return holders if agent not in holders.values() else None

    holders = await eventually(reassigned, "case-svc to reassign the agent's cases", p)
    assert all(h in world.agents and h != agent for h in holders.values()), holders
    async with client(p, "case") as case:
        r = await case.get(f"/v1/cases/{world.case(other)['id']}/assignments", headers=AUDITOR)
    last = r.json()["items"][-1]
    assert last["rule_id"] == "QA-SANCTION" and last["previous_agent_id"] == agent, last
    for label, holder in holders.items():
        world.cases[label]["agent_id"] = holder


# -- (6) paid in full: settled, no more contact, the bank's feed ----------------------------


async def test_6_a_full_payment_settles_the_case_stops_contact_and_reaches_the_banks_feed(
    world: World,
) -> None:
    p = world.platform
    p.move_to(shanghai(1, 11))
    case = world.case("settle")
    balance = Decimal(case["balance"])
    async with client(p, "case", headers=BANK) as http:
        r = await http.post(
            f"/v1/cases/{case['id']}/payments",
            json={
                "payment_id": f"PAY-{p.run}-1",
                "amount": str(balance),
                "paid_at": p.now().isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        settled = r.json()
        assert settled["status"] == "settled" and Decimal(settled["balance"]) == 0
        feed = await all_pages(http, "/v1/changes", BANK)
    kinds = [c["change"] for c in feed if c["case_id"] == case["id"]]
    assert any("settled" in k for k in kinds), kinds

    async def denied_as_settled() -> dict[str, Any] | None:
        answer = await decide(world, "settle", case["agent_id"])
        return answer if not answer["allowed"] else None

    answer = await eventually(denied_as_settled, "contact-svc to stop contact", p)
    assert any("settled" in d["reason"] for d in answer["denials"]), answer
    assert answer["next_allowed_at"] is None


# -- (7) the week's QA sample, recomputed from the revealed seed ---------------------------


async def week_records(world: World, bootstrap: str) -> list[sampling.Record]:
    """The week's contact records as the bus carried them (contact.attempted.v1)."""
    parts = platform_partitions("contact.events")
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign(parts)
        for tp in parts:
            reader.seek(tp, world.offsets.get(tp, 0))
        ends = await reader.end_offsets(parts)
        records: dict[str, sampling.Record] = {}

        async def behind() -> bool:
            return any([await reader.position(tp) < ends[tp] for tp in parts])

        while await behind():
            batch = await reader.getmany(timeout_ms=500)
            for messages in batch.values():
                for m in messages:
                    env = EventEnvelope.from_bytes(m.value)
                    if env.type != "contact.attempted.v1":
                        continue
                    at = datetime.fromisoformat(env.data["attempted_at"])
                    if WEEK_STARTS <= at < WEEK_ENDS:
                        stratum = (
                            sampling.bucket_of(None, env.data.get("bucket")),
                            env.data["channel"],
                        )
                        records[env.id] = sampling.Record(env.id, stratum, env.data.get("agent_id"))
        return list(records.values())
    finally:
        await reader.stop()


async def qa_caught_up(world: World, bootstrap: str) -> None:
    """Wait until contact- and complaint-svc published everything (their outboxes are
    empty) and qa-svc's consumer has seen every event on their topics since the start."""
    p = world.platform
    for service in ("contact", "complaint"):
        async with client(p, service, headers=OPS) as http:

            async def published(http: httpx.AsyncClient = http) -> bool:
                r = await http.get("/v1/service-info")
                return bool(r.json()["relay"]["backlog"] == 0)

            await eventually(published, f"{service}-svc's outbox to drain", p)
    ends = await _end_offsets(bootstrap, "contact.events", "complaint.events")
    expected = sum(end - world.offsets.get(tp, 0) for tp, end in ends.items())
    async with client(p, "qa") as qa:

        async def seen() -> bool:
            text = (await qa.get("/metrics")).text
            total = sum(
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "consumer_events_total"
            )
            return total >= expected

        await eventually(seen, f"qa-svc to consume {expected} events", p)


async def test_7_the_weeks_sample_drawn_after_the_week_is_the_one_its_revealed_seed_gives(
    world: World, kafka_bootstrap: str
) -> None:
    p = world.platform
    p.move_to(shanghai(2, 9))
    for label in ("extra1", "extra2"):  # more contacts in the week, on another day
        answer = await decide(world, label, world.case(label)["agent_id"])
        assert answer["allowed"] is True, answer
    async with client(p, "qa") as qa:
        early = await qa.post(f"/v1/samples/{WEEK}/draw", headers=world.qa())
        assert early.status_code == 409 and early.json()["reason"] == "week-not-over"

        p.move_to(WEEK_ENDS + 2 * HOUR)
        await qa_caught_up(world, kafka_bootstrap)
        records = await week_records(world, kafka_bootstrap)
        drawn = await qa.post(f"/v1/samples/{WEEK}/draw", headers=world.qa())
        assert drawn.status_code == 200, drawn.text
        got = (await qa.get(f"/v1/samples/{WEEK}", headers=AUDITOR)).json()
        verified = (await qa.get(f"/v1/samples/{WEEK}/verify", headers=AUDITOR)).json()
    assert verified == {"week": WEEK, "ok": True, "problems": []}

    # the auditor: the seed matches the commitment made before the week, and drawing again
    # from it over the week's records gives the same sample
    seed = bytes.fromhex(got["seed"])
    assert sampling.commitment(seed) == got["commitment"]
    population = {s["stratum"]: s["population"] for s in got["strata"]}
    assert sum(population.values()) == len(records) >= 8, (population, len(records))
    policy = QaPolicy()
    again = sampling.sample(
        seed,
        records,
        policy.sample_rate,
        weights=policy.sample_weights,
        allocation=policy.sample_allocation,
        defect_estimates=policy.sample_defect_estimates,
    )
    assert [pick.record_id for pick in again.random] == got["random_ids"]
    assert {sampling.stratum_key(k): v for k, v in again.population.items()} == population
    assert sampling.verify(seed, got["commitment"], records, got["random_ids"])
    week_ids = {r.id for r in records}
    assert set(got["risk_ids"]) <= week_ids and not set(got["risk_ids"]) & set(got["random_ids"])


async def test_8_the_demo_portfolio_loads_through_the_apis(world: World) -> None:
    p = world.platform
    summary = await load_demo(p.urls, today=p.now().date(), run=p.run)
    assert summary.accounts_created >= 24 and summary.rejected == 0
    assert summary.agents == len(summary.agent_ids) >= 3
    assert summary.assigned == summary.accounts_created
    async with client(p, "contact", headers=OPS) as contact:
        template_id, version = summary.sms_template_id, summary.sms_template_version
        template = (await contact.get(f"/v1/sms-templates/{template_id}/versions/{version}")).json()
    assert template["status"] == "approved" and template["filing_number"]
    async with client(p, "case") as case:
        holders = set()
        for case_id in summary.case_ids:
            r = await case.get(f"/v1/cases/{case_id}", headers=BANK)
            assert r.status_code == 200, r.text
            assert r.json()["agent_id"] is not None
            holders.add(r.json()["agent_id"])
        agents = {a["agent_id"]: a for a in await all_pages(case, "/v1/agents", OPS)}
    assert set(summary.agent_ids) <= set(agents)
    assert sum(agents[a]["load"] for a in summary.agent_ids) > 0
    assert holders & set(summary.agent_ids)
    # loading it again makes no second case of any account
    again = await load_demo(p.urls, today=p.now().date(), run=p.run)
    assert again.case_ids == summary.case_ids


# -- (9) no personal data anywhere the platform wrote (SEC-PII) ---------------------------


async def test_9_no_national_id_or_phone_number_is_in_any_log_message_or_clear_column(
    world: World, kafka_bootstrap: str
) -> None:
    """After every flow: the services' log files, every message the platform put on the
    four topics and their dead-letter topics, and every text column of the four databases
    but the encrypted ones hold none of the national IDs, phone numbers and addresses the
    bank sent, and nothing shaped like a national ID or a mainland mobile number."""
    from pii_scan import (  # tests/e2e/pii_scan.py
        Scanner,
        process_started_ms,
        scan_database,
        scan_logs,
        scan_topics,
        sent_personal_data,
    )

    p = world.platform
    procs = {proc.name: proc for proc in p.procs}
    sent = await sent_personal_data(procs["case"].env["DATABASE_URL"])
    # every account the flows and the demo imported, and test 1's rejected row's number
    assert len(sent) >= 2 * (len(LABELS) + 24), len(sent)
    scanner = Scanner([*sent, "110105194912310021"])

    await qa_caught_up(world, kafka_bootstrap)  # what is still to be written, is written
    # the messages written since the first service process started (all, without /proc)
    started = [process_started_ms(proc.proc.pid) for proc in p.procs if proc.proc is not None]
    known = [ms for ms in started if ms is not None]
    since = min(known) if len(known) == len(p.procs) else None
    messages = await scan_topics(scanner, kafka_bootstrap, TOPICS, since)
    not_ciphertext = []
    for name, proc in procs.items():
        not_ciphertext += await scan_database(scanner, name, proc.env["DATABASE_URL"])
    scan_logs(scanner, p.procs)

    assert messages > len(LABELS), messages  # the flows' events were read
    assert not not_ciphertext, not_ciphertext[:20]
    assert not scanner.leaks, "\n".join(str(leak) for leak in scanner.leaks[:40])
