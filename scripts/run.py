"""`make run`: the broker and the four services on this machine, until Ctrl-C.

Kafka (KRaft, one node) runs from the project's own jars with its data under
var/kafka; each service gets a SQLite database under var/ and its own port.
Environment: KAFKA_PORT (9092), BASE_PORT (8001: case, +1 contact, +2 complaint,
+3 qa). Stops everything it started on Ctrl-C or SIGTERM.

Once the services are ready it loads the demo portfolio through their APIs
(scripts/demo: agents, a few dozen accounts, an approved SMS template) unless
``--no-demo`` (or NO_DEMO=1), then prints the URLs and the README's walk-through.
The four services share the clock file var/clock (seconds added to the system
time; development only, refused in production): write a larger number into it to
move the whole platform forward, e.g. past a complaint's SLA deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from collect_common.clock import OffsetFile
from collect_common.settings import DEV_API_KEYS
from collect_common.testing.infra import LocalKafka

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
CLOCK_FILE = VAR / "clock"
SERVICES = ["case", "contact", "complaint", "qa"]
sys.path.insert(0, str(ROOT / "scripts" / "demo"))

from demo_loader import DemoLoadFailed, load_demo  # noqa: E402 (scripts/demo on the path)
from dev_token import token  # noqa: E402


def walkthrough(urls: dict[str, str]) -> str:
    """The curl commands of the README's walk-through, with this run's ports."""
    case, contact, complaint, qa = (urls[n] for n in SERVICES)
    bank, dialer = DEV_API_KEYS["bank-core"][1], DEV_API_KEYS["dialer"][1]
    ops, auditor = DEV_API_KEYS["ops-dashboard"][1], DEV_API_KEYS["bank-auditor"][1]
    return f"""Walk-through (README.md explains each step):
  export BANK='X-API-Key: {bank}' DIALER='X-API-Key: {dialer}'
  export OPS='X-API-Key: {ops}' AUDITOR='X-API-Key: {auditor}'
  export QA="Authorization: Bearer $(.venv/bin/python scripts/demo/dev_token.py qa qa-1)"
  export HANDLER="Authorization: Bearer $(.venv/bin/python scripts/demo/dev_token.py complaint h-1)"
  # 1 the bank's cases, each with bucket, track and agent; the bank's change feed
  curl -s -H "$OPS" {case}/v1/agents
  curl -s -H "$BANK" '{case}/v1/changes?limit=5'
  curl -s -H "$BANK" {case}/v1/cases/<case_id>
  # 2 the dialer asks before calling (allowed, CALL-DAILY-CAP, CALL-QUIET)
  curl -s -H "$DIALER" -H 'Content-Type: application/json' {contact}/v1/contact-decisions \\
    -d '{{"case_id": "<case_id>", "channel": "call", "agent_id": "agent-demo-1"}}'
  # 3 QA alerts raised by the live rules from the dialer's signed webhooks
  curl -s -H "$OPS" {qa}/v1/alerts
  # 4 complaint tickets, their SLA steps; breaches in the metrics
  curl -s -H "$HANDLER" {complaint}/v1/tickets/<ticket_id>
  curl -s {complaint}/metrics | grep complaint_sla_alerts_total
  # 5 the sanction ladder of an agent
  curl -s -H "$QA" {qa}/v1/agents/agent-demo-1/sanctions
  # 6 a full payment settles a case
  curl -s -H "$BANK" -H 'Content-Type: application/json' {case}/v1/cases/<case_id>/payments \\
    -d '{{"payment_id": "PAY-1", "amount": "<balance>", "paid_at": "2026-11-28T02:00:00Z"}}'
  # 7 the week's QA sample: committed before, drawn after, verified by the auditor
  curl -s -H "$AUDITOR" {qa}/v1/samples/<week>/verify
  # move the platform's clock (seconds ahead of the system time)
  echo 3600 > var/clock
"""


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}; see its log under var/")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    unknown = [a for a in args if a != "--no-demo"]
    if unknown:
        print(f"unknown argument(s) {unknown}; usage: run.py [--no-demo]", file=sys.stderr)
        return 2
    demo = "--no-demo" not in args and os.environ.get("NO_DEMO", "") in ("", "0")
    VAR.mkdir(exist_ok=True)
    if not CLOCK_FILE.exists():
        OffsetFile(CLOCK_FILE).write(0)
    kafka_port = int(os.environ.get("KAFKA_PORT", "9092"))
    base_port = int(os.environ.get("BASE_PORT", "8001"))
    kafka = LocalKafka(port=kafka_port, data_dir=VAR / "kafka")
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        print(f"starting Kafka on 127.0.0.1:{kafka_port} (data in var/kafka) ...", flush=True)
        kafka.start()
        urls = []
        for i, name in enumerate(SERVICES):
            port = base_port + i
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite+aiosqlite:///{VAR}/{name}-svc.db",
                "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
                "PORT": str(port),
                "LOG_JSON": os.environ.get("LOG_JSON", "true"),
                "CLOCK_FILE": str(CLOCK_FILE),
            }
            log = open(VAR / f"{name}-svc.log", "ab")  # noqa: SIM115 (lives with the process)
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    f"{name}_svc.main:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            procs.append((name, proc))
            urls.append((name, f"http://127.0.0.1:{port}"))
        for (_name, url), (_n, proc) in zip(urls, procs, strict=True):
            _wait_healthy(url + "/healthz", proc)
        by_name = dict(urls)
        if demo:
            print("\nloading the demo portfolio (scripts/demo/portfolio.json) ...", flush=True)
            try:
                now = _utc_now() + OffsetFile(CLOCK_FILE).delta()  # the platform's clock
                summary = asyncio.run(load_demo(by_name, today=now.date()))
                for line in summary.lines():
                    print("  " + line)
                print(f"  a case to try: {summary.case_ids[0]}")
            except (DemoLoadFailed, OSError) as exc:
                print(f"  demo portfolio not loaded: {exc}", flush=True)
        print("\nThe platform is up. Each service:")
        for name, url in urls:
            print(
                f"  {name + '-svc':14} API docs {url}/docs   metrics {url}/metrics   "
                f"ready {url}/readyz"
            )
        print(f"\nKafka: {kafka.bootstrap}   logs: var/*.log   databases: var/*.db")
        print("Development API keys (X-API-Key header; refused in production):")
        for subject, (roles, key) in DEV_API_KEYS.items():
            print(f"  {subject:14} role {roles:8} {key}")
        print("Development tokens for people (8 h; scripts/demo/dev_token.py ROLE SUBJECT):")
        for role, subject in (("agent", "agent-demo-1"), ("complaint", "h-1"), ("qa", "qa-1")):
            print(f"  {role:10} {subject:13} {token(role, subject, CLOCK_FILE)}")
        print(f"\nShared clock: {CLOCK_FILE} (seconds ahead of the system time)")
        print("\n" + walkthrough(by_name))
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"{name}-svc exited with {proc.returncode}; stopping", flush=True)
                    stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping ...", flush=True)
        for _name, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        kafka.stop()
        print("stopped.", flush=True)
    return 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


if __name__ == "__main__":
    sys.exit(main())
