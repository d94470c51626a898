"""`make run`: the broker and the four services on this machine, until Ctrl-C.

Kafka (KRaft, one node) runs from the project's own jars with its data under
var/kafka; each service gets a SQLite database under var/ and its own port.
Environment: KAFKA_PORT (9092), BASE_PORT (8001: case, +1 contact, +2 complaint,
+3 qa). Stops everything it started on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from collect_common.settings import DEV_API_KEYS
from collect_common.testing.infra import LocalKafka

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
SERVICES = ["case", "contact", "complaint", "qa"]


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


def main() -> int:
    VAR.mkdir(exist_ok=True)
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
        print("\nCtrl-C stops everything.", flush=True)
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


if __name__ == "__main__":
    sys.exit(main())
