"""contact_decision: the dialer's pre-dial decision (POST /v1/contact-decisions) on one
contact-svc process over HTTP, as a ratio against a bare FastAPI endpoint returning a
constant on the same server settings, same run (issue 4).

- service: contact-svc runs as its own uvicorn process (ServiceProcess) on a fresh database,
  with Kafka (its outbox relay publishes contact.attempted / contact.denied as in
  production). The read model (debtors, contact_cases) is filled by SQL straight into the
  service's tables: one case per debtor, in an ``Etc/GMT±N`` zone chosen so that the debtor's
  local time is about 10:00 now (outside CALL-QUIET). Every request is a ``call`` for a debtor
  not asked about before in this run, so CALL-DAILY-CAP never denies; allowed / denied counts
  are reported anyway.
- bare (baseline): a FastAPI app with one POST endpoint returning a constant, run with
  ``python -m uvicorn <module>:create_app --factory --host 127.0.0.1 --port P
  --no-access-log``: the flags ServiceProcess gives the service.

Load, from this process over loopback with bench/lean_http (keep-alive HTTP/1.1 over
asyncio streams: tens of microseconds of client CPU a request, where httpx spends more
than a millisecond):
(a) closed loop: CONCURRENCY clients, REQUESTS requests in all, as fast as answered.
    ratio = service rate / bare rate; goal >= 0.5.
(b) open loop: OPEN_RPS requests/s offered for OPEN_SECONDS, sends scheduled at fixed
    intervals whatever the answers; latency counted from the scheduled send time (no
    coordinated omission). p99 of the service < 20 ms is the goal; the bare endpoint's p99
    under the same load is reported as the floor of the harness.
CPU seconds of the server process and of this (client) process are reported for each phase,
to tell a client-bound measurement from a server-bound one.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from lean_http import LeanClient, LeanHttpError
from machine_cpu import cpu_by_command, cpu_spent

from collect_common.settings import DEV_API_KEYS
from collect_common.testing.infra import async_url, create_database, drop_database, free_port
from collect_common.testing.processes import ServiceProcess

REQUESTS = int(os.environ.get("CONTACT_DECISION_REQUESTS", "5000"))
CONCURRENCY = int(os.environ.get("CONTACT_DECISION_CONCURRENCY", "32"))
OPEN_RPS = int(os.environ.get("CONTACT_DECISION_RPS", "1000"))
OPEN_SECONDS = float(os.environ.get("CONTACT_DECISION_SECONDS", "5"))
OPEN_CONNECTIONS = 256
WARMUP = 200
JSON = {"Content-Type": "application/json"}
GOAL = 0.5
P99_GOAL_MS = 20.0
TIMEOUT_S = 30.0
PHASE_TIMEOUT_S = 300.0
API_KEY = DEV_API_KEYS["dialer"][1]
PATH = "/v1/contact-decisions"
LOCAL_HOUR = 10  # CALL-QUIET is 12:00-14:00 and 20:00-08:00 by default
BARE_APP = '''"""A bare FastAPI endpoint returning a constant (bench/contact_decision.py)."""

from fastapi import FastAPI, Request

ANSWER = {"decision_id": "00000000-0000-0000-0000-000000000000", "allowed": True,
          "denials": [], "next_allowed_at": None, "debtor_id": "d", "case_id": "c"}


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/v1/contact-decisions")
    async def decide(request: Request) -> dict:
        await request.body()
        return ANSWER

    return app
'''


def open_count() -> int:
    return int(OPEN_RPS * OPEN_SECONDS)


def header(kafka_kind: str, pg_kind: str) -> str:
    return (
        f"contact_decision: closed loop {REQUESTS:,} requests x {CONCURRENCY} clients, open loop "
        f"{OPEN_RPS:,}/s for {OPEN_SECONDS:g}s; Kafka {kafka_kind}, PostgreSQL {pg_kind}"
    )


def zone_for_local_hour(hour: int = LOCAL_HOUR, now: datetime | None = None) -> str:
    """An ``Etc/GMT±N`` zone in which it is ``hour``:xx now (POSIX signs: Etc/GMT-3 is UTC+3)."""
    now = now or datetime.now(UTC)
    offset = (hour - now.hour + 12) % 24 - 12  # -12 .. +11
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


# --- processes -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class BareProcess(ServiceProcess):
    """The bare app, started exactly as ServiceProcess starts a service."""

    def __init__(self, port: int, app_dir: Path, log_dir: Path) -> None:
        super().__init__("bare", port, {"PYTHONPATH": str(app_dir)}, log_dir)

    def start(self, timeout: float = 60) -> BareProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench_bare_app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_healthy(timeout)
        return self


# --- load ------------------------------------------------------------------------------------


def _client(url: str, connections: int) -> LeanClient:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return LeanClient(parts.hostname, parts.port, {"X-API-Key": API_KEY}, connections)


def _tally(answers: list[dict[str, Any]], tally: dict[str, int]) -> None:
    for a in answers:
        tally["allowed" if a.get("allowed") else "denied"] += 1
        for d in a.get("denials") or []:
            tally[d["rule"]] = tally.get(d["rule"], 0) + 1


async def closed_loop(url: str, bodies: list[bytes], pid: int) -> dict[str, Any]:
    """CONCURRENCY workers take the next body until none is left; rate = n / wall time."""
    queue = iter(bodies)
    answers: list[dict[str, Any]] = []
    errors: list[str] = []
    latencies: list[float] = []

    # One keep-alive connection per worker (bench/lean_http: a client light enough that the
    # harness is not the bottleneck).
    http = _client(url, CONCURRENCY)
    try:

        async def worker() -> None:
            for body in queue:  # the shared iterator: each body goes to one worker
                t0 = time.perf_counter()
                status, text = await http.post(PATH, body)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(f"{status}: {text[:200]!r}")
                    continue
                answers.append(json.loads(text))

        srv0, cli0, all0 = cpu_seconds(pid), time.process_time(), cpu_by_command()
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(CONCURRENCY))), PHASE_TIMEOUT_S
        )
        elapsed = time.perf_counter() - started
        srv, cli = cpu_seconds(pid) - srv0, time.process_time() - cli0
        others = cpu_spent(all0, cpu_by_command())
    finally:
        await http.aclose()
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(bodies)} failed, first: {errors[0]}")
    return {
        "per_s": len(bodies) / elapsed,
        "seconds": elapsed,
        "p50_ms": _pct(latencies, 50),
        "p99_ms": _pct(latencies, 99),
        "server_cpu": srv / elapsed,
        "client_cpu": cli / elapsed,
        "server_cpu_us": srv * 1e6 / len(bodies),
        "machine_cpu_us": others["machine"] * 1e6 / len(bodies),
        "postgres_cpu_us": others["postgres"] * 1e6 / len(bodies),
        "answers": answers,
    }


async def open_loop(url: str, bodies: list[bytes], pid: int) -> dict[str, Any]:
    """One send every 1/OPEN_RPS s on a fixed schedule, whatever the answers; latency from the
    scheduled instant to the answer (a late send counts as late)."""
    interval = 1.0 / OPEN_RPS
    latencies: list[float] = []
    answers: list[dict[str, Any]] = []
    errors: list[str] = []
    send_lag: list[float] = []

    # Up to OPEN_CONNECTIONS keep-alive connections: a send finding them all busy waits for
    # one, and its latency still counts from its scheduled instant.
    http = _client(url, OPEN_CONNECTIONS)
    try:

        async def one(body: bytes, due: float) -> None:
            send_lag.append(time.perf_counter() - due)
            try:
                status, text = await http.post(PATH, body)
            except (OSError, LeanHttpError, asyncio.IncompleteReadError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            latencies.append(time.perf_counter() - due)
            if status != 200:
                errors.append(f"{status}: {text[:200]!r}")
                return
            answers.append(json.loads(text))

        tasks: list[asyncio.Task[None]] = []
        srv0, cli0, all0 = cpu_seconds(pid), time.process_time(), cpu_by_command()
        start = time.perf_counter() + 0.05
        for i, body in enumerate(bodies):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, due)))
        offered_s = time.perf_counter() - start
        await asyncio.wait_for(asyncio.gather(*tasks), PHASE_TIMEOUT_S)
        elapsed = time.perf_counter() - start
        srv, cli = cpu_seconds(pid) - srv0, time.process_time() - cli0
        others = cpu_spent(all0, cpu_by_command())
    finally:
        await http.aclose()
    return {
        "server_cpu_us": srv * 1e6 / len(bodies),
        "machine_cpu_us": others["machine"] * 1e6 / len(bodies),
        "postgres_cpu_us": others["postgres"] * 1e6 / len(bodies),
        "offered_per_s": len(bodies) / offered_s,
        "seconds": elapsed,
        "p50_ms": _pct(latencies, 50),
        "p90_ms": _pct(latencies, 90),
        "p99_ms": _pct(latencies, 99),
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "send_lag_p99_ms": _pct(send_lag, 99),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "server_cpu": srv / elapsed,
        "client_cpu": cli / elapsed,
        "answers": answers,
    }


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] * 1000


# --- the two sides ---------------------------------------------------------------------------


async def seed(url: str, debtors: int, timezone: str, tag: str) -> None:
    """One debtor and one active case each, as case.imported would leave them."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "debtors",
            records=[(f"dbt-{tag}-{i}", timezone, now) for i in range(debtors)],
            columns=["debtor_id", "timezone", "updated_at"],
        )
        await conn.copy_records_to_table(
            "contact_cases",
            records=[
                (f"case-{tag}-{i}", f"dbt-{tag}-{i}", "bank-a", "active", None, None, now)
                for i in range(debtors)
            ],
            columns=[
                *("case_id", "debtor_id", "bank_id", "status"),
                *("track", "channels", "updated_at"),
            ],
        )
        await conn.execute("ANALYZE debtors; ANALYZE contact_cases")
    finally:
        await conn.close()


