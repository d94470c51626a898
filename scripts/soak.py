"""Soak run: a steady mix of traffic against case-, contact- and complaint-svc as processes.

    make soak                      # SOAK_MINUTES (default 30)
    SOAK_MINUTES=2 make soak       # a short run

Kafka and PostgreSQL come from ``collect_common.testing.infra`` (the environment, else
Docker, else local processes). The mix, per second: one intake of 20 new accounts
(case-svc), about 20 pre-dial decisions and 5 signed dialer webhooks (contact-svc), and a
portal complaint every 5 s (complaint-svc). The services' clock is set to a weekday
morning so decisions are not all quiet-hours denials.

Every 10 s the resident set size (RSS) of each service process is sampled. At the end
it reports per process the first and last RSS, the RSS every 5 minutes and the slope of
a least-squares line through the samples, and through the second half of them (MiB per
hour: warm-up flattens, a leak shows as a slope that stays positive), and per
kind of request the count, the errors (anything not 2xx, and transport errors) and 429s
(the portal's rate limit, expected, not an error), and the count and duration of each
service's periodic full garbage collections (``gc_full_collection_seconds``). The figures
go to stdout and to ``var/soak.json``; the exit status is 1 when any request failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collect_common.clock import OffsetFile, OffsetFileClock
from collect_common.security.webhooks import sign
from collect_common.settings import DEV_API_KEYS, DEV_WEBHOOK_SECRETS
from collect_common.testing.identities import national_id
from collect_common.testing.infra import (
    async_url,
    create_database,
    free_port,
    resolve_kafka,
    resolve_postgres,
)
from collect_common.testing.processes import ServiceProcess

ROOT = Path(__file__).resolve().parents[1]
BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
DIALER = {"X-API-Key": DEV_API_KEYS["dialer"][1]}
KEY_ID, _, SECRET = DEV_WEBHOOK_SECRETS.partition(":")
DAYTIME = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
SERVICES = ("case", "contact", "complaint")
SAMPLE_SECONDS = 10.0


class Mix:
    def __init__(self, urls: dict[str, str], clock: OffsetFileClock) -> None:
        self.urls = urls
        self.clock = clock
        self.run = uuid.uuid4().hex[:6]
        self.rng = random.Random(self.run)  # noqa: S311 (traffic, not secrets)
        self.n = 0
        self.cases: list[tuple[str, str]] = []  # (case_id, debtor_id)
        self.known: list[tuple[str, str]] = []  # cases contact-svc has applied
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.limited: Counter[str] = Counter()
        self.first_error: dict[str, str] = {}

    def accounts(self, k: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(k):
            self.n += 1
            out.append(
                {
                    "contract_no": f"LN-SOAK-{self.run}-{self.n:07d}",
                    "name": "张三",
                    "national_id": national_id(self.rng),
                    "phones": [f"13{self.rng.randrange(10**9):09d}"],
                    "principal": "12000.00",
                    "interest": "350.25",
                    "fees": "50.00",
                    "overdue_since": "2027-02-10",
                    "debtor_timezone": "Asia/Shanghai",
                    "history": "good",
                }
            )
        return out

    async def call(self, kind: str, send: Any) -> httpx.Response | None:
        self.counts[kind] += 1
        try:
            r: httpx.Response = await send
        except httpx.TransportError as exc:
            self.errors[kind] += 1
            self.first_error.setdefault(kind, repr(exc))
            return None
        if r.status_code == 429:
            self.limited[kind] += 1
        elif not 200 <= r.status_code < 300:
            self.errors[kind] += 1
            self.first_error.setdefault(kind, f"{r.status_code} {r.text[:300]}")
        return r

    async def intake(self, http: httpx.AsyncClient, k: int = 20) -> None:
        r = await self.call(
            "intake",
            http.post(
                self.urls["case"] + "/v1/accounts/import",
                json={"accounts": self.accounts(k)},
                headers=BANK,
            ),
        )
        if r is not None and r.status_code == 200:
            for row in r.json()["rows"]:
                if row.get("case_id"):
                    self.cases.append((row["case_id"], row.get("debtor_id") or ""))

    async def decision(self, http: httpx.AsyncClient) -> None:
        case_id, _ = self.rng.choice(self.known)
        await self.call(
            "decision",
            http.post(
                self.urls["contact"] + "/v1/contact-decisions",
                json={"case_id": case_id, "channel": "call"},
                headers=DIALER,
            ),
        )

    async def wait_known(self, http: httpx.AsyncClient, timeout: float = 120) -> None:
        """Until contact-svc has applied the cases imported so far (the last one decides)."""
        deadline = time.monotonic() + timeout
        case_id = self.cases[-1][0]
        while time.monotonic() < deadline:
            r = await http.post(
                self.urls["contact"] + "/v1/contact-decisions",
                json={"case_id": case_id, "channel": "sms"},
                headers=DIALER,
            )
            if r.status_code == 200:
                self.known = list(self.cases)
                return
            await asyncio.sleep(0.5)
        raise TimeoutError("contact-svc did not apply the first cases")

    async def webhook(self, http: httpx.AsyncClient, debtors: dict[str, str]) -> None:
        case_id, _ = self.rng.choice(self.known)
        if case_id not in debtors:
            r = await http.get(self.urls["case"] + f"/v1/cases/{case_id}", headers=BANK)
            debtors[case_id] = r.json()["debtor_id"]
        self.n += 1
        now = self.clock.now()
        payload = {
            "delivery_id": f"soak-{self.run}-{self.n}",
            "event": "ended",
            "call_id": f"soak-call-{self.run}-{self.n}",
            "case_id": case_id,
            "debtor_id": debtors[case_id],
            "agent_id": f"agent-soak-{self.run}",
            "at": now.isoformat(),
            "duration_seconds": 60,
            "disposition": "answered",
            "recording_uri": f"s3://recordings/soak/{self.n}.ogg",
            "speech_rate_wpm": 140.0,
            "volume_db": -18.0,
        }
        raw = json.dumps(payload).encode()
        headers = sign(
            SECRET.encode(), int(now.timestamp()), str(payload["delivery_id"]), raw, key_id=KEY_ID
        )
        await self.call(
            "webhook",
            http.post(
                self.urls["contact"] + "/v1/webhooks/dialer/calls",
                content=raw,
                headers={**headers, **DIALER, "Content-Type": "application/json"},
            ),
        )

    async def portal(self, http: httpx.AsyncClient) -> None:
        case_id, _ = self.rng.choice(self.known)
        await self.call(
            "portal",
            http.post(
                self.urls["complaint"] + "/v1/portal/complaints",
                json={
                    "type": "attitude",
                    "complainant_name": "张三",
                    "complainant_contact": "13812345678",
                    "content": "催收员态度恶劣",
                    "case_id": case_id,
                },
            ),
        )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per hour."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    den = sum((t - mx) ** 2 for t, _ in samples)
    if den == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in samples) / den * 3600


async def full_collections(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The periodic full garbage collections of one service, from its /metrics."""
    text = (await http.get(url + "/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "gc_full_collection_seconds":
            for s in family.samples:
                if s.name.endswith("_count"):
                    out["count"] = s.value
                elif s.name.endswith("_sum"):
                    out["seconds"] = s.value
                elif s.name.endswith("_bucket") and s.labels.get("le") == "0.01":
                    out["under_10ms"] = s.value
        elif family.name == "gc_full_collection_objects":
            out["objects_freed"] = sum(s.value for s in family.samples if s.name.endswith("_total"))
    if out.get("count"):
        out["mean_ms"] = round(out["seconds"] / out["count"] * 1000, 2)
    return out


async def every(period: float, until: float, action: Any) -> None:
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while loop.time() < until:
        await action()
        next_at += period
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def soak(urls: dict[str, str], procs: list[ServiceProcess], clock_file: Path) -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    mix = Mix(urls, OffsetFileClock(clock_file))
    samples: dict[str, list[tuple[float, float]]] = {p.name: [] for p in procs}
    debtors: dict[str, str] = {}
    # An idle keep-alive connection is dropped by the client before uvicorn closes it (5 s):
    # with both at 5 s, the portal's request every 5 s could go out on a connection the
    # server was closing (a ReadError in earlier runs).
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        for _ in range(10):
            await mix.intake(http)
        await mix.wait_known(http)
        loop = asyncio.get_running_loop()
        started = loop.time()
        until = started + minutes * 60

        async def sample() -> None:
            for p in procs:
                assert p.proc is not None
                samples[p.name].append((loop.time() - started, rss_mib(p.proc.pid)))

        await asyncio.gather(
            every(1.0, until, lambda: mix.intake(http)),
            *(every(0.2, until, lambda: mix.decision(http)) for _ in range(4)),
            every(0.2, until, lambda: mix.webhook(http, debtors)),
            every(5.0, until, lambda: mix.portal(http)),
            every(SAMPLE_SECONDS, until + 0.1, sample),
        )
        collections = {p.name: await full_collections(http, p.url) for p in procs}
    report = {
        "minutes": minutes,
        "requests": dict(mix.counts),
        "errors": dict(mix.errors),
        "rate_limited": dict(mix.limited),
        "first_errors": mix.first_error,
        "rss_mib": {
            name: {
                "first": round(s[0][1], 1),
                "last": round(s[-1][1], 1),
                "samples": len(s),
                "slope_mib_per_hour": round(slope_per_hour(s), 1),
                # warm-up (caches, pools) flattens; a leak keeps its slope in the second half
                "second_half_slope_mib_per_hour": round(slope_per_hour(s[len(s) // 2 :]), 1),
                "every_5_min": [round(mib, 1) for t, mib in s if round(t) % 300 < SAMPLE_SECONDS],
            }
            for name, s in samples.items()
        },
        "gc_full_collections": collections,
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    out = ROOT / "var" / "soak.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    return 1 if sum(mix.errors.values()) else 0


def main() -> int:
    workdir = ROOT / "var" / f"soak-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    clock_file = workdir / "clock"
    OffsetFile(clock_file).write((DAYTIME - datetime.now(UTC)).total_seconds())
    with ExitStack() as stack:
        kafka = stack.enter_context(resolve_kafka())
        pg = stack.enter_context(resolve_postgres())
        procs = []
        urls = {}
        for name in SERVICES:
            db = create_database(pg.url, f"soak_{name}_{uuid.uuid4().hex[:8]}")
            env = {
                "DATABASE_URL": async_url(db),
                "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
                "ENVIRONMENT": "test",
                "CLOCK_FILE": str(clock_file),
                "LOG_JSON": "false",
            }
            proc = ServiceProcess(name, free_port(), env, workdir)
            procs.append(proc)
            urls[name] = proc.url
        try:
            for p in procs:
                p.start()
            return asyncio.run(soak(urls, procs, clock_file))
        finally:
            for p in procs:
                p.stop()
    return 1


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    print(f"soak finished in {time.monotonic() - t0:.0f}s, exit {code}", file=sys.stderr)
    sys.exit(code)
