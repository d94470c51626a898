"""case_import: bulk intake of overdue accounts through case-svc's HTTP API, as a ratio
against PostgreSQL COPY of the same rows, same run (issue 3).

- api: case-svc runs as its own uvicorn process (ServiceProcess) on a fresh database, with
  Kafka, so its outbox relay publishes the events while the import runs, as in production.
  CASE_IMPORT_ACCOUNTS accounts (default 100,000) go to POST /v1/accounts/import as the
  bank's core system sends them: requests of 10,000, one after the other, bodies serialized
  before the clock starts. Rate = accounts / time from the first request to the last answer.
  When the service offers POST /v1/accounts/import-ndjson, the same accounts also go through
  that form, in a process and database of their own (CASE_IMPORT_NDJSON=0 skips it).
- copy (baseline): asyncpg ``copy_records_to_table`` of the same rows, with the columns the
  ``cases`` table holds but plain values (no encryption, no blind index), into a bare table
  with no key and no index, in a fresh database.

ratio = api rate / COPY rate; goal >= 0.2. The case-svc process's resident memory is sampled
every 0.2 s from before the first request until the outbox has drained; its peak should stay
under 300 MB. The service process's CPU time (/proc) is reported too, per account, for the
import and until the outbox has drained: how close its one event loop is to a full core,
and how much the relay adds; and, while importing and while copying, the CPU of the whole
machine, of PostgreSQL's processes and of the broker, per account. BENCH_REPEAT repeats
(default 1), each on fresh databases; medians of the rates and the highest peak are reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from machine_cpu import cpu_by_command, cpu_spent

from collect_common.settings import DEV_API_KEYS
from collect_common.testing.infra import async_url, create_database, drop_database, free_port
from collect_common.testing.processes import ServiceProcess

N = int(os.environ.get("CASE_IMPORT_ACCOUNTS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
NDJSON = os.environ.get("CASE_IMPORT_NDJSON", "1") != "0"
BATCH = 10_000
GOAL = 0.2
RSS_GOAL_MB = 300
SAMPLE_S = 0.2
DRAIN_TIMEOUT_S = 600.0
API_KEY = DEV_API_KEYS["bank-core"][1]
JSON_PATH = "/v1/accounts/import"
NDJSON_PATH = "/v1/accounts/import-ndjson"

# The cases table's columns (case_svc.adapters.tables.cases), plain types: the personal
# fields are text here instead of ciphertext.
COPY_TABLE = "cases_copy"
COPY_DDL = f"""
CREATE TABLE {COPY_TABLE} (
    id varchar(36) NOT NULL,
    bank_id varchar(64) NOT NULL,
    contract_no varchar(64) NOT NULL,
    debtor_id varchar(64) NOT NULL,
    national_id_index varchar(64) NOT NULL,
    name text NOT NULL,
    national_id text NOT NULL,
    phones text NOT NULL,
    address text,
    principal numeric(18, 2) NOT NULL,
    interest numeric(18, 2) NOT NULL,
    fees numeric(18, 2) NOT NULL,
    paid_total numeric(18, 2) NOT NULL,
    overdue_since date NOT NULL,
    debtor_timezone varchar(64) NOT NULL,
    history varchar(32) NOT NULL,
    willingness varchar(32) NOT NULL,
    bucket varchar(8) NOT NULL,
    track varchar(16) NOT NULL,
    channels varchar(200) NOT NULL,
    strategy_rule varchar(100),
    strategy_version varchar(40) NOT NULL,
    strategy_reason text NOT NULL,
    status varchar(20) NOT NULL,
    agent_id varchar(64),
    team_id varchar(64),
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL
)
"""
COPY_COLUMNS = [
    line.split()[0] for line in COPY_DDL.strip().splitlines()[1:-1] if line.strip() != ")"
]


def header(kafka_kind: str, pg_kind: str) -> str:
    return (
        f"case_import: {N:,} accounts in requests of {BATCH:,} x {REPEAT} runs; "
        f"Kafka {kafka_kind}, PostgreSQL {pg_kind}"
    )


# --- the data --------------------------------------------------------------------------------


def national_id(serial: int) -> str:
    """A valid GB 11643 number (region, birth date, order, check character); distinct for
    every serial below 13,440,000."""
    order, day = serial % 1000, serial // 1000 % 28 + 1
    month, year = serial // 28_000 % 12 + 1, 1960 + serial // 336_000 % 40
    body = f"110105{year:04d}{month:02d}{day:02d}{order:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def accounts(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "contract_no": f"LN-{tag}-{i:07d}",
            "name": "张三" if i % 2 else "李四",
            "national_id": national_id(i),
            "phones": [f"139{i:08d}"],
            "address": "北京市朝阳区建国路88号",
            "principal": f"{1000 + i % 50_000}.00",
            "interest": f"{i % 500}.25",
            "fees": "50.00",
            "overdue_since": f"2026-{i % 9 + 1:02d}-{i % 28 + 1:02d}",
            "debtor_timezone": "Asia/Shanghai",
            "history": "good",
        }
        for i in range(n)
    ]


def copy_records(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as the cases table would hold them, plain (no cipher, no keyed hashes)."""
    now = datetime.now(UTC)
    records = []
    for a in rows:
        values = {
            "id": str(uuid.uuid4()),
            "bank_id": "bank-core",
            "contract_no": a["contract_no"],
            "debtor_id": "dbt_" + a["national_id"],
            "national_id_index": a["national_id"],
            "name": a["name"],
            "national_id": a["national_id"],
            "phones": json.dumps(a["phones"]),
            "address": a["address"],
            "principal": Decimal(a["principal"]),
            "interest": Decimal(a["interest"]),
            "fees": Decimal(a["fees"]),
            "paid_total": Decimal("0.00"),
            "overdue_since": date.fromisoformat(a["overdue_since"]),
            "debtor_timezone": a["debtor_timezone"],
            "history": a["history"],
            "willingness": "unknown",
            "bucket": "M3",
            "track": "standard",
            "channels": "sms,call",
            "strategy_rule": "default",
            "strategy_version": "v1",
            "strategy_reason": "bench: plain values",
            "status": "open",
            "agent_id": None,
            "team_id": None,
            "opened_at": now,
            "updated_at": now,
            "version": 1,
        }
        records.append(tuple(values[c] for c in COPY_COLUMNS))
    return records


