"""What a broken repayment plan does to its case (CASE-HARDSHIP, CASE-STRATEGY).

``Plan.breach`` says whether a plan counts as broken under the contract's policy;
:func:`break_plan_if_due` applies it to the case that holds the plan: the plan is
marked broken (PlanBroken), the case leaves ``plan`` for ``active``
(CaseStatusChanged, rule CASE-HARDSHIP), and the strategy is decided again. With
``plan_broken_lowers_willingness`` the debtor's willingness to pay is marked low
first (CaseUpdated naming ``willingness``), which is what moves the track; a new
CaseStrategyChanged follows when the track or its channels change.
"""

from __future__ import annotations

from datetime import datetime

from case_svc.domain.lifecycle import CaseStatus, transition
from case_svc.domain.model import Case
from case_svc.domain.plans import RULE, BreakReason, PlanStatus
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import StrategyTable, Willingness
from collect_common.clock import ensure_utc
from collect_common.events.types import CaseStatusChanged, PlanBroken


def break_plan_if_due(
    case: Case, policy: CasePolicy, table: StrategyTable, now: datetime
) -> BreakReason | None:
    """Break the case's running plan if the policy says it is broken on the debtor's
    day at ``now``; returns why, or None (no plan, not broken, case out of collection)."""
    plan = case.plan
    if plan is None or plan.status != PlanStatus.ACTIVE or not case.is_open:
        return None
    now = ensure_utc(now)
    reason = plan.breach(policy, case.today(now))
    if reason is None:
        return None
    plan.break_()
    ids = {"case_id": case.id, "debtor_id": case.debtor_id}
    case.events.append(
        PlanBroken(
            **ids,
            plan_id=plan.id,
            reason=reason.value,
            missed_installments=len(plan.missed),
            amount_overdue=plan.amount_overdue,
            paid=plan.paid,
            broken_at=now,
        )
    )
    if case.status == CaseStatus.PLAN:
        previous = case.status
        case.status = transition(previous, CaseStatus.ACTIVE)
        case.events.append(
            CaseStatusChanged(
                **ids,
                previous_status=previous.value,
                status=case.status.value,
                rule_id=RULE,
                changed_at=now,
            )
        )
    case.version += 1
    # rule: CASE-STRATEGY. A broken promise of this weight is evidence of willingness.
    if policy.plan_broken_lowers_willingness:
        if not case.assess_willingness(Willingness.LOW, table, at=now):
            case.apply_strategy(table)
    else:
        case.apply_strategy(table)
    return reason
