"""e2e_latency: from the dialer's call-ended webhook to the QA alert an ops dashboard reads,
across processes, against the broker's own produce-to-consume latency in the same run.

The local stack: case-svc, contact-svc and qa-svc as their own uvicorn processes
(ServiceProcess), each on a fresh PostgreSQL database, on Kafka, sharing one clock file
set to a weekday 10:00 in Shanghai (outside the quiet hours, so only the rule the calls
are made to break fires). The bank imports E2E_CALLS accounts (one debtor each) through
case-svc; once contact-svc has applied every case event, the calls are sent.

(a) end to end: E2E_CALLS (default 1,000) signed ``ended`` webhooks, one a debtor, each
    with a volume above qa-svc's QA-REALTIME limit, offered open loop at E2E_RATE (default
    10/s) whatever the answers. The path: contact-svc verifies the signature, records the
    call and commits ``contact.call_completed.v1`` to its outbox; its relay publishes it;
    qa-svc's consumer evaluates the live rules and commits the alert; this process polls
    ``GET /v1/alerts`` (role ops) every E2E_POLL_MS (default 20 ms) and notes when each
    alert is first readable. Latency = first seen - scheduled send time, so it includes the
    webhook's own answer time and up to one polling interval.
(b) the broker: E2E_CALLS small messages produced by aiokafka (acks=all, idempotent) at the
    same rate on a fresh topic and consumed by an aiokafka consumer in this process;
    latency = consumed - scheduled send time.

ratio = end-to-end p99 / broker p99 (how many broker hops' worth the platform adds);
goal: end-to-end p99 < 1 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from collect_common.bus.topics import TopicSpec, create_topics
from collect_common.clock import OffsetFile, OffsetFileClock
from collect_common.security.webhooks import sign
from collect_common.settings import DEV_API_KEYS, DEV_WEBHOOK_SECRETS
from collect_common.testing.identities import nth_national_id
from collect_common.testing.infra import async_url, create_database, free_port
from collect_common.testing.kafka import platform_partitions, start_group_at_end
from collect_common.testing.processes import ServiceProcess

CALLS = int(os.environ.get("E2E_CALLS", "1000"))
RATE = float(os.environ.get("E2E_RATE", "10"))
POLL = float(os.environ.get("E2E_POLL_MS", "20")) / 1000
P99_GOAL_S = 1.0
SERVICES = ("case", "contact", "qa")
BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
DIALER = {"X-API-Key": DEV_API_KEYS["dialer"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
KEY_ID, _, SECRET = DEV_WEBHOOK_SECRETS.partition(":")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
    }


def _metric_total(text: str, name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


async def _wait(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"e2e_latency: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _end_offsets(bootstrap: str, topic: str) -> int:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        ends = await reader.end_offsets(platform_partitions(topic))
        return sum(ends.values())
    finally:
        await reader.stop()


class Stack:
    """The three services as processes on one clock file."""

    def __init__(self, bootstrap: str, server_url: str, workdir: Path) -> None:
        self.clock_file = workdir / "clock"
        # a weekday, 10:00 in Shanghai: no quiet-hours alerts, only the volume rule fires
        start = datetime(2027, 3, 2, 2, 0, tzinfo=UTC)
        OffsetFile(self.clock_file).write((start - datetime.now(UTC)).total_seconds())
        self.clock = OffsetFileClock(self.clock_file)
        self.procs: dict[str, ServiceProcess] = {}
        for name in SERVICES:
            db = f"bench_e2e_{name}_{uuid.uuid4().hex[:6]}"
            env = {
                "DATABASE_URL": async_url(create_database(server_url, db)),
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "ENVIRONMENT": "test",
                "CLOCK_FILE": str(self.clock_file),
                "LOG_JSON": "false",
                "LOG_LEVEL": "WARNING",
            }
            self.procs[name] = ServiceProcess(name, free_port(), env, workdir)

    def start(self) -> None:
        for p in self.procs.values():
            p.start()

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()

    def url(self, name: str) -> str:
        return self.procs[name].url


async def _import_cases(stack: Stack, bootstrap: str, run: str) -> list[dict[str, str]]:
    """CALLS accounts, one debtor each, imported by the bank; returns case and debtor ids
    once contact-svc has applied every case event."""
    before = await _end_offsets(bootstrap, "case.events")
    today = stack.clock.now().date()
    base = random.randrange(14000)
    rows = [
        {
            "contract_no": f"LN-BENCH-{run}-{i}",
            "name": "张三",
            "national_id": nth_national_id(i, base),
            "phones": [f"138{i:08d}"],
            "principal": "12000.00",
            "interest": "0",
            "fees": "0",
            "overdue_since": (today - timedelta(days=20)).isoformat(),
            "debtor_timezone": "Asia/Shanghai",
            "history": "good",
        }
        for i in range(CALLS)
    ]
    async with httpx.AsyncClient(base_url=stack.url("case"), timeout=120) as case:
        r = await case.post("/v1/accounts/import", json={"accounts": rows}, headers=BANK)
        r.raise_for_status()
        case_ids = [row["case_id"] for row in r.json()["rows"]]
        if None in case_ids or len(set(case_ids)) != CALLS:
            raise RuntimeError(f"e2e_latency: import failed: {r.text[:500]}")

        async def published() -> bool:
            info = await case.get("/v1/service-info", headers=OPS)
            return bool(info.json()["relay"]["backlog"] == 0)

        await _wait(published, "case-svc's outbox to drain")
    events = await _end_offsets(bootstrap, "case.events") - before
    async with httpx.AsyncClient(base_url=stack.url("contact"), timeout=30) as contact:

        async def applied() -> bool:
            text = (await contact.get("/metrics")).text
            return _metric_total(text, "consumer_events_total") >= events

        await _wait(applied, f"contact-svc to apply {events} case events")
    # debtor ids: ask case-svc for each case (the import answer names cases only)
    async with httpx.AsyncClient(base_url=stack.url("case"), timeout=30) as case:
        sem = asyncio.Semaphore(16)

        async def one(case_id: str) -> dict[str, str]:
            async with sem:
                got = (await case.get(f"/v1/cases/{case_id}", headers=BANK)).json()
            return {"case_id": case_id, "debtor_id": got["debtor_id"]}

        return list(await asyncio.gather(*(one(c) for c in case_ids)))


async def _end_to_end(stack: Stack, cases: list[dict[str, str]], run: str) -> dict[str, Any]:
    sent_at: dict[str, float] = {}  # debtor -> scheduled send (perf_counter)
    seen_at: dict[str, float] = {}
    answered: list[float] = []  # the webhook's own answer time, from its scheduled send
    errors = 0
    first_error: list[str] = []
    done_sending = asyncio.Event()

    async def poll(qa: httpx.AsyncClient) -> None:
        cursor: str | None = None
        while len(seen_at) < len(cases):
            params: dict[str, Any] = {"limit": 200, "rule": "QA-REALTIME"}
            if cursor:
                params["cursor"] = cursor
            r = await qa.get("/v1/alerts", params=params, headers=OPS)
            now = time.perf_counter()
            page = r.json()
            for alert in page["items"]:
                debtor = alert["debtor_id"]
                if debtor in sent_at and debtor not in seen_at:
                    seen_at[debtor] = now
            if page["next_cursor"]:
                cursor = page["next_cursor"]  # a full page: read on from it at once
                continue
            if done_sending.is_set() and time.perf_counter() - last_send[0] > 60:
                break
            await asyncio.sleep(POLL)

    last_send = [time.perf_counter()]
    secret = SECRET.encode()
    async with (
        httpx.AsyncClient(
            base_url=stack.url("contact"),
            timeout=30,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        ) as contact,
        httpx.AsyncClient(base_url=stack.url("qa"), timeout=30) as qa,
    ):
        poller = asyncio.create_task(poll(qa))

        async def send(i: int, c: dict[str, str], scheduled: float) -> None:
            nonlocal errors
            payload = {
                "delivery_id": f"bench-{run}-{i}",
                "event": "ended",
                "call_id": f"bench-call-{run}-{i}",
                "case_id": c["case_id"],
                "debtor_id": c["debtor_id"],
                "agent_id": f"bench-agent-{i % 50}",
                "at": stack.clock.now().isoformat(),
                "duration_seconds": 95,
                "disposition": "answered",
                "speech_rate_wpm": 140.0,
                "volume_db": 3.0,  # louder than QA-REALTIME's -6 dB: one alert each
            }
            raw = json.dumps(payload).encode()
            ts = int(stack.clock.now().timestamp())
            headers = {
                **sign(secret, ts, payload["delivery_id"], raw, key_id=KEY_ID),
                **DIALER,
                "Content-Type": "application/json",
            }
            sent_at[c["debtor_id"]] = scheduled
            r = await contact.post("/v1/webhooks/dialer/calls", content=raw, headers=headers)
            answered.append(time.perf_counter() - scheduled)
            if r.status_code != 200:
                errors += 1
                first_error[:] = first_error or [f"{r.status_code} {r.text[:300]}"]

        start = time.perf_counter()
        tasks = []
        for i, c in enumerate(cases):
            scheduled = start + i / RATE
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i, c, scheduled)))
        await asyncio.gather(*tasks)
        last_send[0] = time.perf_counter()
        done_sending.set()
        await poller
    latencies = [seen_at[d] - sent_at[d] for d in seen_at]
    if not latencies:
        raise RuntimeError(
            f"e2e_latency: no alert was read ({errors} webhook errors {first_error})\n"
            + "\n".join(p.log_tail(15) for p in stack.procs.values())
        )
    return {
        "calls": len(cases),
        "alerts_read": len(latencies),
        "webhook_errors": errors,
        **_summary(latencies),
        "webhook_answer": _summary(answered),
    }


async def _broker(bootstrap: str) -> dict[str, Any]:
    topic = f"bench.e2e_latency.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [TopicSpec(topic, 6)])
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-e2e-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    sent: dict[int, float] = {}
    latencies: list[float] = []
    try:
        # the consumer is assigned its partitions before the clock starts
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)

        async def consume() -> None:
            while len(latencies) < CALLS:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for messages in batch.values():
                    for m in messages:
                        latencies.append(now - sent[int(m.value)])

        reader = asyncio.create_task(consume())
        start = time.perf_counter()
        for i in range(CALLS):
            scheduled = start + i / RATE
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[i] = scheduled
            await producer.send(topic, str(i).encode(), key=str(i % 50).encode())
        await asyncio.wait_for(reader, timeout=120)
    finally:
        await producer.stop()
        await consumer.stop()
    return {"messages": len(latencies), **_summary(latencies)}


async def bench(bootstrap_servers: str, server_url: str) -> dict[str, dict[str, Any]]:
    run = uuid.uuid4().hex[:6]
    for name in SERVICES:  # the services' groups start after what is on the topics now
        await start_group_at_end(
            bootstrap_servers,
            f"{name}-svc",
            "case.events",
            "contact.events",
            "complaint.events",
            "qa.events",
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    stack = Stack(bootstrap_servers, server_url, workdir)
    await asyncio.to_thread(stack.start)
    try:
        cases = await _import_cases(stack, bootstrap_servers, run)
        e2e = await _end_to_end(stack, cases, run)
    finally:
        await asyncio.to_thread(stack.stop)
    broker = await _broker(bootstrap_servers)
    ratio = e2e["p99_ms"] / broker["p99_ms"] if broker["p99_ms"] else float("inf")
    print(
        f"  webhook -> readable alert: p50 {e2e['p50_ms']} ms  p99 {e2e['p99_ms']} ms "
        f"({e2e['alerts_read']}/{e2e['calls']} alerts, {e2e['webhook_errors']} webhook errors; "
        f"webhook answered p50 {e2e['webhook_answer']['p50_ms']} ms "
        f"p99 {e2e['webhook_answer']['p99_ms']} ms); "
        f"broker produce -> consume: p50 {broker['p50_ms']} ms  p99 {broker['p99_ms']} ms",
        flush=True,
    )
    return {
        "e2e_latency": {
            "rate_per_s": RATE,
            "poll_ms": POLL * 1000,
            "e2e": e2e,
            "broker": broker,
            "ratio": round(ratio, 1),
            "ratio_of": "end-to-end p99 / broker p99",
            "goal": "p99 < 1000 ms",
            "goal_kind": "max",
            "meets_goal": e2e["p99_ms"] < P99_GOAL_S * 1000
            and e2e["alerts_read"] == e2e["calls"]
            and e2e["webhook_errors"] == 0,
        }
    }


def header(kafka_kind: str, pg_kind: str) -> str:
    return (
        f"e2e_latency: {CALLS:,} call-ended webhooks at {RATE:g}/s -> QA alerts over the API, "
        f"vs aiokafka produce -> consume; Kafka {kafka_kind}, PostgreSQL {pg_kind}"
    )


if __name__ == "__main__":
    import run as bench_run

    sys.exit(bench_run.main(["e2e_latency"]))
