"""Shared helpers of the fault tests: services as processes on a fixed daytime clock,
accounts to import, signed dialer webhooks, people's tokens, and direct reads of a
service's database and of the topics."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2

from collect_common.clock import OffsetFile, OffsetFileClock
from collect_common.security.auth import Role, TokenService
from collect_common.security.webhooks import sign
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET, DEV_WEBHOOK_SECRETS
from collect_common.testing.identities import national_id
from collect_common.testing.infra import async_url, create_database, free_port, sync_url
from collect_common.testing.processes import ServiceProcess

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
DIALER = {"X-API-Key": DEV_API_KEYS["dialer"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
WEBHOOK_KEY_ID, _, _SECRET = DEV_WEBHOOK_SECRETS.partition(":")

# Monday 2027-03-01 10:00 in Shanghai: inside every debtor's contact hours.
DAYTIME = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)


def daytime_clock(workdir: Path) -> Path:
    """A CLOCK_FILE whose clock reads :data:`DAYTIME` now (and runs on from there)."""
    path = workdir / "clock"
    OffsetFile(path).write((DAYTIME - datetime.now(UTC)).total_seconds())
    return path


def new_database(server_url: str, prefix: str) -> str:
    """A fresh database on ``server_url``; its sync URL."""
    return create_database(server_url, f"{prefix}_{uuid.uuid4().hex[:8]}")


def service(
    name: str,
    database: str,
    kafka: str,
    workdir: Path,
    clock_file: Path,
    port: int | None = None,
    **extra: str,
) -> ServiceProcess:
    env = {
        "DATABASE_URL": async_url(database),
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "ENVIRONMENT": "test",
        "CLOCK_FILE": str(clock_file),
        "LOG_JSON": "false",
        **extra,
    }
    return ServiceProcess(name, port or free_port(), env, workdir)


def account(run: str, i: int, rng: random.Random) -> dict[str, Any]:
    """An M1 account (19 days past due on :data:`DAYTIME`), one debtor each."""
    return {
        "contract_no": f"LN-REL-{run}-{i:06d}",
        "name": "张三",
        "national_id": national_id(rng),
        "phones": [f"13{rng.randrange(10)}{rng.randrange(10**8):08d}"],
        "principal": "12000.00",
        "interest": "350.25",
        "fees": "50.00",
        "overdue_since": "2027-02-10",
        "debtor_timezone": "Asia/Shanghai",
        "history": "good",
    }


def ndjson_lines(accounts: list[dict[str, Any]]) -> Iterator[bytes]:
    for acc in accounts:
        yield json.dumps(acc, ensure_ascii=False).encode() + b"\n"


def signed_call(payload: dict[str, Any], at: datetime) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload).encode()
    headers = sign(
        _SECRET.encode(),
        int(at.timestamp()),
        str(payload["delivery_id"]),
        raw,
        key_id=WEBHOOK_KEY_ID,
    )
    return raw, {**headers, **DIALER, "Content-Type": "application/json"}


def count(database: str, sql: str, *params: Any) -> int:
    """A ``SELECT count(...)`` read straight from a service's database (sync URL)."""
    conn = psycopg2.connect(sync_url(database), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            row = cur.fetchone()
            return int(row[0])
    finally:
        conn.close()


async def event_ids_on_topic(bootstrap: str, topic: str, event_type: str) -> list[str]:
    """The ids of every ``event_type`` envelope on ``topic``, from the first offset to the
    current end (duplicates kept: the relay publishes at least once)."""
    return (await event_ids_by_type(bootstrap, topic)).get(event_type, [])


def column(database: str, sql: str, *params: Any) -> list[Any]:
    """The first column of every row, read straight from a service's database."""
    conn = psycopg2.connect(sync_url(database), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def person(clock_file: Path, subject: str, role: Role) -> dict[str, str]:
    """A person's headers: a token signed now on the clock of ``clock_file`` (the one the
    services read), as the platform's identity provider would issue it."""
    tokens = TokenService(DEV_TOKEN_SECRET, "collect-platform", OffsetFileClock(clock_file))
    return {"Authorization": f"Bearer {tokens.issue(subject, [role])}"}


async def event_ids_by_type(bootstrap: str, topic: str) -> dict[str, list[str]]:
    """Every envelope id on ``topic`` from the first offset to the current end, by event
    type (duplicates kept: the relay publishes at least once)."""
    from aiokafka import AIOKafkaConsumer

    from collect_common.events import EventEnvelope
    from collect_common.testing.kafka import platform_partitions

    parts = platform_partitions(topic)
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        reader.assign(parts)
        ends = await reader.end_offsets(parts)
        for tp, first in (await reader.beginning_offsets(parts)).items():
            reader.seek(tp, first)
        ids: dict[str, list[str]] = {}

        async def behind() -> bool:
            return any([await reader.position(tp) < ends[tp] for tp in parts])

        while await behind():
            batch = await reader.getmany(timeout_ms=1000, max_records=5000)
            for messages in batch.values():
                for m in messages:
                    envelope = EventEnvelope.from_bytes(m.value)
                    ids.setdefault(envelope.type, []).append(envelope.id)
        return ids
    finally:
        await reader.stop()


def outbox_ids_by_type(database: str) -> dict[tuple[str, str], list[str]]:
    """Every event id a service's outbox recorded, by (topic, event type)."""
    conn = psycopg2.connect(sync_url(database), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT topic, event_type, event_id FROM outbox")
            ids: dict[tuple[str, str], list[str]] = {}
            for topic, event_type, event_id in cur.fetchall():
                ids.setdefault((topic, event_type), []).append(event_id)
            return ids
    finally:
        conn.close()


def rows(database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Every row of a query, read straight from a service's database (sync URL)."""
    conn = psycopg2.connect(sync_url(database), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()


def replicas(
    name: str,
    database: str,
    kafka: str,
    workdir: Path,
    clock_file: Path,
    *,
    how_many: int = 2,
    env: dict[str, str] | None = None,
) -> list[ServiceProcess]:
    """``how_many`` processes of one service on the same database and broker, hence in the
    same consumer group, each on its own port and with its own log file
    (``workdir/<name>-<n>/<name>-svc.log``), ``env`` added to each one's environment."""
    procs = []
    for n in range(1, how_many + 1):
        logs = workdir / f"{name}-{n}"
        logs.mkdir(exist_ok=True)
        procs.append(service(name, database, kafka, logs, clock_file, None, **(env or {})))
    return procs


async def metric_total(url: str, sample: str, **labels: str) -> float:
    """The sum of a process's ``/metrics`` samples named ``sample`` whose labels include
    ``labels`` (0 when there are none)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.get("/metrics")
    r.raise_for_status()
    total = 0.0
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def assigned_partitions(proc: ServiceProcess) -> set[str] | None:
    """The partitions a process's consumer holds now, from its log (``partitions
    assigned`` / ``partitions revoked`` lines, console format): None when it holds none,
    or while a rebalance has revoked them and not yet assigned new ones."""
    import ast
    import re

    held: set[str] | None = None
    pattern = re.compile(r"partitions (assigned|revoked) .*?partitions=(\[[^\]]*\])")
    try:
        text = proc.log_path.read_text(errors="replace")
    except OSError:
        return None
    for match in pattern.finditer(text):
        held = set(ast.literal_eval(match[2])) if match[1] == "assigned" else None
    return held or None


def group_shared(procs: list[ServiceProcess]) -> bool:
    """Whether every process of one consumer group holds partitions of its own: the
    rebalance after the last one joined is over and the load is split."""
    held = [assigned_partitions(p) for p in procs]
    if any(h is None for h in held):
        return False
    seen: set[str] = set()
    for h in held:
        assert h is not None
        if seen & h:
            return False  # the old assignment still shows in one of the logs
        seen |= h
    return True
