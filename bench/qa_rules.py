"""qa-svc's live rules (QA-REALTIME, QA-QUIET, SMS-WEEKLY-CAP) on Kafka as a ratio against
raw aiokafka, same run, and the weekly sample's CPU cost (`python bench/qa_rules.py` runs
it alone; bench/run.py runs it when registered).

qa_weekly_sample: QA-SAMPLE's draw over QA_SAMPLE_RECORDS (default 1,000,000) contact
records in 16 strata (Neyman allocation, risk picks of 20 agents), then an auditor's
verification from the seed; CPU seconds of each. Goal: the draw under 30 s of CPU.

qa_rules: events/s qa-svc's real contact handlers apply through the idempotent
ConsumerRunner (decode and validate the envelope and event, write the window state,
evaluate frequency / duration / speech rate / volume / quiet hours / SMS weekly cap, raise
alerts, dedup row, offset commit; a batch of events per transaction) on
a fresh PostgreSQL database migrated with qa-svc's migrations, divided by the events/s
of the bare aiokafka manual-commit loop (getmany, json-decode each message, commit
after each batch) over the same topic.

The events: QA_RULES_EVENTS (default 200,000) contact events over QA_RULES_DEBTORS
(default 20,000) debtors, ten a debtor, keyed by debtor_id on a fresh 6-partition topic,
in event-time order over one day. A debtor gets three calls (each a ContactAttempted
and a CallCompleted carrying speech rate and volume) and SMS / letter / visit attempts up
to ten events (an SMS is a ContactAttempted and an SmsSent, as contact-svc sends them);
2 % of debtors get a fourth call (QA-REALTIME frequency), 1 % get four SMS and one call
(SMS-WEEKLY-CAP), 1 % of calls are out of the duration range, 1 % too fast and 1 % too
loud, 1 % of timed contacts fall in quiet hours (QA-QUIET), so a small fraction raises
alerts.

Goal: >= 0.3 (issue 6). Each pair runs QA_RULES_REPEAT (default 1) times, interleaved,
and the medians are compared. Kafka and PostgreSQL: KAFKA_BOOTSTRAP_SERVERS /
DATABASE_URL, else started here.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bus import raw_consume  # the same baseline loop as the bus benchmark
from sqlalchemy import func, select

from collect_common.bus.consumer import ConsumerRunner
from collect_common.bus.relay import idempotent_producer
from collect_common.bus.topics import TopicSpec, create_topics
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.contact import SmsSent
from collect_common.events.types import CallCompleted, ContactAttempted
from collect_common.migrations import upgrade
from collect_common.testing.infra import async_url, create_database
from qa_svc.adapters.tables import alerts
from qa_svc.bootstrap import bootstrap
from qa_svc.domain import sampling
from qa_svc.domain.policy import QaPolicy
from qa_svc.entrypoints.consumer import handlers
from qa_svc.service_layer.live_rules import LiveRules
from qa_svc.settings import MIGRATIONS, Settings

N = int(os.environ.get("QA_RULES_EVENTS", "200000"))
SAMPLE_RECORDS = int(os.environ.get("QA_SAMPLE_RECORDS", "1000000"))
SAMPLE_GOAL_CPU_S = 30.0
DEBTORS = int(os.environ.get("QA_RULES_DEBTORS", "20000"))
REPEAT = int(os.environ.get("QA_RULES_REPEAT", "1"))
PARTITIONS = 6
GOAL = 0.3
PER_DEBTOR = 10
DAY = datetime(2026, 11, 27, tzinfo=UTC)  # 00:00 UTC = 08:00 in Shanghai (QA-QUIET default)
WORKING = 14 * 3600  # 08:00-22:00 Shanghai = 00:00-14:00 UTC
EXTRA_CALL, BAD_DURATION, QUIET = 0.02, 0.01, 0.01
SMS_BURST, FAST, LOUD = 0.01, 0.01, 0.01


def _at(rng: random.Random) -> datetime:
    if rng.random() < QUIET:  # 22:00-08:00 Shanghai
        return DAY + timedelta(seconds=WORKING + rng.randrange(24 * 3600 - WORKING))
    return DAY + timedelta(seconds=rng.randrange(WORKING))


def _events(n: int, debtors: int, seed: int = 6) -> list[tuple[datetime, Event]]:
    """``n`` contact events, ten a debtor (fewer debtors when n is small), by event time."""
    rng = random.Random(seed)
    out: list[tuple[datetime, Event]] = []
    d = 0
    while len(out) < n:
        debtor, case = f"D-{d % debtors:06d}", f"C-{d % debtors:06d}"
        agent = f"agent-{rng.randrange(200):03d}"
        burst = rng.random() < SMS_BURST
        calls = 1 if burst else 4 if rng.random() < EXTRA_CALL else 3
        mine: list[tuple[datetime, Event]] = []
        for _ in range(calls):
            at = _at(rng)
            contact = uuid.UUID(int=rng.getrandbits(128)).hex
            mine.append(
                (
                    at,
                    ContactAttempted(
                        debtor_id=debtor,
                        case_id=case,
                        contact_id=contact,
                        channel="call",
                        agent_id=agent,
                        attempted_at=at,
                    ),
                )
            )
            seconds = rng.choice((3, 4000)) if rng.random() < BAD_DURATION else rng.randint(20, 900)
            wpm = rng.uniform(205, 260) if rng.random() < FAST else rng.uniform(110, 190)
            db = rng.uniform(-5, 0) if rng.random() < LOUD else rng.uniform(-30, -10)
            mine.append(
                (
                    at + timedelta(seconds=seconds + 5),
                    CallCompleted(
                        debtor_id=debtor,
                        case_id=case,
                        contact_id=contact,
                        agent_id=agent,
                        started_at=at,
                        duration_seconds=seconds,
                        disposition="answered",
                        speech_rate_wpm=round(wpm, 1),
                        volume_db=round(db, 1),
                    ),
                )
            )
        while len(mine) < PER_DEBTOR:
            at = _at(rng)
            channel = "sms" if burst else rng.choice(("sms", "sms", "letter", "visit"))
            if channel == "sms" and len(mine) > PER_DEBTOR - 2:
                channel = "letter"
            contact = uuid.UUID(int=rng.getrandbits(128)).hex
            mine.append(
                (
                    at,
                    ContactAttempted(
                        debtor_id=debtor,
                        case_id=case,
                        contact_id=contact,
                        channel=channel,  # type: ignore[arg-type]
                        agent_id=agent,
                        attempted_at=at,
                    ),
                )
            )
            if channel == "sms":
                mine.append((at, _sms(debtor, case, agent, contact, at)))
        out += mine
        d += 1
    out = out[:n]
    out.sort(key=lambda p: p[0])
    return out


def _sms(debtor: str, case: str, agent: str, message: str, at: datetime) -> SmsSent:
    return SmsSent(
        debtor_id=debtor,
        message_id=message,
        case_id=case,
        template_id="tpl-reminder",
        template_version=1,
        filing_number="BANK-FILED-001",
        agent_id=agent,
        text_sha256="0" * 64,
        provider="bench",
        provider_id=message,
        sent_at=at,
    )


def _records(events: list[tuple[datetime, Event]]) -> list[tuple[bytes, bytes]]:
    records = []
    for at, event in events:
        env = wrap(event, source="/contact-svc", time=at, correlation_id=str(uuid.uuid4()))
        records.append((event.debtor_id.encode(), env.to_bytes()))  # type: ignore[attr-defined]
    return records


async def produce(bootstrap_servers: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = idempotent_producer(bootstrap_servers)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def rules_consume(
    bootstrap_servers: str, topic: str, db_url: str, n: int
) -> tuple[float, dict[str, Any]]:
    """Events/s through qa-svc's live rules, and the alerts they raised."""
    await upgrade(MIGRATIONS, db_url)
    runtime = bootstrap(
        Settings(
            database_url=db_url,
            kafka_bootstrap_servers=bootstrap_servers,
            relay_enabled=False,
            consumer_enabled=False,
            migrate_on_start=False,
            log_json=False,
        )
    )
    await runtime.start()  # field cipher; no relay, consumer or migration here
    runner = ConsumerRunner(
        name=_group(),
        topics=[topic],
        bootstrap=bootstrap_servers,
        uow_factory=runtime.uow,
        processed=runtime.processed,
        handlers=handlers(lambda: runtime.context_of(LiveRules), runtime.clock),
        clock=runtime.clock,
        max_batch=runtime.settings.consumer_max_batch,  # as the service runs it
    )
    await runner.start()
    try:
        started = 0.0
        stats = runner.stats
        while stats.applied + stats.duplicates + stats.dead_lettered + stats.ignored < n:
            got = await runner.poll_once()
            if got and not started:
                started = time.perf_counter()
        rate = stats.applied / (time.perf_counter() - started)
    finally:
        await runner.close()
    try:
        by_rule = {
            rule: int(runtime.registry.get_sample_value("alerts_raised_total", {"rule": rule}) or 0)
            for rule in ("QA-REALTIME", "QA-QUIET", "SMS-WEEKLY-CAP")
        }
        async with runtime.sessions() as s:
            rows = await s.execute(select(alerts.c.kind, func.count()).group_by(alerts.c.kind))
            by_check = {kind: count for kind, count in rows}
        found = {
            "alerts": sum(by_check.values()),
            "alerts_by_rule": by_rule,
            "alerts_by_check": by_check,
            "dead_lettered": stats.dead_lettered,
        }
    finally:
        await runtime.stop()
        await runtime.engine.dispose()
    return rate, found


