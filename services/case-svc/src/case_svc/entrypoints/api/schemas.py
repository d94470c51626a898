"""Request and response bodies of the bank-facing API, with examples."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr

from case_svc.domain.model import Case
from collect_common.security.masking import (
    mask_address,
    mask_name,
    mask_national_id,
    mask_phone,
)

ACCOUNT_EXAMPLE = {
    "contract_no": "LN-2026-000123",
    "name": "张三",
    "national_id": "11010519491231002X",
    "phones": ["13812345678"],
    "address": "北京市朝阳区建国路88号",
    "principal": "12000.00",
    "interest": "350.25",
    "fees": "50.00",
    "overdue_since": "2026-09-15",
    "debtor_timezone": "Asia/Shanghai",
    "history": "good",
    "region": "110105",
    "customer_group": "retail-standard",
    "product": "credit_card",
}


class ImportRequest(BaseModel):
    """Up to the policy's row limit (10,000 by default) accounts; each row is checked on its
    own, so one bad row never blocks the others (CASE-INTAKE)."""

    accounts: list[dict[str, Any]] = Field(min_length=1, examples=[[ACCOUNT_EXAMPLE]])


class RowError(BaseModel):
    field: str
    rule: str
    reason: str


class RowOutcome(BaseModel):
    index: int
    outcome: Literal["created", "updated", "unchanged", "rejected"]
    contract_no: str | None = None
    case_id: str | None = None
    changed: list[str] = Field(default_factory=list)
    errors: list[RowError] = Field(default_factory=list)


class ImportResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "created": 1,
                    "updated": 0,
                    "unchanged": 0,
                    "rejected": 1,
                    "rows": [
                        {
                            "index": 0,
                            "outcome": "created",
                            "contract_no": "LN-2026-000123",
                            "case_id": "2f9d6c1e-0000-4000-8000-000000000001",
                            "changed": [],
                            "errors": [],
                        },
                        {
                            "index": 1,
                            "outcome": "rejected",
                            "contract_no": "LN-2026-000124",
                            "case_id": None,
                            "changed": [],
                            "errors": [
                                {
                                    "field": "national_id",
                                    "rule": "CASE-INTAKE",
                                    "reason": "check character should be X",
                                }
                            ],
                        },
                    ],
                }
            ]
        }
    )

    created: int
    updated: int
    unchanged: int
    rejected: int
    rows: list[RowOutcome]


class PaymentRequest(BaseModel):
    payment_id: str = Field(min_length=1, max_length=64, examples=["PAY-20261128-0001"])
    amount: Decimal = Field(gt=0, decimal_places=2, max_digits=18, examples=["500.00"])
    paid_at: datetime = Field(examples=["2026-11-28T02:15:00Z"])


class RecallRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=200, examples=["bank-withdrawn"])


class StrategyOut(BaseModel):
    track: str
    channels: list[str]
    rule: str | None
    table_version: str
    reason: str


class CaseOut(BaseModel):
    """A case as the bank and the agency's staff see it; personal data masked (SEC-PII)."""

    id: str
    bank_id: str
    contract_no: str
    debtor_id: str
    status: str
    bucket: str
    strategy: StrategyOut
    principal: Decimal
    interest: Decimal
    fees: Decimal
    paid_total: Decimal
    balance: Decimal
    overdue_since: date
    debtor_timezone: str
    agent_id: str | None
    team_id: str | None
    region: str | None = Field(
        description="Administrative division code the bank gave the account (GB/T 2260 style)",
        examples=["110105"],
    )
    customer_group: str | None = Field(
        description="The bank's customer group code", examples=["retail-standard"]
    )
    product: str | None = Field(
        description="The bank's product code (the case type in statistics)",
        examples=["credit_card"],
    )
    opened_at: datetime
    debtor: dict[str, Any]

    @classmethod
    def of(cls, case: Case) -> CaseOut:
        return cls(
            id=case.id,
            bank_id=case.bank_id,
            contract_no=case.contract_no,
            debtor_id=case.debtor_id,
            status=str(case.status),
            bucket=str(case.bucket),
            strategy=StrategyOut(
                track=str(case.strategy.track),
                channels=[str(c) for c in case.strategy.channels],
                rule=case.strategy.rule_name,
                table_version=case.strategy.table_version,
                reason=case.strategy.reason,
            ),
            principal=case.principal,
            interest=case.interest,
            fees=case.fees,
            paid_total=case.paid_total,
            balance=case.balance,
            overdue_since=case.overdue_since,
            debtor_timezone=case.debtor_timezone,
            agent_id=case.agent_id,
            team_id=case.team_id,
            region=case.region,
            customer_group=case.customer_group,
            product=case.product,
            opened_at=case.opened_at,
            debtor={
                "name": mask_name(case.name),
                "national_id": mask_national_id(case.national_id),
                "phones": [mask_phone(p) for p in case.phones],
                "address": mask_address(case.address) if case.address else None,
            },
        )


class ChangeOut(BaseModel):
    seq: int
    case_id: str
    contract_no: str
    change: str = Field(examples=["case.payment_received.v1"])
    data: dict[str, Any]
    at: datetime


class AssignmentLogOut(BaseModel):
    """One hand-over of a case: assigned to ``agent_id`` or unassigned (QA-SANCTION when a
    suspension caused it)."""

    seq: int
    action: Literal["assigned", "unassigned"]
    agent_id: str | None
    team_id: str | None
    previous_agent_id: str | None
    reason: Literal["ops", "run", "agent_suspended"]
    rule_id: str | None
    actor: str = Field(description="Who acted: ops' principal, assignment-run or qa-svc")
    at: datetime

    @classmethod
    def of(cls, row: Any) -> AssignmentLogOut:
        return cls(
            seq=row.seq,
            action=row.action,
            agent_id=row.agent_id,
            team_id=row.team_id,
            previous_agent_id=row.previous_agent_id,
            reason=row.reason,
            rule_id=row.rule_id,
            actor=row.actor,
            at=row.at,
        )


class RepairOut(BaseModel):
    repaired: int = Field(description="Open cases that had no pending bucket timer and got one")


class FeedTargetIn(BaseModel):
    """An endpoint of the bank that receives signed change batches (CASE-FEEDBACK)."""

    bank_id: str = Field(min_length=1, max_length=64, examples=["bank-core"])
    url: AnyHttpUrl = Field(examples=["https://bank.example/collections/feed"])
    secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HMAC-SHA256 signing secret (>= 32 characters); required for a new "
        "target, kept when omitted; never returned",
    )
    key_id: str = Field(default="case-feed", min_length=1, max_length=64)
    enabled: bool = True


class FeedTargetOut(BaseModel):
    target: str
    bank_id: str
    url: str
    key_id: str
    enabled: bool
    cursor: int = Field(description="seq of the last change the target acknowledged")
    failures: int = Field(description="Failed attempts in a row (0: healthy)")
    next_attempt_at: datetime | None = Field(description="Backoff: not tried before this")
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> FeedTargetOut:
        return cls(
            target=row.target,
            bank_id=row.bank_id,
            url=row.url,
            key_id=row.key_id,
            enabled=row.enabled,
            cursor=int(row.last_seq or 0),
            failures=int(row.failures or 0),
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