# --- memory ----------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    try:
        import psutil
    except ImportError:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0
    return int(psutil.Process(pid).memory_info().rss)


class RssSampler:
    """The peak resident memory of ``pid``, read every SAMPLE_S on a thread of its own."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, rss_bytes(self.pid))
                self.samples += 1
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the two sides ---------------------------------------------------------------------------


def _fresh_db(server_url: str, label: str) -> tuple[str, str]:
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    create_database(server_url, name)
    return name, server_url.rsplit("/", 1)[0] + "/" + name


async def copy_rate(server_url: str, records: list[tuple[Any, ...]]) -> float:
    name, url = _fresh_db(server_url, "copy")
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(COPY_DDL)
            cpu0 = cpu_by_command()
            started = time.perf_counter()
            await conn.copy_records_to_table(COPY_TABLE, records=records, columns=COPY_COLUMNS)
            rate = len(records) / (time.perf_counter() - started)
            COPY_CPU.append(cpu_spent(cpu0, cpu_by_command()))
            copied = await conn.fetchval(f"SELECT count(*) FROM {COPY_TABLE}")  # noqa: S608
            assert copied == len(records), f"COPY wrote {copied} of {len(records)}"
            return rate
        finally:
            await conn.close()
    finally:
        drop_database(server_url, name)


def _bodies(rows: list[dict[str, Any]], form: str) -> list[bytes]:
    chunks = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    if form == "json":
        return [json.dumps({"accounts": c}, ensure_ascii=False).encode() for c in chunks]
    return ["".join(json.dumps(a, ensure_ascii=False) + "\n" for a in c).encode() for c in chunks]


async def api_import(
    bootstrap: str, server_url: str, rows: list[dict[str, Any]], form: str, log_dir: Path
) -> dict[str, Any]:
    """Import ``rows`` through a fresh case-svc process; rate, drain time and peak RSS."""
    path, content_type = (
        (JSON_PATH, "application/json") if form == "json" else (NDJSON_PATH, "application/x-ndjson")
    )
    bodies = _bodies(rows, form)
    warmup = _bodies(accounts(1, "warmup-" + uuid.uuid4().hex[:6]), form)[0]
    name, url = _fresh_db(server_url, f"case_{form}")
    proc = ServiceProcess(
        "case",
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
        pg = await asyncpg.connect(url)
        async with httpx.AsyncClient(
            base_url=proc.url,
            headers={"X-API-Key": API_KEY, "Content-Type": content_type},
            timeout=httpx.Timeout(900, connect=10),
        ) as http:
            # One account first, outside the clock: connections, caches, the relay's start.
            r = await http.post(path, content=warmup)
            if r.status_code != 200:
                raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:500]}")
            rss_start = rss_bytes(proc.proc.pid)
            cpu_start = cpu_seconds(proc.proc.pid)
            others_start = cpu_by_command()
            answers = []
            with RssSampler(proc.proc.pid) as rss:
                started = time.perf_counter()
                for body in bodies:
                    r = await http.post(path, content=body)
                    if r.status_code != 200:
                        raise RuntimeError(
                            f"{path} answered {r.status_code}: {r.text[:500]}\n{proc.log_tail()}"
                        )
                    answers.append(r)
                elapsed = time.perf_counter() - started
                cpu_import = cpu_seconds(proc.proc.pid) - cpu_start
                others = cpu_spent(others_start, cpu_by_command())
                deadline = time.perf_counter() + DRAIN_TIMEOUT_S
                while await pg.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"outbox not drained {DRAIN_TIMEOUT_S:.0f}s after")
                    await asyncio.sleep(0.1)
                drained = time.perf_counter() - started
                cpu_drained = cpu_seconds(proc.proc.pid) - cpu_start
        created = sum(a.json()["created"] for a in answers)
        assert created == len(rows), f"{form}: {created} of {len(rows)} accounts created"
        published = await pg.fetchval("SELECT count(*) FROM outbox")
        await pg.close()
        return {
            "per_s": len(rows) / elapsed,
            "seconds": elapsed,
            "drained_s": drained,
            "events": published,
            "peak_rss_mb": rss.peak / 2**20,
            "start_rss_mb": rss_start / 2**20,
            "rss_samples": rss.samples,
            # the service's own CPU: how far it is from using one core fully (GIL-bound)
            "service_cpu_s": cpu_import,
            "service_cpu_drained_s": cpu_drained,
            # while importing: all CPUs, PostgreSQL's processes, the broker's
            "machine_cpu_s": others["machine"],
            "postgres_cpu_s": others["postgres"],
            "kafka_cpu_s": others["java"],
        }
    finally:
        await asyncio.to_thread(proc.stop)
        drop_database(server_url, name)


async def ndjson_available(bootstrap: str, server_url: str, log_dir: Path) -> bool:
    name, url = _fresh_db(server_url, "case_probe")
    proc = ServiceProcess(
        "case",
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
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
            r = await http.get("/openapi.json")
            return r.status_code == 200 and NDJSON_PATH in r.json().get("paths", {})
    finally:
        await asyncio.to_thread(proc.stop)
        drop_database(server_url, name)


COPY_CPU: list[dict[str, float]] = []  # cpu_spent of each COPY run


def _per_account(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs) * 1e6 / N, 1)


async def bench(bootstrap: str, server_url: str) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-case-import-"))
    forms = ["json"]
    if NDJSON and await ndjson_available(bootstrap, server_url, log_dir):
        forms.append("ndjson")
    copy_rates: list[float] = []
    runs: dict[str, list[dict[str, Any]]] = {f: [] for f in forms}
    for rep in range(REPEAT):
        tag = f"r{rep}-{uuid.uuid4().hex[:6]}"
        rows = accounts(N, tag)
        copy_rates.append(await copy_rate(server_url, copy_records(rows)))
        line = (
            f"  run {rep + 1}/{REPEAT}: COPY {copy_rates[-1]:,.0f}/s (machine "
            f"{COPY_CPU[-1]['machine'] * 1e6 / N:.1f} us a row, PostgreSQL "
            f"{COPY_CPU[-1]['postgres'] * 1e6 / N:.1f} us)"
        )
        for form in forms:
            try:
                got = await api_import(bootstrap, server_url, rows, form, log_dir)
            except Exception as exc:
                if form == "json":
                    raise
                got = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            runs[form].append(got)
            if "error" in got:
                line += f"  {form}: {got['error']}"
                continue
            line += (
                f"  API/{form} {got['per_s']:,.0f}/s ({got['seconds']:.1f}s, outbox drained at "
                f"{got['drained_s']:.1f}s, {got['events']:,} events, peak RSS "
                f"{got['peak_rss_mb']:.0f} MB, service CPU {got['service_cpu_s']:.1f}s "
                f"= {got['service_cpu_s'] / got['seconds']:.0%} of a core, "
                f"{got['service_cpu_drained_s']:.1f}s until drained; while importing, per "
                f"account: machine {got['machine_cpu_s'] * 1e6 / N:.0f} us, PostgreSQL "
                f"{got['postgres_cpu_s'] * 1e6 / N:.0f} us, "
                f"broker {got['kafka_cpu_s'] * 1e6 / N:.0f} us)"
            )
        print(line, flush=True)

    copy = statistics.median(copy_rates)
    json_runs = runs["json"]
    api = statistics.median(r["per_s"] for r in json_runs)
    peak = max(r["peak_rss_mb"] for r in json_runs)
    figures: dict[str, Any] = {
        "accounts": N,
        "batch": BATCH,
        "repeats": REPEAT,
        "api_per_s": round(api),
        "copy_per_s": round(copy),
        "api_runs": [round(r["per_s"]) for r in json_runs],
        "copy_runs": [round(x) for x in copy_rates],
        "ratio": round(api / copy, 3),
        "goal": GOAL,
        "meets_goal": api / copy >= GOAL,
        "api_seconds": round(statistics.median(r["seconds"] for r in json_runs), 2),
        "outbox_drained_seconds": round(statistics.median(r["drained_s"] for r in json_runs), 2),
        "events_published": json_runs[-1]["events"],
        "outbox_drained_per_s": round(N / statistics.median(r["drained_s"] for r in json_runs)),
        "service_cpu_us_per_account": round(
            statistics.median(r["service_cpu_s"] for r in json_runs) * 1e6 / N
        ),
        "machine_cpu_us_per_account": _per_account(json_runs, "machine_cpu_s"),
        "postgres_cpu_us_per_account": _per_account(json_runs, "postgres_cpu_s"),
        "kafka_cpu_us_per_account": _per_account(json_runs, "kafka_cpu_s"),
        "copy_machine_cpu_us_per_row": round(
            statistics.median(c["machine"] for c in COPY_CPU[-REPEAT:]) * 1e6 / N, 1
        ),
        "copy_postgres_cpu_us_per_row": round(
            statistics.median(c["postgres"] for c in COPY_CPU[-REPEAT:]) * 1e6 / N, 1
        ),
        "service_cpu_us_per_account_drained": round(
            statistics.median(r["service_cpu_drained_s"] for r in json_runs) * 1e6 / N
        ),
        "peak_rss_mb": round(peak, 1),
        "start_rss_mb": round(max(r["start_rss_mb"] for r in json_runs), 1),
        "rss_goal_mb": RSS_GOAL_MB,
        "meets_rss_goal": peak < RSS_GOAL_MB,
        "rss_source": "psutil" if _has_psutil() else "/proc/<pid>/status VmRSS",
    }
    if "ndjson" in runs:
        ok = [r for r in runs["ndjson"] if "error" not in r]
        if ok:
            nd = statistics.median(r["per_s"] for r in ok)
            nd_peak = max(r["peak_rss_mb"] for r in ok)
            figures.update(
                ndjson_per_s=round(nd),
                ndjson_ratio=round(nd / copy, 3),
                ndjson_meets_goal=nd / copy >= GOAL,
                ndjson_peak_rss_mb=round(nd_peak, 1),
                ndjson_meets_rss_goal=nd_peak < RSS_GOAL_MB,
            )
        else:
            figures["ndjson_error"] = runs["ndjson"][-1]["error"]
    print(f"  service logs in {log_dir}", flush=True)
    return {"case_import": figures}


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    import run

    sys.exit(run.main(["case_import"]))
