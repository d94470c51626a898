"""What the case routers share: domain refusals as problems, and the bank's scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from case_svc.domain.lifecycle import CaseStateError
from case_svc.domain.model import PaymentConflict
from case_svc.domain.validation import InvalidField
from case_svc.service_layer.assignment import AgentNotFound, AgentUnavailable
from case_svc.service_layer.intake import CaseNotFound
from collect_common.security.auth import Role
from collect_common.web.problems import PROBLEM_JSON, ProblemError

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"content": {PROBLEM_JSON: {}}},
    409: {"content": {PROBLEM_JSON: {}}},
}


@contextmanager
def as_problems(case_id: str, *, state_rule: str = "CASE-LIFECYCLE") -> Iterator[None]:
    """404 for an unknown case or agent; 409 naming the rule (``state_rule`` for the
    case's state) and the case's current state; 422 naming the field and rule."""
    try:
        yield
    except CaseNotFound:
        raise ProblemError(404, f"no case {case_id}", field="case_id") from None
    except AgentNotFound as exc:
        raise ProblemError(404, str(exc), field="agent_id") from None
    except AgentUnavailable as exc:
        raise ProblemError(
            409, str(exc), rule=exc.rule, slug="agent-unavailable", field="agent_id"
        ) from None
    except CaseStateError as exc:
        raise ProblemError(
            409, str(exc), rule=state_rule, slug="case-state", current_state=str(exc.current)
        ) from None
    except PaymentConflict as exc:
        raise ProblemError(409, str(exc), rule="CASE-INTAKE", field="payment_id") from None
    except InvalidField as exc:
        raise ProblemError(
            422, exc.error.reason, rule=exc.error.rule, field=exc.error.field
        ) from None


def bank_scope(request: Request) -> str | None:
    """The bank sees its own cases only; the agency's roles see every case."""
    principal = request.state.principal
    return str(principal.subject) if Role.BANK in principal.roles else None
