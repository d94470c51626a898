"""The contact-policy engine's answer before every contact: ``POST /v1/contact-decisions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, model_validator

from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from contact_svc.domain.policy import ContactChannel
from contact_svc.service_layer.batching import DecisionBatcher
from contact_svc.service_layer.decisions import DecisionAsk, UnknownCase, UnknownDebtor

router = APIRouter(prefix="/v1/contact-decisions", tags=["decisions"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"content": {PROBLEM_JSON: {}}}}


class DecisionRequest(BaseModel):
    case_id: str | None = Field(default=None, max_length=36)
    debtor_id: str | None = Field(default=None, max_length=64)
    channel: ContactChannel
    agent_id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.case_id is None) == (self.debtor_id is None):
            raise ValueError("name exactly one of case_id or debtor_id")
        return self


class DenialOut(BaseModel):
    rule: str = Field(examples=["CALL-QUIET"])
    reason: str


class DecisionOut(BaseModel):
    decision_id: str
    allowed: bool
    denials: list[DenialOut]
    next_allowed_at: datetime | None = Field(
        description="When time-bound rules would next allow it; null when only a change of "
        "state can (case closed, channel not in the track, agent suspended, a contact hold "
        "without an end)"
    )
    debtor_id: str
    case_id: str | None


@router.post(
    "",
    response_model=DecisionOut,
    responses=ERRORS,
    summary="Allow or deny a contact now, with the rules behind a denial",
    dependencies=[require_roles(Role.DIALER, Role.AGENT)],
)
async def post_decision(body: DecisionRequest, request: Request) -> DecisionOut:
    batcher: DecisionBatcher = request.app.state.decision_batcher
    clock = request.app.state.runtime.clock
    ask = DecisionAsk(
        now=clock.now(),
        channel=body.channel,
        case_id=body.case_id,
        debtor_id=body.debtor_id,
        agent_id=body.agent_id,
    )
    try:
        outcome = await batcher.decide(ask)
    except UnknownCase:
        raise ProblemError(404, f"no case {body.case_id}", field="case_id") from None
    except UnknownDebtor:
        raise ProblemError(404, f"no debtor {body.debtor_id}", field="debtor_id") from None
    d = outcome.decision
    return DecisionOut(
        decision_id=outcome.decision_id,
        allowed=d.allowed,
        denials=[DenialOut(rule=x.rule, reason=x.reason) for x in d.denials],
        next_allowed_at=d.next_allowed_at,
        debtor_id=outcome.debtor_id,
        case_id=outcome.case_id,
    )