def _group() -> str:
    return "bench-" + uuid.uuid4().hex[:8]


def weekly_sample(n: int) -> dict[str, Any]:
    """QA-SAMPLE over ``n`` contact records (a busy week): CPU seconds of the draw (strata,
    Neyman allocation, keyed-hash scores, risk picks) and of an auditor's verification
    from the revealed seed, in this process."""
    rng = random.Random(7)
    buckets, channels = ["M1", "M2", "M3", "M3+"], ["call", "sms", "letter", "visit"]
    records = [
        sampling.Record(
            f"evt-{i:08d}",
            (rng.choice(buckets), rng.choice(channels)),
            f"agent-{rng.randrange(400)}",
        )
        for i in range(n)
    ]
    policy = QaPolicy()
    seed = sampling.new_seed()
    started = time.process_time()
    drawn = sampling.sample(
        seed,
        records,
        policy.sample_rate,
        weights=policy.sample_weights,
        allocation="neyman",
        defect_estimates=policy.sample_defect_estimates,
        risk_agents={f"agent-{i}" for i in range(0, 400, 20)},
        risk_per_agent=policy.sample_risk_per_agent,
    )
    draw_cpu = time.process_time() - started
    random_ids = [p.record_id for p in drawn.picks if not p.risk]
    started = time.process_time()
    verified = sampling.verify(seed, sampling.commitment(seed), records, random_ids)
    verify_cpu = time.process_time() - started
    print(
        f"  weekly sample: {n:,} records, {len(random_ids):,} drawn + "
        f"{len(drawn.picks) - len(random_ids):,} risk picks; draw {draw_cpu:.1f} s CPU, "
        f"verification {verify_cpu:.1f} s CPU ({'ok' if verified else 'FAILED'})",
        flush=True,
    )
    return {
        "records": n,
        "random_picks": len(random_ids),
        "risk_picks": len(drawn.picks) - len(random_ids),
        "draw_cpu_s": round(draw_cpu, 2),
        "verify_cpu_s": round(verify_cpu, 2),
        "verified": verified,
        "goal_cpu_s": SAMPLE_GOAL_CPU_S,
        "meets_goal": verified and draw_cpu < SAMPLE_GOAL_CPU_S,
    }


