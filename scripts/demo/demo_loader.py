"""Load the demo portfolio into a running platform, only through its HTTP APIs.

What a bank and an agency would do on their first morning: ops registers the agents
(case-svc), the bank imports its overdue accounts (case-svc), ops runs the
assignment, ops drafts an SMS template and the bank approves and files it
(contact-svc). The accounts are in ``portfolio.json`` beside this file, with
``days_overdue`` instead of a date so the buckets mean the same whatever the day.

``python scripts/demo/demo_loader.py`` loads it into the services of ``make run``
(BASE_PORT, default 8001); ``make run`` does it itself unless ``--no-demo``.
Loading again makes no second case of any account (the import is idempotent on the
loan contract number and, the same day, on its Idempotency-Key); it drafts the SMS
template again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from collect_common.settings import DEV_API_KEYS

PORTFOLIO = Path(__file__).with_name("portfolio.json")
BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}


class DemoLoadFailed(RuntimeError):
    pass


@dataclass
class DemoSummary:
    today: date
    accounts_created: int = 0
    accounts_unchanged: int = 0
    rejected: int = 0
    assigned: int = 0
    agents: int = 0
    agent_ids: list[str] = field(default_factory=list)
    case_ids: list[str] = field(default_factory=list)
    sms_template_id: str | None = None
    sms_template_version: int | None = None

    def lines(self) -> list[str]:
        return [
            f"accounts: {self.accounts_created} created, {self.accounts_unchanged} already there, "
            f"{self.rejected} rejected; {self.assigned} assigned to {self.agents} agents",
            f"SMS template {self.sms_template_id} v{self.sms_template_version} approved and filed",
        ]


def portfolio(path: Path = PORTFOLIO) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def accounts_for(data: Mapping[str, Any], today: date, run: str | None) -> list[dict[str, Any]]:
    """The import rows: ``overdue_since`` from ``days_overdue``; ``run`` suffixes contract
    numbers (a second, separate portfolio in the same database)."""
    rows = []
    for source in data["accounts"]:
        row = {k: v for k, v in source.items() if k != "days_overdue"}
        row["overdue_since"] = (today - timedelta(days=int(source["days_overdue"]))).isoformat()
        if run:
            row["contract_no"] = f"{row['contract_no']}-{run}"
        rows.append(row)
    return rows


def _check(r: httpx.Response, *ok: int) -> dict[str, Any]:
    if r.status_code not in ok:
        raise DemoLoadFailed(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
    body: dict[str, Any] = r.json()
    return body


async def load_demo(
    urls: Mapping[str, str], *, today: date, run: str | None = None, path: Path = PORTFOLIO
) -> DemoSummary:
    """Load the portfolio into the services at ``urls`` (``case``, ``contact``)."""
    data = portfolio(path)
    suffix = f"-{run}" if run else ""
    summary = DemoSummary(today=today)
    async with httpx.AsyncClient(base_url=urls["case"], timeout=60) as case:
        for agent in data["agents"]:
            agent_id = agent["agent_id"] + suffix
            body = {k: v for k, v in agent.items() if k != "agent_id"}
            _check(await case.put(f"/v1/agents/{agent_id}", json=body, headers=OPS), 200)
            summary.agent_ids.append(agent_id)
        summary.agents = len(summary.agent_ids)

        rows = accounts_for(data, today, run)
        key = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:32]
        result = _check(
            await case.post(
                "/v1/accounts/import",
                json={"accounts": rows},
                headers={**BANK, "Idempotency-Key": f"demo-{key}"},
            ),
            200,
        )
        summary.accounts_created = result["created"]
        summary.accounts_unchanged = result["unchanged"] + result["updated"]
        summary.rejected = result["rejected"]
        summary.case_ids = [r["case_id"] for r in result["rows"] if r["case_id"]]
        run_result = _check(await case.post("/v1/assignments/run", headers=OPS), 200)
        summary.assigned = run_result["assigned"]

    template = data["sms_template"]
    async with httpx.AsyncClient(base_url=urls["contact"], timeout=60) as contact:
        created = _check(
            await contact.post(
                "/v1/sms-templates",
                json={
                    "name": template["name"] + suffix,
                    "bank_id": data["bank_id"],
                    "body": template["body"],
                },
                headers=OPS,
            ),
            200,
            201,
        )
        template_id, version = created["template_id"], created["version"]
        approved = _check(
            await contact.post(
                f"/v1/sms-templates/{template_id}/versions/{version}/approve",
                json={"filing_number": f"FILED-DEMO-{template_id[:8]}"},
                headers=BANK,
            ),
            200,
        )
        summary.sms_template_id = approved["template_id"]
        summary.sms_template_version = approved["version"]
    return summary


def service_urls(base_port: int) -> dict[str, str]:
    names = ("case", "contact", "complaint", "qa")
    return {name: f"http://127.0.0.1:{base_port + i}" for i, name in enumerate(names)}


def main() -> int:
    urls = service_urls(int(os.environ.get("BASE_PORT", "8001")))
    try:
        summary = asyncio.run(load_demo(urls, today=datetime.now(UTC).date()))
    except (DemoLoadFailed, httpx.HTTPError) as exc:
        print(f"demo portfolio not loaded: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
