"""Cases in the database: the aggregate in, the aggregate out, its changes recorded.

Personal fields go through ``EncryptedText`` columns (the process's field
cipher); ``debtor_id`` and the national-ID index are keyed hashes, so the same
debtor gets the same id across cases and banks' files without the number being
stored in clear. Saving a case also appends its recorded events to the bank's
change feed (``case_changes``) in the same transaction; the unit of work then
writes them to the outbox.

The case's pending promises (CASE-PROMISE) and running plan (CASE-HARDSHIP)
are loaded with it and written back when saved. Saving also cancels the timers
that no longer have anything to do, in the same transaction: a kept promise's,
a paid installment's, and every timer of a case that left collection (settled,
recalled, closed). Timers are *scheduled* by the service layer, which knows the
policy that sets their instants.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any

from sqlalchemy import String, any_, bindparam, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from case_svc.adapters.tables import (
    case_changes,
    cases,
    payments,
    plan_installments,
    plans,
    promises,
)
from case_svc.domain.buckets import Bucket
from case_svc.domain.lifecycle import CaseStatus
from case_svc.domain.model import Case, Payment
from case_svc.domain.plans import Installment, InstallmentStatus, Plan, PlanStatus
from case_svc.domain.promises import Promise, PromiseStatus
from case_svc.domain.strategy import Channel, History, StrategyDecision, Track, Willingness
from collect_common import timers
from collect_common.db import insert_many
from collect_common.events.catalogue import Event
from collect_common.security.crypto import FieldCipher


def bucket_timer_key(case_id: str) -> str:
    """The key of a case's daily bucket recomputation timer (CASE-BUCKET)."""
    return f"bucket:{case_id}"


def ensure_utc_db(value: datetime) -> datetime:
    """A stored instant as aware UTC (SQLite returns stored UTC values without zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def phones_json(phones: Sequence[str]) -> str:
    """The phones as the ``phones`` column holds them before encryption: a JSON list,
    spelled as ``json.dumps(list(phones))`` spells it (``", "`` between items, non-ASCII
    escaped), each string encoded by json's own C encoder."""
    return "[" + ", ".join(map(encode_basestring_ascii, phones)) + "]"


def feed_data(event: Event) -> str:
    """A change-feed row's ``data``: the event's JSON, as ``event.model_dump_json()`` writes
    it, without that method's per-call handling of its (here unused) options."""
    return event.__pydantic_serializer__.to_json(event).decode()


@lru_cache(maxsize=64)
def _channels_column(channels: tuple[Channel, ...]) -> str:
    """A track's channels, comma-separated, as the ``channels`` column holds them."""
    return ",".join(str(c) for c in channels)


class ConcurrentUpdate(RuntimeError):
    """The case changed since it was read; the caller retries with a fresh copy."""


