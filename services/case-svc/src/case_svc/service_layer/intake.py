"""Bank-facing commands: bulk intake of overdue accounts, payments, recall (CASE-INTAKE).

Each command runs in one unit of work: the cases, their change-feed rows and
their events (through the outbox) commit together or not at all.
"""

from __future__ import annotations

import collections
import gc
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import IntegrityError

from case_svc.adapters.repository import CaseRepository, ConcurrentUpdate
from case_svc.domain.lifecycle import CaseStateError
from case_svc.domain.model import Case, CaseIntake, Payment, PaymentConflict
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import StrategyTable
from case_svc.domain.validation import FieldError, InvalidField, InvalidRow
from case_svc.service_layer.schedule import schedule_buckets
from collect_common.db import UnitOfWork, uuid4_strings
from collect_common.security.crypto import FieldCipher

Outcome = Literal["created", "updated", "unchanged", "rejected"]
RULE = "CASE-INTAKE"
ATTEMPTS = 3  # a concurrent import of the same new contract: retry sees it as existing


@dataclass
class RowResult:
    index: int
    outcome: Outcome
    contract_no: str | None = None
    case_id: str | None = None
    changed: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)


class IntakeMetrics:
    """``case_accounts_imported_total{result}``: intake rows by outcome (created, updated,
    unchanged, rejected), counted once their transaction committed (dashboards' intake
    volume)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.rows = Counter(
            "case_accounts_imported_total",
            "Accounts the bank sent for intake, by outcome (CASE-INTAKE)",
            ["service", "result"],
            registry=registry,
        )

    def count(self, outcomes: Iterable[str]) -> None:
        for outcome, n in collections.Counter(outcomes).items():
            self.rows.labels(self.service, outcome).inc(n)


@dataclass(frozen=True)
class CaseContext:
    """What every case command needs besides its input."""

    uow_factory: Callable[[], UnitOfWork]
    cipher: FieldCipher
    policy: CasePolicy
    strategy: StrategyTable
    metrics: IntakeMetrics | None = None


class CaseNotFound(LookupError):
    pass


_imports_holding_collector = 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector while one bulk import runs.

    A batch of 10,000 accounts builds several hundred thousand objects (rows, intakes,
    cases, events, outbox rows) that all live until its answer is sent; every automatic
    collection meanwhile would walk all of them again, about a third of the import's
    CPU time. Reference counting frees memory as usual; reference cycles wait for the
    collector, which resumes when the last import running at the same time ends. A
    collector someone else disabled is left as it is.
    """
    global _imports_holding_collector
    if _imports_holding_collector == 0 and not gc.isenabled():
        yield
        return
    _imports_holding_collector += 1
    gc.disable()
    try:
        yield
    finally:
        _imports_holding_collector -= 1
        if _imports_holding_collector == 0:
            gc.enable()


