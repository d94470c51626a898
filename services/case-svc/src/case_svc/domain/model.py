"""The Case aggregate: one overdue bank account in collection.

A case is identified by the bank's loan contract number (its natural key:
CASE-INTAKE, re-sending a contract updates its case, never duplicates it). It
holds the debtor's personal data in plain form (the adapters encrypt it at
rest, SEC-PII; ``repr`` never shows it), its money as ``Decimal``, its
delinquency bucket (CASE-BUCKET), its strategy decision (CASE-STRATEGY) and
its lifecycle status. Every change of interest to other services is recorded
in ``events`` as a catalogued event carrying ids, codes, amounts and dates
only; the unit of work collects them into the outbox.

Instants are aware and stored in UTC; calendar days are the debtor's own
(``buckets.debtor_today``). The clock is always passed in.

Amounts: ``principal``, ``interest`` and ``fees`` are what the bank placed
(and last updated); ``paid_total`` is what was paid on the case since. The
balance is their difference; a payment that brings it to zero or below
settles the case.

Promises to pay (CASE-PROMISE, ``domain.promises``) and the hardship repayment
plan (CASE-HARDSHIP, ``domain.plans``) hang off the case: the repository loads
the pending promises and the active plan with it, a payment is counted towards
them (PromiseKept; installments paid in order), and their timers' handlers ask
the case to record a broken promise or a missed installment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from case_svc.domain import plans as plans_
from case_svc.domain import promises as promises_
from case_svc.domain import validation
from case_svc.domain.buckets import Bucket, bucket_for, days_past_due, debtor_today
from case_svc.domain.lifecycle import (
    INITIAL,
    OPEN,
    CaseStatus,
    require_open,
    transition,
)
from case_svc.domain.plans import InstallmentStatus, Plan, PlanStatus
from case_svc.domain.policy import CasePolicy
from case_svc.domain.promises import Promise
from case_svc.domain.strategy import (
    ESCALATION_RULE,
    History,
    StrategyDecision,
    StrategyTable,
    Willingness,
)
from case_svc.domain.validation import FieldError, InvalidField, InvalidRow
from collect_common.clock import ensure_utc
from collect_common.events.catalogue import Event
from collect_common.events.types import (
    CaseAssigned,
    CaseBucketChanged,
    CaseClosed,
    CaseImported,
    CaseRecalled,
    CaseSettled,
    CaseStatusChanged,
    CaseStrategyChanged,
    CaseUpdated,
    InstallmentMissed,
    PaymentReceived,
    PlanCreated,
    PromiseBroken,
    PromiseKept,
    PromiseMade,
)

ZERO = Decimal("0.00")
# Storage limits of the text the bank sends (technical bounds, not business rules).
MAX_KEY = 64  # bank ids and loan contract numbers
MAX_NAME = 100
MAX_ADDRESS = 500
MAX_REASON = 200
# The bank's classification codes (COMP-STATS dimensions), as long as case.imported.v1 takes.
MAX_CODE = 64  # customer_group, product (the event's case_type)

# The fields of an intake a re-sent account may change, in reporting order.
INTAKE_FIELDS = (
    "name",
    "national_id",
    "phones",
    "address",
    "principal",
    "interest",
    "fees",
    "overdue_since",
    "debtor_timezone",
    "history",
    "region",
    "customer_group",
    "product",
)

T = TypeVar("T")


class PaymentConflict(ValueError):
    """A payment id seen before, with another amount: not a retry of the same payment."""

    def __init__(self, payment_id: str) -> None:
        super().__init__(f"payment {payment_id} was already recorded with another amount")
        self.payment_id = payment_id


@dataclass(frozen=True, slots=True)
class CaseIntake:
    """One account as the bank sends it (CASE-INTAKE), validated and normalised.

    Building one runs the field validators: amounts are Decimals with 2 places
    (never floats), phones are 11-digit mainland mobiles, the national ID is
    upper case with a correct check character, the time zone is known.

    ``region`` (an administrative division code, 6 digits), ``customer_group`` and
    ``product`` are the bank's classification codes of the account, for statistics
    (COMP-STATS); optional, never personal data.
    """

    bank_id: str
    contract_no: str
    name: str = field(repr=False)
    national_id: str = field(repr=False)
    phones: tuple[str, ...] = field(repr=False)
    address: str | None = field(repr=False)
    principal: Decimal
    interest: Decimal
    fees: Decimal
    overdue_since: date
    debtor_timezone: str
    history: History = History.UNKNOWN
    region: str | None = None
    customer_group: str | None = None
    product: str | None = None

    def __post_init__(self) -> None:
        v = validation
        normal: dict[str, object] = {
            "bank_id": v.required_text(self.bank_id, field="bank_id", max_length=MAX_KEY),
            "contract_no": v.required_text(
                self.contract_no, field="contract_no", max_length=MAX_KEY
            ),
            "name": v.required_text(self.name, field="name", max_length=MAX_NAME),
            "national_id": v.national_id(self.national_id),
            "phones": v.mobiles(self.phones),
            "address": v.optional_text(self.address, field="address", max_length=MAX_ADDRESS),
            "principal": v.money(self.principal, field="principal"),
            "interest": v.money(self.interest, field="interest"),
            "fees": v.money(self.fees, field="fees"),
            "debtor_timezone": v.timezone_name(self.debtor_timezone),
            "history": History(v.one_of(self.history, History, field="history")),
            "region": v.region_code(self.region),
            "customer_group": v.code(
                self.customer_group, field="customer_group", max_length=MAX_CODE
            ),
            "product": v.code(self.product, field="product", max_length=MAX_CODE),
        }
        if isinstance(self.overdue_since, datetime) or not isinstance(self.overdue_since, date):
            raise InvalidField(FieldError("overdue_since", validation.RULE, "must be a date"))
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    @property
    def overdue_total(self) -> Decimal:
        return self.principal + self.interest + self.fees

    @classmethod
    def from_row(
        cls, row: Mapping[str, Any], *, bank_id: str, now: datetime, policy: CasePolicy
    ) -> CaseIntake:
        """Validate one row of a bulk intake, reporting every bad field at once.

        Row keys: ``contract_no``, ``name``, ``national_id``, ``phones`` (a list),
        ``address`` (optional), ``principal``, ``interest`` and ``fees`` (absent: 0),
        ``overdue_since`` (``YYYY-MM-DD``, not after the debtor's today),
        ``debtor_timezone`` (absent: the policy's default), ``history``
        (absent: unknown), and the optional codes ``region`` (6 digits),
        ``customer_group`` and ``product``. Raises :class:`InvalidRow` listing the
        field errors.
        """
        try:
            # the common case, a valid row: each field checked once, the first refusal
            # hands over to the full check below, which reports every bad field
            return cls._from_valid_row(row, bank_id=bank_id, now=now, policy=policy)
        except InvalidField:
            pass
        v = validation
        errors: list[FieldError] = []

        def take(check: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
            try:
                return check(*args, **kwargs)
            except InvalidField as exc:
                errors.append(exc.error)
                return None

        tz = take(v.timezone_name, row.get("debtor_timezone") or policy.default_debtor_timezone)
        today = debtor_today(now, tz or policy.default_debtor_timezone)
        contract_no = take(
            v.required_text, row.get("contract_no"), field="contract_no", max_length=MAX_KEY
        )
        name = take(v.required_text, row.get("name"), field="name", max_length=MAX_NAME)
        national_id = take(v.national_id, row.get("national_id"), today=today)
        phones = take(v.mobiles, row.get("phones"))
        address = take(v.optional_text, row.get("address"), field="address", max_length=MAX_ADDRESS)
        principal = take(v.money, row.get("principal"), field="principal")
        interest = take(v.money, row.get("interest", "0"), field="interest")
        fees = take(v.money, row.get("fees", "0"), field="fees")
        overdue_since = take(v.overdue_since, row.get("overdue_since"), today)
        history = take(v.one_of, row.get("history", "unknown"), History, field="history")
        region = take(v.region_code, row.get("region"))
        customer_group = take(
            v.code, row.get("customer_group"), field="customer_group", max_length=MAX_CODE
        )
        product = take(v.code, row.get("product"), field="product", max_length=MAX_CODE)
        amounts = (principal, interest, fees)
        if all(a is not None for a in amounts) and sum(a for a in amounts if a is not None) == 0:
            errors.append(
                FieldError("principal", v.RULE, "principal, interest and fees add up to 0")
            )
        if errors:
            raise InvalidRow(errors)
        assert contract_no and name and national_id and phones and tz and history
        assert principal is not None and interest is not None and fees is not None
        assert overdue_since is not None
        return cls(
            bank_id=bank_id,
            contract_no=contract_no,
            name=name,
            national_id=national_id,
            phones=phones,
            address=address,
            principal=principal,
            interest=interest,
            fees=fees,
            overdue_since=overdue_since,
            debtor_timezone=tz,
            history=History(history),
            region=region,
            customer_group=customer_group,
            product=product,
        )

    @classmethod
    def _from_valid_row(
        cls, row: Mapping[str, Any], *, bank_id: str, now: datetime, policy: CasePolicy
    ) -> CaseIntake:
        """:meth:`from_row` of a row expected to be valid: the same checks in the same
        order, raising :class:`InvalidField` at the first refusal (and for principal,
        interest and fees adding up to 0) instead of gathering them.

        The values are already what ``__post_init__`` would make of them (its checks
        return what they are given, already normalised), so the intake is built without
        running them again; only ``bank_id``, which the row does not carry, is checked.
        """
        v = validation
        get = row.get
        tz = v.timezone_name(get("debtor_timezone") or policy.default_debtor_timezone)
        today = debtor_today(now, tz)
        contract_no = v.required_text(get("contract_no"), field="contract_no", max_length=MAX_KEY)
        name = v.required_text(get("name"), field="name", max_length=MAX_NAME)
        national_id = v.national_id(get("national_id"), today=today)
        phones = v.mobiles(get("phones"))
        address = v.optional_text(get("address"), field="address", max_length=MAX_ADDRESS)
        principal = v.money(get("principal"), field="principal")
        interest = v.money(get("interest", "0"), field="interest")
        fees = v.money(get("fees", "0"), field="fees")
        overdue_since = v.overdue_since(get("overdue_since"), today)
        history = History(v.one_of(get("history", "unknown"), History, field="history"))
        region = v.region_code(get("region"))
        customer_group = v.code(get("customer_group"), field="customer_group", max_length=MAX_CODE)
        product = v.code(get("product"), field="product", max_length=MAX_CODE)
        if principal + interest + fees == 0:
            raise InvalidField(
                FieldError("principal", v.RULE, "principal, interest and fees add up to 0")
            )
        intake = object.__new__(cls)
        for attribute, value in (
            ("bank_id", v.required_text(bank_id, field="bank_id", max_length=MAX_KEY)),
            ("contract_no", contract_no),
            ("name", name),
            ("national_id", national_id),
            ("phones", phones),
            ("address", address),
            ("principal", principal),
            ("interest", interest),
            ("fees", fees),
            ("overdue_since", overdue_since),
            ("debtor_timezone", tz),
            ("history", history),
            ("region", region),
            ("customer_group", customer_group),
            ("product", product),
        ):
            object.__setattr__(intake, attribute, value)
        return intake


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    amount: Decimal
    paid_at: datetime


@dataclass(eq=False)
class Case:
    """The aggregate. Build new cases with :meth:`open`; the constructor is for the
    repository, which rebuilds a stored case without recording events."""

    id: str
    bank_id: str
    contract_no: str
    debtor_id: str
    name: str = field(repr=False)
    national_id: str = field(repr=False)
    phones: tuple[str, ...] = field(repr=False)
    address: str | None = field(repr=False)
    principal: Decimal
    interest: Decimal
    fees: Decimal
    overdue_since: date
    debtor_timezone: str
    history: History
    willingness: Willingness
    bucket: Bucket
    strategy: StrategyDecision
    opened_at: datetime
    status: CaseStatus = INITIAL
    paid_total: Decimal = ZERO
    payments: dict[str, Payment] = field(default_factory=dict, repr=False)
    agent_id: str | None = None
    team_id: str | None = None
    # the bank's classification codes (COMP-STATS): administrative division, customer
    # group, product (the events' case_type)
    region: str | None = None
    customer_group: str | None = None
    product: str | None = None
    version: int = 1
    events: list[Event] = field(default_factory=list, repr=False)
    # loaded by the repository: the promises still pending, the plan still running
    promises: list[Promise] = field(default_factory=list, repr=False)
    plan: Plan | None = field(default=None, repr=False)

    # -- reading -------------------------------------------------------------

    @property
    def overdue_total(self) -> Decimal:
        return self.principal + self.interest + self.fees

    @property
    def balance(self) -> Decimal:
        """What remains owed: placed amounts minus payments (negative: overpaid)."""
        return self.overdue_total - self.paid_total

    @property
    def is_open(self) -> bool:
        """Whether collection goes on (not settled, recalled or closed)."""
        return self.status in OPEN

    def today(self, now: datetime) -> date:
        """The debtor's calendar day at ``now``."""
        return debtor_today(now, self.debtor_timezone)

    def days_past_due(self, now: datetime) -> int:
        return days_past_due(self.overdue_since, self.today(now))

    # -- intake --------------------------------------------------------------

    @classmethod
    def open(
        cls,
        case_id: str,
        debtor_id: str,
        intake: CaseIntake,
        *,
        now: datetime,
        policy: CasePolicy,
        table: StrategyTable,
        willingness: Willingness = Willingness.UNKNOWN,
    ) -> Case:
        """A new case from the bank's account; records CaseImported and the first
        CaseStrategyChanged (no previous track)."""
        now = ensure_utc(now)
        today = debtor_today(now, intake.debtor_timezone)
        willingness = Willingness(willingness)
        bucket = bucket_for(days_past_due(intake.overdue_since, today), policy)
        case = cls(
            id=case_id,
            bank_id=intake.bank_id,
            contract_no=intake.contract_no,
            debtor_id=debtor_id,
            name=intake.name,
            national_id=intake.national_id,
            phones=intake.phones,
            address=intake.address,
            principal=intake.principal,
            interest=intake.interest,
            fees=intake.fees,
            overdue_since=intake.overdue_since,
            debtor_timezone=intake.debtor_timezone,
            history=intake.history,
            region=intake.region,
            customer_group=intake.customer_group,
            product=intake.product,
            willingness=willingness,
            bucket=bucket,
            strategy=table.decide(bucket, intake.history, willingness),
            opened_at=now,
        )
        case._record(
            CaseImported(
                **case._ids(),
                bank_id=case.bank_id,
                overdue_total=case.overdue_total,
                overdue_since=case.overdue_since,
                bucket=_code(bucket),
                debtor_timezone=case.debtor_timezone,
                region=case.region,
                customer_group=case.customer_group,
                case_type=case.product,
            )
        )
        case._record_strategy(None)
        return case

    def update_from(
        self, intake: CaseIntake, *, now: datetime, policy: CasePolicy, table: StrategyTable
    ) -> list[str]:
        """Apply the bank's re-sent account (same contract: CASE-INTAKE).

        Records CaseUpdated naming the changed fields (never their values) when
        anything changed, then CaseBucketChanged / CaseStrategyChanged if the new
        data moves the bucket or the track. Returns the changed field names.
        The re-sent row is the account as it now is: an optional field it leaves
        out (the address, a classification code) is cleared.
        Refused on a settled, recalled or closed case (ActionNotAllowed).
        """
        if (intake.bank_id, intake.contract_no) != (self.bank_id, self.contract_no):
            raise ValueError("the intake is for another bank contract than this case")
        require_open(self.status, "be updated from the bank")
        now = ensure_utc(now)
        changed = [f for f in INTAKE_FIELDS if getattr(intake, f) != getattr(self, f)]
        if not changed:
            return []
        for f in changed:
            setattr(self, f, getattr(intake, f))
        self._record(CaseUpdated(**self._ids(), changed_fields=changed, updated_at=now))
        self._rebucket(now, policy)
        self._redecide(table)
        self.version += 1
        return changed

    # -- daily recomputation and strategy -------------------------------------

    def recompute_bucket(self, now: datetime, policy: CasePolicy, table: StrategyTable) -> bool:
        """The daily recomputation (CASE-BUCKET) on the debtor's calendar day at ``now``.

        Records CaseBucketChanged when the bucket moves, and re-decides the
        strategy (CaseStrategyChanged when the track or its channels change).
        Does nothing on a case no longer in collection. Returns whether the case
        changed.
        """
        if not self.is_open:
            return False
        changed = self._rebucket(ensure_utc(now), policy)
        changed = self._redecide(table) or changed
        if changed:
            self.version += 1
        return changed

    def apply_strategy(self, table: StrategyTable) -> bool:
        """Re-decide the track under ``table`` (e.g. a new version); CaseStrategyChanged
        when the track or its channels change. Nothing on a case out of collection."""
        if not self.is_open:
            return False
        changed = self._redecide(table)
        if changed:
            self.version += 1
        return changed

    def assess_willingness(
        self, willingness: Willingness, table: StrategyTable, *, at: datetime
    ) -> bool:
        """A collector's assessment of the willingness to pay; re-decides the track."""
        require_open(self.status, "assess the willingness to pay")
        willingness = Willingness(willingness)
        if willingness == self.willingness:
            return False
        self.willingness = willingness
        self._record(
            CaseUpdated(**self._ids(), changed_fields=["willingness"], updated_at=ensure_utc(at))
        )
        self._redecide(table)
        self.version += 1
        return True

    # -- money ---------------------------------------------------------------

    def record_payment(self, payment_id: str, amount: Decimal, paid_at: datetime) -> bool:
        """Record a payment; PaymentReceived with the balance after it.

        A payment that brings the balance to zero or below settles the case
        (CaseSettled). The same ``payment_id`` again is a retry and is ignored
        (returns False), even once the case is settled; with another amount it
        is a :class:`PaymentConflict`. On a settled, recalled or closed case a new
        payment is refused with ActionNotAllowed naming the status.
        """
        seen = self.payments.get(payment_id)
        if seen is not None:
            if seen.amount != validation.amount(amount):
                raise PaymentConflict(payment_id)
            return False
        require_open(self.status, "record a payment")
        value = validation.money(amount)
        if value <= 0:
            raise InvalidField(FieldError("amount", validation.RULE, "must be more than 0"))
        paid_at = ensure_utc(paid_at)
        self.payments[payment_id] = Payment(payment_id, value, paid_at)
        self.paid_total += value
        balance = self.balance
        self._record(
            PaymentReceived(
                **self._ids(), payment_id=payment_id, amount=value, paid_at=paid_at, balance=balance
            )
        )
        self._count_towards_promises(value, paid_at)
        plan_done = self._allocate_to_plan(value)
        if balance <= 0:
            self.status = transition(self.status, CaseStatus.SETTLED)
            self._record(CaseSettled(**self._ids(), settled_at=paid_at))
        elif plan_done and self.status == CaseStatus.PLAN:
            # rule: CASE-HARDSHIP. Every installment paid: the plan ended, collection goes on.
            self._move(CaseStatus.ACTIVE, paid_at, plans_.RULE)
        self.version += 1
        return True

    def _count_towards_promises(self, amount: Decimal, paid_at: datetime) -> None:
        """rule: CASE-PROMISE. A payment recorded while promises are pending counts towards
        each of them (paid by its deadline); one that completes a promise keeps it."""
        for promise in self.promises:
            if promise.apply(amount, paid_at):
                self._record(PromiseKept(**self._ids(), promise_id=promise.id, kept_at=paid_at))

    def _allocate_to_plan(self, amount: Decimal) -> bool:
        """rule: CASE-HARDSHIP. Pay the plan's installments in order; True if that ended it."""
        plan = self.plan
        if plan is None or plan.status != PlanStatus.ACTIVE:
            return False
        plan.allocate(amount)
        return plan.completed

    # -- promises to pay (CASE-PROMISE) ------------------------------------------

    def make_promise(
        self,
        promise_id: str,
        amount: Decimal,
        due_date: date,
        *,
        now: datetime,
        policy: CasePolicy,
        agent_id: str | None = None,
    ) -> Promise:
        """The debtor promises to pay ``amount`` by ``due_date`` (PromiseMade).

        Only on a case in collection (ActionNotAllowed naming the state). The day
        may not be before the debtor's today nor beyond ``promise_max_days``.
        """
        require_open(self.status, "take a promise to pay")
        now = ensure_utc(now)
        value = validation.money(amount)
        if value <= 0:
            raise InvalidField(FieldError("amount", promises_.RULE, "must be more than 0"))
        today = self.today(now)
        if due_date < today:
            raise InvalidField(
                FieldError("due_date", promises_.RULE, f"is before the debtor's today {today}")
            )
        if due_date > today + timedelta(days=policy.promise_max_days):
            raise InvalidField(
                FieldError(
                    "due_date",
                    promises_.RULE,
                    f"is more than {policy.promise_max_days} days after the debtor's today",
                )
            )
        promise = Promise(
            id=promise_id,
            case_id=self.id,
            amount=value,
            due_date=due_date,
            due_at=promises_.end_of_day(
                due_date, self.debtor_timezone, grace_days=policy.promise_grace_days
            ),
            made_at=now,
            agent_id=agent_id,
            new=True,
        )
        self.promises.append(promise)
        self._record(
            PromiseMade(
                **self._ids(),
                promise_id=promise_id,
                amount=value,
                due_date=due_date,
                agent_id=agent_id,
                made_at=now,
            )
        )
        self.version += 1
        return promise

    def promise_deadline_passed(self, promise_id: str, at: datetime) -> bool:
        """The promise's deadline passed (its timer): PromiseBroken if still pending.

        Nothing on a case out of collection, or a promise kept (or broken) already.
        """
        promise = next((p for p in self.promises if p.id == promise_id), None)
        if promise is None or not promise.is_pending or not self.is_open:
            return False
        promise.break_(ensure_utc(at))
        self._record(
            PromiseBroken(
                **self._ids(),
                promise_id=promise.id,
                due_date=promise.due_date,
                amount_due=promise.outstanding,
            )
        )
        self.version += 1
        return True

    # -- repayment plans (CASE-HARDSHIP) ----------------------------------------

    def create_plan(
        self,
        plan_id: str,
        installments: list[tuple[date, Decimal]],
        agreement_ref: str,
        *,
        now: datetime,
        policy: CasePolicy,
    ) -> Plan:
        """A signed hardship plan (PlanCreated); the case moves to ``plan``.

        The installments (in due-date order, none before the debtor's today) must
        add up to the balance or less; refused with InvalidField (rule
        CASE-HARDSHIP) otherwise. Only from a state that may move to ``plan``
        (IllegalTransition / ActionNotAllowed naming the state).
        """
        require_open(self.status, "start a repayment plan")
        transition(self.status, CaseStatus.PLAN)  # refuse early, before validating
        now = ensure_utc(now)
        rule_id = plans_.RULE
        ref = _under(
            rule_id,
            validation.required_text,
            agreement_ref,
            field="agreement_ref",
            max_length=MAX_KEY,
        )
        if not installments:
            raise InvalidField(FieldError("installments", rule_id, "at least one installment"))
        if len(installments) > policy.plan_max_installments:
            raise InvalidField(
                FieldError(
                    "installments",
                    rule_id,
                    f"at most {policy.plan_max_installments} installments",
                )
            )
        today = self.today(now)
        items: list[plans_.Installment] = []
        previous: date | None = None
        for n, (due, amount) in enumerate(installments, start=1):
            where = f"installments[{n - 1}]"
            value = _under(rule_id, validation.money, amount, field=f"{where}.amount")
            if value <= 0:
                raise InvalidField(FieldError(f"{where}.amount", rule_id, "must be more than 0"))
            if due < today:
                raise InvalidField(
                    FieldError(
                        f"{where}.due_date", rule_id, f"is before the debtor's today {today}"
                    )
                )
            if previous is not None and due <= previous:
                raise InvalidField(
                    FieldError(f"{where}.due_date", rule_id, "due dates must ascend")
                )
            previous = due
            items.append(plans_.Installment(no=n, due_date=due, amount=value))
        plan = Plan(
            id=plan_id,
            case_id=self.id,
            agreement_ref=ref,
            installments=items,
            created_at=now,
            new=True,
        )
        if plan.total > self.balance:
            raise InvalidField(
                FieldError(
                    "installments",
                    rule_id,
                    f"installments add up to {plan.total}, more than the balance {self.balance}",
                )
            )
        self.plan = plan
        self._record(
            PlanCreated(
                **self._ids(),
                plan_id=plan_id,
                installments=len(items),
                total=plan.total,
                first_due_date=items[0].due_date,
                created_at=now,
            )
        )
        self._move(CaseStatus.PLAN, now, rule_id)
        return plan

    def installment_day_ended(self, plan_id: str, no: int, at: datetime) -> bool:
        """An installment's day ended (its timer): InstallmentMissed if it is unpaid.

        Nothing on a case out of collection, another plan, or a paid installment.
        """
        plan = self.plan
        if plan is None or plan.id != plan_id or not self.is_open:
            return False
        if not 1 <= no <= len(plan.installments):
            return False
        inst = plan.installment(no)
        if inst.status != InstallmentStatus.DUE or inst.outstanding <= 0:
            return False
        inst.status = InstallmentStatus.MISSED
        plan.dirty = True
        self._record(
            InstallmentMissed(
                **self._ids(),
                plan_id=plan.id,
                installment_no=no,
                due_date=inst.due_date,
                amount=inst.outstanding,
            )
        )
        self.version += 1
        return True

    # -- lifecycle -----------------------------------------------------------

    def recall(self, reason: str | None, at: datetime) -> None:
        """The bank withdrew the account: all contact must stop (CaseRecalled)."""
        self.status = transition(self.status, CaseStatus.RECALLED)
        self._record(
            CaseRecalled(**self._ids(), recalled_at=ensure_utc(at), reason=_reason(reason))
        )
        self.version += 1

    def close(self, reason: str, at: datetime) -> None:
        """Close the case for good (CaseClosed); ``reason`` is a code, not free text."""
        code = _reason(reason)
        if code is None:
            raise ValueError("closing a case needs a reason code")
        self.status = transition(self.status, CaseStatus.CLOSED)
        self._record(CaseClosed(**self._ids(), reason=code, closed_at=ensure_utc(at)))
        self.version += 1

    def start_skip_tracing(self, at: datetime) -> None:
        """Contact is lost: lawful skip tracing (CASE-SKIP)."""
        self._move(CaseStatus.SKIP_TRACING, at, "CASE-SKIP")

    def contact_regained(self, at: datetime) -> None:
        """Skip tracing found the debtor: back in collection (CASE-SKIP)."""
        self._move(CaseStatus.ACTIVE, at, "CASE-SKIP")

    def escalate_to_legal(self, at: datetime, table: StrategyTable) -> None:
        """Still unreachable (or escalated by decision): legal status, and the legal
        track while the case stays there, whatever the table's rules say (CASE-SKIP)."""
        self._move(CaseStatus.LEGAL, at, ESCALATION_RULE)
        self._redecide(table)

    def assign(self, agent_id: str, team_id: str | None, at: datetime) -> bool:
        """Hand the case to an agent (CaseAssigned); the same agent and team again is a no-op."""
        require_open(self.status, "be assigned")
        if (agent_id, team_id) == (self.agent_id, self.team_id):
            return False
        previous = self.agent_id
        self.agent_id, self.team_id = agent_id, team_id
        self._record(
            CaseAssigned(
                **self._ids(),
                agent_id=agent_id,
                team_id=team_id,
                previous_agent_id=previous,
                assigned_at=ensure_utc(at),
            )
        )
        self.version += 1
        return True

    # -- internals -----------------------------------------------------------

    def _ids(self) -> dict[str, str]:
        return {"case_id": self.id, "debtor_id": self.debtor_id}

    def _record(self, event: Event) -> None:
        self.events.append(event)

    def _move(self, target: CaseStatus, at: datetime, rule_id: str) -> None:
        previous = self.status
        self.status = transition(previous, target)
        self._record(
            CaseStatusChanged(
                **self._ids(),
                previous_status=_code(previous),
                status=_code(target),
                rule_id=rule_id,
                changed_at=ensure_utc(at),
            )
        )
        self.version += 1

    def _rebucket(self, now: datetime, policy: CasePolicy) -> bool:
        today = self.today(now)
        days = days_past_due(self.overdue_since, today)
        bucket = bucket_for(days, policy)
        if bucket == self.bucket:
            return False
        previous, self.bucket = self.bucket, bucket
        self._record(
            CaseBucketChanged(
                **self._ids(),
                previous=_code(previous),
                bucket=_code(bucket),
                days_past_due=days,
                as_of=today,
            )
        )
        return True

    def _redecide(self, table: StrategyTable) -> bool:
        if self.status == CaseStatus.LEGAL:
            decision = table.escalate_to_legal()
        else:
            decision = table.decide(self.bucket, self.history, self.willingness)
        if decision == self.strategy:
            return False
        previous, self.strategy = self.strategy, decision
        if (previous.track, previous.channels) != (decision.track, decision.channels):
            self._record_strategy(previous)
        return True

    def _record_strategy(self, previous: StrategyDecision | None) -> None:
        d = self.strategy
        self._record(
            CaseStrategyChanged(
                **self._ids(),
                previous_track=None if previous is None else _code(previous.track),
                track=_code(d.track),
                channels=[_code(c) for c in d.channels],
                rule_name=d.rule_name,
                table_version=d.table_version,
                reason=d.reason,
            )
        )


def _under(rule_id: str, check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a field validator, reporting its refusal under ``rule_id``."""
    try:
        return check(*args, **kwargs)
    except InvalidField as exc:
        raise InvalidField(FieldError(exc.error.field, rule_id, exc.error.reason)) from None


def _code(value: StrEnum) -> Any:
    """An enum member as the plain string code the event contracts (Literals) carry."""
    return str(value)


def _reason(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return validation.required_text(value, field="reason", max_length=MAX_REASON)
