"""Taking a case from its agent (CaseUnassigned), the counterpart of ``Case.assign``.

Ops may take a case back, and a QA suspension (QA-SANCTION) leaves the cases
nobody else can take without an agent. Either way the case records
CaseUnassigned naming the previous agent, the reason and the rule, so the
agency, the bank's change feed and the audit trail see every hand-over. Only a
case in collection has an agent to take (ActionNotAllowed naming its state).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from case_svc.domain.lifecycle import require_open
from case_svc.domain.model import Case
from collect_common.clock import ensure_utc
from collect_common.events.types import CaseUnassigned


class UnassignReason(StrEnum):
    OPS = "ops"
    AGENT_SUSPENDED = "agent_suspended"  # rule: QA-SANCTION


def unassign(
    case: Case, reason: UnassignReason, at: datetime, *, rule_id: str | None = None
) -> bool:
    """Leave the case without an agent (CaseUnassigned); False if it had none."""
    require_open(case.status, "be unassigned")
    if case.agent_id is None:
        return False
    previous_agent, previous_team = case.agent_id, case.team_id
    case.agent_id = case.team_id = None
    case.events.append(
        CaseUnassigned(
            case_id=case.id,
            debtor_id=case.debtor_id,
            previous_agent_id=previous_agent,
            previous_team_id=previous_team,
            reason=UnassignReason(reason).value,
            rule_id=rule_id,
            unassigned_at=ensure_utc(at),
        )
    )
    case.version += 1
    return True
