"""Exports of the bank's cases (SEC-EXPORT): who may, what they must say, what they get.

SEC-EXPORT: data export only by authorised roles; every export logs who, when, what and
why (purpose), for audit. SEC-AUDIT: the bank's read-only auditor may inspect.

Choices:

- Who: ops (the agency's operations) and the bank's auditor (SEC-AUDIT inspection).
  Agents, the bank's machine client and every other role are refused (SEC-ACCESS).
- Personal data is masked for every role that may export (SEC-PII): neither ops nor an
  auditor contacts debtors, so neither needs a national ID, phone number or address in
  clear. A row carries the debtor's stable id (``debtor_id``), which is enough to follow
  one debtor across cases and to ask case-svc about them.
- The purpose is required, at least ``purpose_min_length`` characters, and is kept in
  the audit trail with the scope and the row count.
- The scope is one bank's cases that changed (any entry of the change feed) in a
  half-open period ``[changed_from, changed_to)``, at most ``max_period_days`` long; an
  export of more than ``max_rows`` cases is refused (narrow the period).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from collect_common.policy import Policy, rule
from collect_common.security.auth import Role
from collect_common.security.masking import (
    mask_address,
    mask_name,
    mask_national_id,
    mask_phone,
)

RULE = "SEC-EXPORT"
EXPORT_ROLES: tuple[Role, ...] = (Role.AUDITOR, Role.OPS)
"""Roles allowed to export, in the order one is recorded for a caller holding several."""

ExportFormat = Literal["csv", "ndjson"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
}


class ExportPolicy(Policy):
    purpose_min_length: int = rule(
        RULE, "Characters at least in the purpose stated for an export", default=10, ge=1, le=200
    )
    max_period_days: int = rule(
        RULE, "Days at most between an export's changed_from and changed_to", default=366, ge=1
    )
    max_rows: int = rule(
        RULE, "Cases at most in one export (narrow the period beyond)", default=50_000, ge=1
    )


class ExportRefused(ValueError):
    """An export that may not run, naming the field and the rule."""

    def __init__(self, field: str, reason: str, rule_id: str = RULE) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.rule = rule_id


@dataclass(frozen=True)
class ExportScope:
    bank_id: str
    changed_from: datetime
    changed_to: datetime

    def describe(self) -> dict[str, str]:
        return {
            "bank_id": self.bank_id,
            "changed_from": self.changed_from.isoformat(),
            "changed_to": self.changed_to.isoformat(),
        }


def check_request(policy: ExportPolicy, purpose: str | None, scope: ExportScope) -> str:
    """The stated purpose (trimmed), if the request may run; ``ExportRefused`` if not."""
    stated = (purpose or "").strip()
    if not stated:
        raise ExportRefused("purpose", "an export needs the purpose it is made for")
    if len(stated) < policy.purpose_min_length:
        raise ExportRefused(
            "purpose",
            f"state the purpose in at least {policy.purpose_min_length} characters",
        )
    for name, instant in (("changed_from", scope.changed_from), ("changed_to", scope.changed_to)):
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ExportRefused(f"scope.{name}", "give the instant with its time zone")
    if scope.changed_to <= scope.changed_from:
        raise ExportRefused("scope.changed_to", "the period must end after it starts")
    if scope.changed_to - scope.changed_from > timedelta(days=policy.max_period_days):
        raise ExportRefused(
            "scope.changed_to", f"the period may be at most {policy.max_period_days} days long"
        )
    return stated


def acting_role(roles: Iterable[Role]) -> Role:
    """The role an export is made (and recorded) in; ``ExportRefused`` for others."""
    held = set(roles)
    for role in EXPORT_ROLES:
        if role in held:
            return role
    raise ExportRefused("role", "exports are made by ops or the bank's auditor", "SEC-ACCESS")


# --- the rows ---------------------------------------------------------------------------

COLUMNS: tuple[str, ...] = (
    "case_id",
    "bank_id",
    "contract_no",
    "debtor_id",
    "debtor_name",
    "national_id",
    "phones",
    "address",
    "status",
    "bucket",
    "track",
    "principal",
    "interest",
    "fees",
    "paid_total",
    "balance",
    "overdue_since",
    "agent_id",
    "team_id",
    "region",
    "customer_group",
    "product",
    "opened_at",
    "updated_at",
)


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def masked_row(case: Mapping[str, Any]) -> dict[str, str | None]:
    """One export row of a case's stored columns (decrypted), personal data masked."""
    phones = case["phones"]
    if isinstance(phones, str):
        phones = json.loads(phones)
    balance = case["principal"] + case["interest"] + case["fees"] - case["paid_total"]
    return {
        "case_id": case["id"],
        "bank_id": case["bank_id"],
        "contract_no": case["contract_no"],
        "debtor_id": case["debtor_id"],
        "debtor_name": mask_name(case["name"]),
        "national_id": mask_national_id(case["national_id"]),
        "phones": ";".join(mask_phone(p) for p in phones),
        "address": mask_address(case["address"]) if case["address"] else None,
        "status": case["status"],
        "bucket": case["bucket"],
        "track": case["track"],
        "principal": _money(case["principal"]),
        "interest": _money(case["interest"]),
        "fees": _money(case["fees"]),
        "paid_total": _money(case["paid_total"]),
        "balance": _money(balance),  # negative: overpaid, as the case shows it
        "overdue_since": case["overdue_since"].isoformat(),
        "agent_id": case["agent_id"],
        "team_id": case["team_id"],
        "region": case["region"],
        "customer_group": case["customer_group"],
        "product": case["product"],
        "opened_at": case["opened_at"].isoformat(),
        "updated_at": case["updated_at"].isoformat(),
    }


_FORMULA_START = ("=", "@", "\t", "\r")


def _cell(value: str | None) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character is quoted."""
    if value is None:
        return ""
    risky = value.startswith(_FORMULA_START) or (
        value[:1] in ("+", "-") and not value[1:2].isdigit()
    )
    return "'" + value if risky else value


def render(rows: Sequence[Mapping[str, str | None]], fmt: ExportFormat) -> str:
    """The export's body: CSV with a header line, or one JSON object per line."""
    if fmt == "ndjson":
        return "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_cell(r[c]) for c in COLUMNS])
    return out.getvalue()