async def import_accounts(
    ctx: CaseContext,
    uow: UnitOfWork,
    rows: Sequence[Mapping[str, Any]],
    *,
    bank_id: str,
    now: datetime,
) -> list[RowResult]:
    """Validate every row; create new contracts, update known ones, report the rest.

    Runs inside ``uow`` (the caller commits, so it can store the idempotent answer
    in the same transaction). A rejected row never blocks the others. The writes are
    set-wise: one lookup (and lock) of the bank's known contracts among the valid rows,
    the new cases, their change feed and their bucket timers in one statement each
    (``insert_many``: COPY on PostgreSQL), the updated cases one by one.
    """
    results: list[RowResult] = []
    valid: list[tuple[int, CaseIntake]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            results.append(
                RowResult(
                    index,
                    "rejected",
                    errors=[FieldError("row", RULE, "each account is a JSON object")],
                )
            )
            continue
        try:
            valid.append(
                (index, CaseIntake.from_row(row, bank_id=bank_id, now=now, policy=ctx.policy))
            )
        except InvalidRow as exc:
            contract = row.get("contract_no")
            results.append(
                RowResult(
                    index,
                    "rejected",
                    contract_no=contract if isinstance(contract, str) else None,
                    errors=list(exc.errors),
                )
            )
        except InvalidField as exc:
            results.append(RowResult(index, "rejected", errors=[exc.error]))

    repo = CaseRepository(uow.session, ctx.cipher)
    existing = await repo.by_contracts(bank_id, sorted({i.contract_no for _, i in valid}))
    loaded_versions = {c.contract_no: c.version for c in existing.values()}
    created: dict[str, Case] = {}
    touched: dict[str, Case] = {}
    new_ids = iter(uuid4_strings(len({i.contract_no for _, i in valid} - existing.keys())))
    for index, intake in valid:
        case = created.get(intake.contract_no) or existing.get(intake.contract_no)
        try:
            if case is None:
                case = Case.open(
                    next(new_ids, None) or str(uuid.uuid4()),
                    repo.debtor_id_for(intake.national_id),
                    intake,
                    now=now,
                    policy=ctx.policy,
                    table=ctx.strategy,
                )
                created[intake.contract_no] = case
                results.append(RowResult(index, "created", intake.contract_no, case.id))
                continue
            changed = case.update_from(intake, now=now, policy=ctx.policy, table=ctx.strategy)
        except CaseStateError as exc:
            results.append(
                RowResult(
                    index,
                    "rejected",
                    intake.contract_no,
                    case.id if case else None,
                    errors=[FieldError("contract_no", RULE, str(exc))],
                )
            )
            continue
        if intake.contract_no not in created and changed:
            touched[intake.contract_no] = case
        results.append(
            RowResult(
                index,
                "updated" if changed else "unchanged",
                intake.contract_no,
                case.id,
                changed=changed,
            )
        )

    await repo.add_many(list(created.values()), now)
    await schedule_buckets(uow.session, created.values(), now)  # rule: CASE-BUCKET
    for contract_no, case in touched.items():
        await repo.save(case, now, expected_version=loaded_versions[contract_no])
    uow.track(*created.values(), *touched.values())
    results.sort(key=lambda r: r.index)
    return results


async def retrying(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` again when a concurrent transaction got there first (it sees it next)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await fn()
        except (IntegrityError, ConcurrentUpdate):
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class PaymentResult:
    case: Case
    recorded: bool  # False: the same payment again (a retry), nothing changed


async def record_payment(
    ctx: CaseContext,
    uow: UnitOfWork,
    case_id: str,
    *,
    payment_id: str,
    amount: Decimal,
    paid_at: datetime,
    bank_id: str,
    now: datetime,
) -> PaymentResult:
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await _bank_case(repo, case_id, bank_id)
    version = case.version
    recorded = case.record_payment(payment_id, amount, paid_at)  # PaymentConflict, state errors
    if recorded:
        await repo.add_payment(case.id, case.payments[payment_id])
        await repo.save(case, now, expected_version=version)
        uow.track(case)
    return PaymentResult(case, recorded)


async def recall_case(
    ctx: CaseContext,
    uow: UnitOfWork,
    case_id: str,
    *,
    reason: str | None,
    bank_id: str,
    now: datetime,
) -> Case:
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await _bank_case(repo, case_id, bank_id)
    version = case.version
    case.recall(reason, now)
    await repo.save(case, now, expected_version=version)
    uow.track(case)
    return case


async def get_case(ctx: CaseContext, uow: UnitOfWork, case_id: str, bank_id: str | None) -> Case:
    return await _bank_case(CaseRepository(uow.session, ctx.cipher), case_id, bank_id, lock=False)


async def _bank_case(
    repo: CaseRepository, case_id: str, bank_id: str | None, *, lock: bool = True
) -> Case:
    case = await repo.get(case_id, for_update=lock)
    if case is None or (bank_id is not None and case.bank_id != bank_id):
        raise CaseNotFound(case_id)  # another bank's case is not even acknowledged
    return case


__all__ = [
    "CaseContext",
    "CaseNotFound",
    "Payment",
    "PaymentConflict",
    "PaymentResult",
    "RowResult",
    "collector_paused",
    "get_case",
    "import_accounts",
    "recall_case",
    "record_payment",
    "retrying",
]
