"""Crashes (SIGKILL, no shutdown handlers) in the middle of work, then the client retries
what it did not get an answer for. Every account and every dialer delivery is applied
exactly once, and nothing is applied twice downstream."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_kit import (
    BANK,
    DAYTIME,
    account,
    count,
    daytime_clock,
    ndjson_lines,
    new_database,
    service,
    signed_call,
)

from collect_common.clock import OffsetFileClock
from collect_common.testing.kafka import start_group_at_end
from collect_common.testing.probe import wait_until
from collect_common.testing.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

ACCOUNTS = 100_000  # as the issue asks: a 100,000-account import killed mid-flight
TOPICS = ("case.events", "contact.events", "complaint.events", "qa.events")
NDJSON = {**BANK, "Content-Type": "application/x-ndjson"}


@pytest.fixture
def platform(
    postgres_server: str, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[tuple[dict[str, str], dict[str, ServiceProcess]]]:
    """case- and contact-svc as processes on fresh databases; their consumer groups start
    after what earlier tests left on the session's topics."""

    async def groups_at_end() -> None:
        for group in ("case-svc", "contact-svc"):
            await start_group_at_end(kafka_bootstrap, group, *TOPICS)

    asyncio.run(groups_at_end())
    clock = daytime_clock(tmp_path)
    dbs = {name: new_database(postgres_server, name) for name in ("case", "contact")}
    procs = {name: service(name, db, kafka_bootstrap, tmp_path, clock) for name, db in dbs.items()}
    dbs["clock_file"] = str(clock)
    try:
        for p in procs.values():
            p.start()
        yield dbs, procs
    finally:
        for p in procs.values():
            p.stop()


async def test_case_svc_killed_mid_import_then_the_same_file_again_gives_each_account_once(
    platform: tuple[dict[str, str], dict[str, ServiceProcess]],
) -> None:
    dbs, procs = platform
    case_db, case_proc = dbs["case"], procs["case"]
    run = uuid.uuid4().hex[:6]
    rng = random.Random(run)
    accounts = [account(run, i, rng) for i in range(ACCOUNTS)]
    lines = list(ndjson_lines(accounts))
    committed_at_kill: list[int] = []

    async def body_then_crash() -> AsyncIterator[bytes]:
        half = ACCOUNTS // 2
        for start in range(0, half, 500):
            yield b"".join(lines[start : start + 500])

        async def some_committed() -> bool:
            return count(case_db, "SELECT count(*) FROM cases") >= 2000

        await wait_until(some_committed, timeout=60, what="case-svc to commit a few chunks")
        case_proc.kill()  # SIGKILL, with the second half of the file not yet sent
        committed_at_kill.append(count(case_db, "SELECT count(*) FROM cases"))
        for start in range(half, ACCOUNTS, 500):
            yield b"".join(lines[start : start + 500])

    async with httpx.AsyncClient(base_url=case_proc.url, timeout=120) as http:
        with pytest.raises(httpx.TransportError):
            await http.post("/v1/accounts/import-ndjson", content=body_then_crash(), headers=NDJSON)
    before = committed_at_kill[0]
    assert 0 < before < ACCOUNTS  # the crash came mid-flight

    case_proc.start()
    async with httpx.AsyncClient(base_url=case_proc.url, timeout=300) as http:
        r = await http.post("/v1/accounts/import-ndjson", content=b"".join(lines), headers=NDJSON)
    assert r.status_code == 200, (r.text, case_proc.log_tail())
    summary = r.json()
    assert summary["rejected"] == 0
    assert summary["created"] + summary["updated"] + summary["unchanged"] == ACCOUNTS
    assert summary["created"] == ACCOUNTS - before
    assert summary["unchanged"] == before  # applied before the crash, not applied again

    assert count(case_db, "SELECT count(*) FROM cases") == ACCOUNTS
    assert count(case_db, "SELECT count(DISTINCT contract_no) FROM cases") == ACCOUNTS
    imported = "SELECT count(*) FROM outbox WHERE event_type = 'case.imported.v1'"
    assert count(case_db, imported) == ACCOUNTS
    per_case = "SELECT count(DISTINCT key) FROM outbox WHERE event_type = 'case.imported.v1'"
    assert count(case_db, per_case) == ACCOUNTS

    contact_db = dbs["contact"]

    async def read_model_complete() -> bool:
        return count(contact_db, "SELECT count(*) FROM contact_cases") >= ACCOUNTS

    await wait_until(read_model_complete, timeout=90, what="contact-svc to apply every case")
    assert count(contact_db, "SELECT count(*) FROM contact_cases") == ACCOUNTS
    print(  # figures for docs/reliability.md (shown with -s)
        f"\nkilled with {before} of {ACCOUNTS} accounts committed; re-sent file: "
        f"{summary['created']} created, {summary['unchanged']} unchanged, "
        f"{summary['updated']} updated"
    )
    # each imported event applied once by contact-svc (a redelivery is recorded, not re-run)
    applied = "SELECT count(*) FROM processed_events"
    assert count(contact_db, applied) >= ACCOUNTS


DELIVERIES = 10_000
CASES = 1_000
DIALER_PARALLELISM = 8  # deliveries the dialer has in flight at once