class CaseRepository:
    def __init__(self, session: AsyncSession, cipher: FieldCipher) -> None:
        self.session = session
        self.cipher = cipher

    # -- identity -------------------------------------------------------------------
    def national_id_index(self, national_id: str) -> str:
        return self.cipher.blind_index(national_id, purpose="national_id")

    def debtor_id_for(self, national_id: str) -> str:
        return "dbt_" + self.cipher.blind_index(national_id, purpose="debtor")[:24]

    # -- reads --------------------------------------------------------------------------
    async def get(self, case_id: str, *, for_update: bool = False) -> Case | None:
        query = select(cases).where(cases.c.id == case_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else await self._load(row)

    async def by_contracts(self, bank_id: str, contract_nos: Sequence[str]) -> dict[str, Case]:
        """The bank's existing cases among ``contract_nos``, locked for this transaction."""
        if not contract_nos:
            return {}
        if self.session.get_bind().dialect.name == "postgresql":  # one array parameter
            wanted = cases.c.contract_no == any_(
                bindparam("contract_nos", list(contract_nos), type_=postgresql.ARRAY(String))
            )
        else:
            wanted = cases.c.contract_no.in_(list(contract_nos))
        rows = (
            await self.session.execute(
                select(cases).where(cases.c.bank_id == bank_id, wanted).with_for_update()
            )
        ).all()
        loaded = [await self._load(row, with_payments=False) for row in rows]
        return {case.contract_no: case for case in loaded}

    async def _load(self, row: Any, *, with_payments: bool = True) -> Case:
        paid: dict[str, Payment] = {}
        pending: list[Promise] = []
        plan: Plan | None = None
        if with_payments:
            for p in (
                await self.session.execute(select(payments).where(payments.c.case_id == row.id))
            ).all():
                paid[p.payment_id] = Payment(p.payment_id, p.amount, p.paid_at)
            pending = await self.promises_of(row.id, status=PromiseStatus.PENDING)
            plan = await self._active_plan(row.id)
        return Case(
            id=row.id,
            bank_id=row.bank_id,
            contract_no=row.contract_no,
            debtor_id=row.debtor_id,
            name=row.name,
            national_id=row.national_id,
            phones=tuple(json.loads(row.phones)),
            address=row.address,
            principal=row.principal,
            interest=row.interest,
            fees=row.fees,
            overdue_since=row.overdue_since,
            debtor_timezone=row.debtor_timezone,
            history=History(row.history),
            willingness=Willingness(row.willingness),
            bucket=Bucket(row.bucket),
            strategy=StrategyDecision(
                track=Track(row.track),
                channels=tuple(Channel(c) for c in row.channels.split(",") if c),
                rule_name=row.strategy_rule,
                table_version=row.strategy_version,
                reason=row.strategy_reason,
            ),
            opened_at=row.opened_at,
            status=CaseStatus(row.status),
            paid_total=row.paid_total,
            payments=paid,
            agent_id=row.agent_id,
            team_id=row.team_id,
            region=row.region,
            customer_group=row.customer_group,
            product=row.product,
            version=row.version,
            promises=pending,
            plan=plan,
        )

    async def promises_of(
        self, case_id: str, *, status: PromiseStatus | None = None
    ) -> list[Promise]:
        """The case's promises, oldest first (only those in ``status`` if given)."""
        query = select(promises).where(promises.c.case_id == case_id)
        if status is not None:
            query = query.where(promises.c.status == str(status))
        rows = (await self.session.execute(query.order_by(promises.c.made_at, promises.c.id))).all()
        return [
            Promise(
                id=r.id,
                case_id=r.case_id,
                amount=r.amount,
                due_date=r.due_date,
                due_at=ensure_utc_db(r.due_at),
                made_at=ensure_utc_db(r.made_at),
                agent_id=r.agent_id,
                paid=r.paid,
                status=PromiseStatus(r.status),
                resolved_at=ensure_utc_db(r.resolved_at) if r.resolved_at is not None else None,
            )
            for r in rows
        ]

    async def plans_of(self, case_id: str) -> list[Plan]:
        """The case's plans, oldest first, with their installments."""
        rows = (
            await self.session.execute(
                select(plans).where(plans.c.case_id == case_id).order_by(plans.c.created_at)
            )
        ).all()
        return [await self._plan(r) for r in rows]

    async def _active_plan(self, case_id: str) -> Plan | None:
        row = (
            await self.session.execute(
                select(plans).where(
                    plans.c.case_id == case_id, plans.c.status == str(PlanStatus.ACTIVE)
                )
            )
        ).first()
        return None if row is None else await self._plan(row)

    async def _plan(self, row: Any) -> Plan:
        items = (
            await self.session.execute(
                select(plan_installments)
                .where(plan_installments.c.plan_id == row.id)
                .order_by(plan_installments.c.no)
            )
        ).all()
        return Plan(
            id=row.id,
            case_id=row.case_id,
            agreement_ref=row.agreement_ref,
            status=PlanStatus(row.status),
            created_at=ensure_utc_db(row.created_at),
            installments=[
                Installment(
                    no=i.no,
                    due_date=i.due_date,
                    amount=i.amount,
                    paid=i.paid,
                    status=InstallmentStatus(i.status),
                )
                for i in items
            ],
        )

    # -- writes -------------------------------------------------------------------------
    def _values(self, case: Case, now: datetime) -> dict[str, Any]:
        return {
            "bank_id": case.bank_id,
            "contract_no": case.contract_no,
            "debtor_id": case.debtor_id,
            "national_id_index": self.national_id_index(case.national_id),
            "name": case.name,
            "national_id": case.national_id,
            "phones": phones_json(case.phones),
            "address": case.address,
            "principal": case.principal,
            "interest": case.interest,
            "fees": case.fees,
            "paid_total": case.paid_total,
            "overdue_since": case.overdue_since,
            "debtor_timezone": case.debtor_timezone,
            "history": str(case.history),
            "willingness": str(case.willingness),
            "bucket": str(case.bucket),
            "track": str(case.strategy.track),
            "channels": _channels_column(case.strategy.channels),
            "strategy_rule": case.strategy.rule_name,
            "strategy_version": case.strategy.table_version,
            "strategy_reason": case.strategy.reason,
            "status": str(case.status),
            "agent_id": case.agent_id,
            "team_id": case.team_id,
            "region": case.region,
            "customer_group": case.customer_group,
            "product": case.product,
            "updated_at": now,
        }

    async def add_many(self, new_cases: Sequence[Case], now: datetime) -> None:
        """Insert new cases and their change-feed rows; large batches by COPY (insert_many)."""
        if not new_cases:
            return
        await insert_many(self.session, cases, [self._new_row(c, now) for c in new_cases])
        await self._record_changes(new_cases, now)

    def _new_row(self, case: Case, now: datetime) -> dict[str, Any]:
        row = self._values(case, now)
        row["id"] = case.id
        row["opened_at"] = case.opened_at
        row["version"] = case.version
        return row

    async def save(self, case: Case, now: datetime, *, expected_version: int) -> None:
        """Write a changed case; refuse if someone else changed it since it was read."""
        new_version = max(case.version, expected_version + 1)
        result = await self.session.execute(
            update(cases)
            .where(cases.c.id == case.id, cases.c.version == expected_version)
            .values(**self._values(case, now), version=new_version)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdate(case.id)
        case.version = new_version
        await self._save_promises(case)
        await self._save_plan(case)
        if not case.is_open:
            await self._cancel_timers(case)
        await self._record_changes([case], now)

    async def _save_promises(self, case: Case) -> None:
        for p in case.promises:
            if p.new:
                await self.session.execute(
                    promises.insert().values(
                        id=p.id,
                        case_id=p.case_id,
                        amount=p.amount,
                        due_date=p.due_date,
                        due_at=p.due_at,
                        paid=p.paid,
                        status=str(p.status),
                        agent_id=p.agent_id,
                        made_at=p.made_at,
                        resolved_at=p.resolved_at,
                    )
                )
            elif p.dirty:
                await self.session.execute(
                    update(promises)
                    .where(promises.c.id == p.id)
                    .values(paid=p.paid, status=str(p.status), resolved_at=p.resolved_at)
                )
            if (p.new or p.dirty) and p.status == PromiseStatus.KEPT:
                await timers.cancel(self.session, p.timer_key)  # rule: CASE-PROMISE
            p.new = p.dirty = False

    async def _save_plan(self, case: Case) -> None:
        plan = case.plan
        if plan is None or not (plan.new or plan.dirty):
            return
        if plan.new:
            await self.session.execute(
                plans.insert().values(
                    id=plan.id,
                    case_id=plan.case_id,
                    agreement_ref=plan.agreement_ref,
                    status=str(plan.status),
                    created_at=plan.created_at,
                )
            )
            await self.session.execute(
                plan_installments.insert(),
                [
                    {
                        "plan_id": plan.id,
                        "no": i.no,
                        "due_date": i.due_date,
                        "amount": i.amount,
                        "paid": i.paid,
                        "status": str(i.status),
                    }
                    for i in plan.installments
                ],
            )
        else:
            await self.session.execute(
                update(plans).where(plans.c.id == plan.id).values(status=str(plan.status))
            )
            for i in plan.installments:
                await self.session.execute(
                    update(plan_installments)
                    .where(plan_installments.c.plan_id == plan.id, plan_installments.c.no == i.no)
                    .values(paid=i.paid, status=str(i.status))
                )
        for i in plan.installments:  # rule: CASE-HARDSHIP. A paid installment cannot be missed.
            if i.status == InstallmentStatus.PAID:
                await timers.cancel(self.session, plan.timer_key(i.no))
        plan.new = plan.dirty = False

    async def _cancel_timers(self, case: Case) -> None:
        """The case left collection: nothing is due on it any more."""
        await timers.cancel(self.session, bucket_timer_key(case.id))
        for p in case.promises:
            if p.is_pending:
                await timers.cancel(self.session, p.timer_key)
        if case.plan is not None:
            for i in case.plan.installments:
                await timers.cancel(self.session, case.plan.timer_key(i.no))

    async def add_payment(self, case_id: str, payment: Payment) -> None:
        await self.session.execute(
            payments.insert().values(
                case_id=case_id,
                payment_id=payment.payment_id,
                amount=payment.amount,
                paid_at=payment.paid_at,
            )
        )

    async def _record_changes(self, changed: Sequence[Case], now: datetime) -> None:
        rows = [
            {
                "bank_id": case.bank_id,
                "case_id": case.id,
                "contract_no": case.contract_no,
                "change": event.type_name,
                "data": feed_data(event),
                "at": now,
            }
            for case in changed
            for event in case.events
        ]
        await insert_many(self.session, case_changes, rows)