def decision_bodies(tag: str, first: int, n: int) -> list[bytes]:
    return [
        (f'{{"case_id":"case-{tag}-{i}","channel":"call","agent_id":"agent-{i % 50}"}}').encode()
        for i in range(first, first + n)
    ]


def bare_bodies(n: int) -> list[bytes]:
    return [
        f'{{"case_id":"case-{i}","channel":"call","agent_id":"agent-{i % 50}"}}'.encode()
        for i in range(n)
    ]


async def run_service(
    bootstrap: str, server_url: str, log_dir: Path
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    name = f"bench_contact_{uuid.uuid4().hex[:8]}"
    create_database(server_url, name)
    url = server_url.rsplit("/", 1)[0] + "/" + name
    proc = ServiceProcess(
        "contact",
        free_port(),
        {
            "DATABASE_URL": async_url(url),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ENVIRONMENT": "test",
        },
        log_dir,
    )
    try:
        await asyncio.to_thread(proc.start, 120)
        assert proc.proc is not None
        timezone = zone_for_local_hour()
        tag = uuid.uuid4().hex[:6]
        n_open = open_count()
        total = WARMUP + REQUESTS + n_open
        await seed(url, total, timezone, tag)
        warm = await closed_loop(proc.url, decision_bodies(tag, 0, WARMUP), proc.proc.pid)
        closed = await closed_loop(proc.url, decision_bodies(tag, WARMUP, REQUESTS), proc.proc.pid)
        await asyncio.sleep(1)  # let the relay catch up before the latency phase
        opened = await open_loop(
            proc.url, decision_bodies(tag, WARMUP + REQUESTS, n_open), proc.proc.pid
        )
        tally: dict[str, int] = {"allowed": 0, "denied": 0}
        _tally(closed["answers"] + opened["answers"], tally)
        conn = await asyncpg.connect(url)
        try:
            attempts = await conn.fetchval("SELECT count(*) FROM contact_attempts")
            denials = await conn.fetchval("SELECT count(*) FROM contact_denials")
        finally:
            await conn.close()
        info = {
            "timezone": timezone,
            "local_time": datetime.now(UTC).astimezone(_zone(timezone)).strftime("%H:%M"),
            "tally": tally,
            "warmup_allowed": sum(1 for a in warm["answers"] if a["allowed"]),
            "attempts_rows": attempts,
            "denial_rows": denials,
        }
        return closed, opened, info
    finally:
        await asyncio.to_thread(proc.stop)
        drop_database(server_url, name)


def _zone(name: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


async def run_bare(log_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    app_dir = Path(tempfile.mkdtemp(prefix="bench-bare-app-"))
    (app_dir / "bench_bare_app.py").write_text(BARE_APP)
    proc = BareProcess(free_port(), app_dir, log_dir)
    try:
        await asyncio.to_thread(proc.start, 60)
        assert proc.proc is not None
        await closed_loop(proc.url, bare_bodies(WARMUP), proc.proc.pid)
        closed = await closed_loop(proc.url, bare_bodies(REQUESTS), proc.proc.pid)
        opened = await open_loop(proc.url, bare_bodies(open_count()), proc.proc.pid)
        return closed, opened
    finally:
        await asyncio.to_thread(proc.stop)


async def bench(bootstrap: str, server_url: str) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-contact-decision-"))
    bare_closed, bare_open = await run_bare(log_dir)
    svc_closed, svc_open, info = await run_service(bootstrap, server_url, log_dir)
    ratio = svc_closed["per_s"] / bare_closed["per_s"]
    p99 = svc_open["p99_ms"]
    print(
        f"  bare {bare_closed['per_s']:,.0f}/s (server CPU {bare_closed['server_cpu']:.0%}, "
        f"client CPU {bare_closed['client_cpu']:.0%}); contact-svc {svc_closed['per_s']:,.0f}/s "
        f"(server CPU {svc_closed['server_cpu']:.0%}, client CPU {svc_closed['client_cpu']:.0%})"
        f"\n  open loop {OPEN_RPS}/s: contact-svc p50 {svc_open['p50_ms']:.1f} ms p99 "
        f"{p99:.1f} ms max {svc_open['max_ms']:.1f} ms; bare p99 {bare_open['p99_ms']:.1f} ms"
        f"\n  CPU per decision, closed loop: contact-svc {svc_closed['server_cpu_us']:.0f} us, "
        f"PostgreSQL {svc_closed['postgres_cpu_us']:.0f} us, machine "
        f"{svc_closed['machine_cpu_us']:.0f} us (bare: server {bare_closed['server_cpu_us']:.0f} "
        f"us, machine {bare_closed['machine_cpu_us']:.0f} us); open loop: contact-svc "
        f"{svc_open['server_cpu_us']:.0f} us, PostgreSQL {svc_open['postgres_cpu_us']:.0f} us"
        f"\n  debtors in {info['timezone']} (local {info['local_time']}): {info['tally']}"
        f"\n  logs in {log_dir}",
        flush=True,
    )
    figures: dict[str, Any] = {
        "requests": REQUESTS,
        "concurrency": CONCURRENCY,
        "decisions_per_s": round(svc_closed["per_s"]),
        "bare_per_s": round(bare_closed["per_s"]),
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "meets_goal": ratio >= GOAL,
        "server_cpu_us_per_decision": round(svc_closed["server_cpu_us"]),
        "postgres_cpu_us_per_decision": round(svc_closed["postgres_cpu_us"]),
        "machine_cpu_us_per_decision": round(svc_closed["machine_cpu_us"]),
        "bare_server_cpu_us_per_request": round(bare_closed["server_cpu_us"]),
        "bare_machine_cpu_us_per_request": round(bare_closed["machine_cpu_us"]),
        "open_server_cpu_us_per_decision": round(svc_open["server_cpu_us"]),
        "open_postgres_cpu_us_per_decision": round(svc_open["postgres_cpu_us"]),
        "closed_p50_ms": round(svc_closed["p50_ms"], 2),
        "closed_p99_ms": round(svc_closed["p99_ms"], 2),
        "bare_closed_p99_ms": round(bare_closed["p99_ms"], 2),
        "p99_ms_at_1000_rps": round(p99, 2),
        "p99_goal_ms": P99_GOAL_MS,
        "meets_p99_goal": p99 < P99_GOAL_MS and svc_open["errors"] == 0,
        "open_rps_offered": round(svc_open["offered_per_s"]),
        "open_requests": open_count(),
        "open_p50_ms": round(svc_open["p50_ms"], 2),
        "open_p90_ms": round(svc_open["p90_ms"], 2),
        "open_max_ms": round(svc_open["max_ms"], 2),
        "open_errors": svc_open["errors"],
        "open_send_lag_p99_ms": round(svc_open["send_lag_p99_ms"], 2),
        "bare_p99_ms_at_1000_rps": round(bare_open["p99_ms"], 2),
        "allowed": info["tally"]["allowed"],
        "denied": info["tally"]["denied"],
        "denial_rules": {k: v for k, v in info["tally"].items() if k not in ("allowed", "denied")},
        "debtor_timezone": info["timezone"],
        "server_cpu_closed": round(svc_closed["server_cpu"], 2),
        "client_cpu_closed": round(svc_closed["client_cpu"], 2),
        "bare_server_cpu_closed": round(bare_closed["server_cpu"], 2),
        "bare_client_cpu_closed": round(bare_closed["client_cpu"], 2),
        "server_cpu_open": round(svc_open["server_cpu"], 2),
        "client_cpu_open": round(svc_open["client_cpu"], 2),
        "cpus": os.cpu_count(),
    }
    if svc_open["first_error"]:
        figures["open_first_error"] = svc_open["first_error"]
    return {"contact_decision": figures}


if __name__ == "__main__":
    import run

    sys.exit(run.main(["contact_decision"]))