async def in_parallel(items: Iterable[int], work: Callable[[int], Awaitable[None]]) -> None:
    """Run ``work`` over ``items`` in order with at most ``DIALER_PARALLELISM`` in flight."""
    queue = iter(items)

    async def worker() -> None:
        for n in queue:
            await work(n)

    await asyncio.gather(*(worker() for _ in range(DIALER_PARALLELISM)))


async def test_contact_svc_killed_mid_webhook_stream_then_the_dialer_retries_each_applied_once(
    platform: tuple[dict[str, str], dict[str, ServiceProcess]],
) -> None:
    dbs, procs = platform
    contact_db, contact_proc = dbs["contact"], procs["contact"]
    clock = OffsetFileClock(Path(dbs["clock_file"]))  # each attempt is signed afresh
    run = uuid.uuid4().hex[:6]
    rng = random.Random(run)
    async with httpx.AsyncClient(base_url=procs["case"].url, headers=BANK, timeout=30) as case:
        r = await case.post(
            "/v1/accounts/import", json={"accounts": [account(run, i, rng) for i in range(CASES)]}
        )
        assert r.status_code == 200, r.text
        ids = [row["case_id"] for row in r.json()["rows"]]
        found: dict[int, tuple[str, str]] = {}

        async def look_up(i: int) -> None:
            got = (await case.get(f"/v1/cases/{ids[i]}")).json()
            found[i] = (got["id"], got["debtor_id"])

        await in_parallel(range(CASES), look_up)
        cases = [found[i] for i in range(CASES)]

    async def known() -> bool:
        return count(contact_db, "SELECT count(*) FROM contact_cases") == CASES

    await wait_until(known, timeout=60, what="contact-svc to know the cases")

    def delivery(n: int) -> dict[str, Any]:
        case_id, debtor_id = cases[n % CASES]
        return {
            "delivery_id": f"dlv-{run}-{n}",
            "event": "ended",
            "call_id": f"call-{run}-{n}",
            "case_id": case_id,
            "debtor_id": debtor_id,
            "agent_id": f"agent-{run}",
            "at": (DAYTIME + timedelta(seconds=n)).isoformat(),
            "duration_seconds": 60,
            "disposition": "answered",
            "recording_uri": f"s3://recordings/{run}/{n}.ogg",
            "speech_rate_wpm": 140.0,
            "volume_db": -18.0,
        }

    answered: dict[int, dict[str, Any]] = {}
    killed = asyncio.Event()

    async def send(http: httpx.AsyncClient, n: int) -> None:
        raw, headers = signed_call(delivery(n), clock.now())
        try:
            r = await http.post("/v1/webhooks/dialer/calls", content=raw, headers=headers)
        except httpx.TransportError:
            return  # no answer: the dialer retries it
        assert r.status_code == 200, r.text
        answered[n] = r.json()
        if len(answered) >= DELIVERIES // 2 and not killed.is_set():
            killed.set()
            contact_proc.kill()

    async with httpx.AsyncClient(base_url=contact_proc.url, timeout=30) as http:
        await in_parallel(range(DELIVERIES), lambda n: send(http, n))
    assert killed.is_set() and DELIVERIES // 2 <= len(answered) < DELIVERIES
    first_answers = dict(answered)

    contact_proc.start()
    unanswered = [n for n in range(DELIVERIES) if n not in first_answers]
    retried_answered = sorted(first_answers)[-10:]  # answers lost on the way back
    applied_unanswered = 0

    async def retry(http: httpx.AsyncClient, n: int) -> None:
        nonlocal applied_unanswered
        raw, headers = signed_call(delivery(n), clock.now())
        r = await http.post("/v1/webhooks/dialer/calls", content=raw, headers=headers)
        assert r.status_code == 200, (r.text, contact_proc.log_tail())
        again = r.json()
        if n not in first_answers and again.get("duplicate"):
            applied_unanswered += 1  # committed just before the crash, answer lost
        if n in first_answers:  # the first answer, marked as a duplicate; nothing re-applied
            assert again.pop("duplicate") is True
            assert again == {k: v for k, v in first_answers[n].items() if k != "duplicate"}

    async with httpx.AsyncClient(base_url=contact_proc.url, timeout=30) as http:
        await in_parallel(unanswered + retried_answered, lambda n: retry(http, n))

    ours = f"call-{run}-%"
    assert count(contact_db, "SELECT count(*) FROM calls WHERE call_id LIKE %s", ours) == (
        DELIVERIES
    )
    assert count(contact_db, "SELECT count(*) FROM dialer_deliveries") == DELIVERIES
    completed = "SELECT count(*) FROM outbox WHERE event_type = 'contact.call_completed.v1'"
    assert count(contact_db, completed) == DELIVERIES
    attempts = "SELECT count(*) FROM contact_attempts"
    assert count(contact_db, attempts) == DELIVERIES  # each call counted once (CALL-DAILY-CAP)
    print(  # figures for docs/reliability.md (shown with -s)
        f"\n{len(first_answers)} of {DELIVERIES} answered before the kill; "
        f"{len(unanswered)} retried, {applied_unanswered} of them already applied"
    )
