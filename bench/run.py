"""`make bench`: every benchmark module, each a ratio against a baseline measured in the same
run, its figures merged into bench/results.json and printed.

- bench/bus.py: the event bus (outbox relay, idempotent consumer) against raw aiokafka.
- bench/case_import.py: bulk intake through case-svc's HTTP API against PostgreSQL COPY.
- bench/contact_decision.py: pre-dial decisions over HTTP against a bare FastAPI endpoint.
- bench/sla_timers.py: one scheduler tick with 1,000,000 pending vs 10,000 (cost follows
  what is due), and firing lag at 1,000 timers due per second.
- bench/qa_rules.py: live QA rules through the idempotent consumer against a raw
  aiokafka consume-and-decode loop.
- bench/e2e_latency.py: call-ended webhook to a QA alert readable over qa-svc's API, the
  services as processes, against aiokafka's produce-to-consume latency.

`python bench/run.py [bus] [case_import]` runs the ones named (default: all of them); each
module also runs alone (`python bench/case_import.py`). Kafka and PostgreSQL:
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, else started here, once for all modules. Figures of
modules not run this time stay in results.json as they were.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from collect_common.testing.infra import resolve_kafka, resolve_postgres

MODULES = ("bus", "case_import", "contact_decision", "sla_timers", "qa_rules", "e2e_latency")
RESULTS = Path(__file__).with_name("results.json")


def merge_results(figures: dict[str, Any]) -> dict[str, Any]:
    """Write ``figures`` into results.json over what is there (other benchmarks' stay)."""
    merged: dict[str, Any] = {}
    if RESULTS.is_file():
        try:
            old = json.loads(RESULTS.read_text())
            if isinstance(old, dict):
                merged.update(old)
        except ValueError:
            pass  # unreadable: start afresh
    merged.update(figures)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def summary(figures: dict[str, Any]) -> str:
    """The figure a benchmark is judged by: a ratio against its baseline, or (for one
    without a baseline, such as the weekly sample's CPU) whether it meets its goal."""
    if "ratio" not in figures:
        return f"meets goal: {figures.get('meets_goal')}"
    direction = "<=" if figures.get("goal_kind") == "max" else ">="
    return f"ratio {figures['ratio']} (goal {direction} {figures['goal']})"


def main(names: list[str] | None = None) -> int:
    names = names if names is not None else sys.argv[1:]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {list(MODULES)}", file=sys.stderr)
        return 2
    modules = [importlib.import_module(n) for n in (names or MODULES)]
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        kafka = stack.enter_context(resolve_kafka())
        pg = stack.enter_context(resolve_postgres())
        for module in modules:
            print(module.header(kafka.kind, pg.kind), flush=True)
            results.update(asyncio.run(module.bench(kafka.bootstrap, pg.url)))
    merge_results(results)
    for name, figures in results.items():
        print(f"{name}: {summary(figures)}  {figures}")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
