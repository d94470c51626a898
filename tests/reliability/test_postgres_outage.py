"""PostgreSQL goes away under a running case-svc process: every API call answers 503
problem+json with Retry-After within a bounded time, /readyz says unready, and the
service recovers by itself when the database is back (no restart)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from reliability_kit import BANK, account, count, daytime_clock, new_database, service

from collect_common.testing.infra import LocalPostgres
from collect_common.testing.probe import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

BOUND = 12.0  # seconds: the longest an API call may take while the database is away
COMMAND_TIMEOUT = "4"  # DB_COMMAND_TIMEOUT_SECONDS of the service under test


async def _timed(
    http: httpx.AsyncClient, method: str, path: str, **kw: object
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = await http.request(method, path, **kw)  # type: ignore[arg-type]
    return r, time.monotonic() - started


def _assert_unavailable(r: httpx.Response, took: float, log: str) -> None:
    assert r.status_code == 503, (r.status_code, r.text, log)
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["status"] == 503
    assert took < BOUND, (took, log)


async def _calls_while_down(http: httpx.AsyncClient, case_id: str, log: str, run: str) -> None:
    body = {"accounts": [account(run, 999, random.Random(7))]}
    calls: list[tuple[str, str, dict[str, object]]] = [("GET", f"/v1/cases/{case_id}", {})] * 10 + [
        ("POST", "/v1/accounts/import", {"json": body})
    ] * 5
    results = await asyncio.gather(*(_timed(http, m, p, **kw) for m, p, kw in calls))
    for r, took in results:
        _assert_unavailable(r, took, log)
    ready, took = await _timed(http, "GET", "/readyz")
    assert ready.status_code == 503 and took < BOUND
    assert ready.json()["checks"]["database"] == "down"


async def _recovers(http: httpx.AsyncClient, case_id: str, run: str) -> None:
    async def ready() -> bool:
        return (await http.get("/readyz")).status_code == 200

    await wait_until(ready, timeout=30, what="/readyz to say ready again")
    r = await http.get(f"/v1/cases/{case_id}")
    assert r.status_code == 200, r.text
    r = await http.post(
        "/v1/accounts/import", json={"accounts": [account(run, 2, random.Random(2))]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1


async def _first_case(http: httpx.AsyncClient, run: str) -> str:
    """One account imported while the database is up: the case the calls later ask for."""
    r = await http.post(
        "/v1/accounts/import", json={"accounts": [account(run, 1, random.Random(1))]}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["rows"][0]["case_id"])


async def test_a_stopped_database_gives_bounded_503s_and_the_service_recovers_without_restart(
    restartable_postgres: LocalPostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    db = new_database(restartable_postgres.url, "case")
    proc = service("case", db, kafka_bootstrap, tmp_path, daytime_clock(tmp_path))
    proc.start()
    try:
        async with httpx.AsyncClient(base_url=proc.url, headers=BANK, timeout=60) as http:
            case_id = await _first_case(http, run)

            await restartable_postgres.astop()
            await _calls_while_down(http, case_id, proc.log_tail(), run)

            await restartable_postgres.astart()
            await _recovers(http, case_id, run)
        assert proc.proc is not None and proc.proc.poll() is None  # never restarted
        assert count(db, "SELECT count(*) FROM cases") == 2

        # the relay came back too: everything committed reaches the broker
        async def drained() -> bool:
            return count(db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        await wait_until(drained, timeout=30, what="the outbox to drain after the outage")
    finally:
        proc.stop()


def _cluster_pids(cluster: LocalPostgres) -> list[int]:
    """The postmaster and its children (the backends), by the cluster's pid file."""
    pid_file = cluster.data_dir / "data" / "postmaster.pid"
    postmaster = int(pid_file.read_text().splitlines()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


async def test_a_frozen_database_that_accepts_but_never_answers_still_gives_bounded_503s(
    restartable_postgres: LocalPostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The harder outage: the server's socket still accepts, nothing answers (a hung host,
    a partition that drops packets). Only the engine's own timeouts bound the wait."""
    run = uuid.uuid4().hex[:6]
    db = new_database(restartable_postgres.url, "case")
    proc = service(
        "case",
        db,
        kafka_bootstrap,
        tmp_path,
        daytime_clock(tmp_path),
        DB_COMMAND_TIMEOUT_SECONDS=COMMAND_TIMEOUT,
        DB_CONNECT_TIMEOUT_SECONDS="3",
    )
    proc.start()
    frozen: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=proc.url, headers=BANK, timeout=60) as http:
            case_id = await _first_case(http, run)

            frozen = _cluster_pids(restartable_postgres)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
            await _calls_while_down(http, case_id, proc.log_tail(), run)

            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
            frozen = []
            await _recovers(http, case_id, run)
        assert proc.proc is not None and proc.proc.poll() is None
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        proc.stop()
