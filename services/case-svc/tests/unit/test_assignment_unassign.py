"""Taking a case from its agent on the aggregate (CaseUnassigned)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from case_svc.domain.assignment import UnassignReason, unassign
from case_svc.domain.lifecycle import ActionNotAllowed, CaseStatus
from case_svc.domain.model import Case, CaseIntake
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import DEFAULT_STRATEGY, History
from collect_common.events.types import CaseUnassigned

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def assigned() -> Case:
    intake = CaseIntake(
        bank_id="bank-a",
        contract_no="LN-1",
        name="张三",
        national_id="11010519491231002X",
        phones=("13800138000",),
        address=None,
        principal=Decimal("1000.00"),
        interest=Decimal("0.00"),
        fees=Decimal("0.00"),
        overdue_since=date(2026, 1, 30),
        debtor_timezone="Asia/Shanghai",
        history=History.GOOD,
    )
    case = Case.open("c-1", "dbt-1", intake, now=NOW, policy=CasePolicy(), table=DEFAULT_STRATEGY)
    case.assign("a-1", "team-1", NOW)
    case.events.clear()
    return case


def test_unassign_records_who_held_the_case_and_why() -> None:
    case = assigned()
    version = case.version
    assert unassign(case, UnassignReason.AGENT_SUSPENDED, NOW, rule_id="QA-SANCTION")
    assert (case.agent_id, case.team_id, case.version) == (None, None, version + 1)
    (event,) = case.events
    assert isinstance(event, CaseUnassigned)
    assert (event.previous_agent_id, event.previous_team_id) == ("a-1", "team-1")
    assert (event.reason, event.rule_id, event.unassigned_at) == (
        "agent_suspended",
        "QA-SANCTION",
        NOW,
    )


def test_a_case_without_an_agent_records_nothing() -> None:
    case = assigned()
    unassign(case, UnassignReason.OPS, NOW)
    case.events.clear()
    assert not unassign(case, UnassignReason.OPS, NOW)
    assert case.events == []


def test_a_case_out_of_collection_is_refused_naming_its_state() -> None:
    case = assigned()
    case.record_payment("p-1", Decimal("1000.00"), NOW)
    with pytest.raises(ActionNotAllowed, match="case is settled: cannot be unassigned") as exc:
        unassign(case, UnassignReason.OPS, NOW)
    assert exc.value.current == CaseStatus.SETTLED
    assert case.agent_id == "a-1"