async def bench(bootstrap_servers: str, server_url: str) -> dict[str, dict]:
    started = time.perf_counter()
    records = _records(_events(N, DEBTORS))
    print(f"  {len(records):,} events built in {time.perf_counter() - started:.1f}s", flush=True)
    raw_rates: list[float] = []
    rules_rates: list[float] = []
    found: dict[str, Any] = {}
    for rep in range(REPEAT):
        topic = f"bench.qa_rules.{rep}.{_group()}"
        await create_topics(
            bootstrap_servers, [TopicSpec(topic, PARTITIONS), TopicSpec(topic + ".dlq", 1)]
        )
        db = f"bench_qa_{rep}_{uuid.uuid4().hex[:6]}"
        db_url = async_url(create_database(server_url, db))
        produced = await produce(bootstrap_servers, topic, records)
        raw_rates.append(await raw_consume(bootstrap_servers, topic, len(records)))
        rate, found = await rules_consume(bootstrap_servers, topic, db_url, len(records))
        rules_rates.append(rate)
        print(
            f"  run {rep + 1}/{REPEAT}: produce {produced:,.0f}/s  raw consume "
            f"{raw_rates[-1]:,.0f}/s  live rules {rules_rates[-1]:,.0f}/s  "
            f"alerts {found['alerts']:,}",
            flush=True,
        )
    c, b = statistics.median(rules_rates), statistics.median(raw_rates)
    return {
        "qa_weekly_sample": weekly_sample(SAMPLE_RECORDS),
        "qa_rules": {
            "events": len(records),
            "debtors": min(DEBTORS, -(-len(records) // PER_DEBTOR)),
            "repeats": REPEAT,
            "rules_per_s": round(c),
            "raw_per_s": round(b),
            "rules_runs": [round(x) for x in rules_rates],
            "raw_runs": [round(x) for x in raw_rates],
            "ratio": round(c / b, 3),
            "goal": GOAL,
            "meets_goal": c / b >= GOAL,
            **found,
        },
    }


def header(kafka_kind: str, pg_kind: str) -> str:
    return (
        f"qa_rules: {N:,} contact events over {DEBTORS:,} debtors x {REPEAT} runs; "
        f"Kafka {kafka_kind}, PostgreSQL {pg_kind}"
    )


if __name__ == "__main__":
    import run

    if "qa_rules" not in run.MODULES:
        sys.exit("bench/run.py does not list qa_rules yet")
    sys.exit(run.main(["qa_rules"]))
