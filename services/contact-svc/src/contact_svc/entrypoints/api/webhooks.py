"""The dialer's signed call webhooks: ``POST /v1/webhooks/dialer/calls`` (role ``dialer``).

Every request is verified before anything is parsed (``collect_common.security.webhooks``:
HMAC-SHA256 over timestamp, delivery id and the raw body; a stale timestamp or a replayed
signed request is refused; the replay memory is the service database, shared by replicas).
A refusal is ``401`` problem+json with ``rule: SEC-ACCESS`` and the rejection ``code``.
Handling is idempotent on the delivery id (and on the call's event): a retry answers ``200``
with the outcome of the first delivery and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy.exc import IntegrityError

from collect_common.security.auth import Role
from collect_common.security.webhooks import HEADER_DELIVERY_ID, WebhookRejected, WebhookVerifier
from collect_common.web.auth import require_roles
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from contact_svc.service_layer.calls import CallDelivery, record_call_event, stored_outcome
from contact_svc.service_layer.decisions import ContactContext, UnknownCase, UnknownDebtor

router = APIRouter(prefix="/v1/webhooks/dialer", tags=["webhooks"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"content": {PROBLEM_JSON: {}}} for status in (401, 404, 422)
}
MAX_BODY_BYTES = 64 * 1024


class CallWebhook(BaseModel):
    delivery_id: str = Field(min_length=1, max_length=128)
    event: Literal["started", "answered", "ended"]
    call_id: str = Field(min_length=1, max_length=64)
    case_id: str = Field(min_length=1, max_length=36)
    debtor_id: str = Field(min_length=1, max_length=64)
    agent_id: str = Field(min_length=1, max_length=64)
    at: datetime
    contact_id: str | None = Field(
        default=None,
        max_length=36,
        description="The pre-dial decision id this call carries out, when the dialer has it",
    )
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)
    disposition: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^[a-z_]+$",
        examples=["answered", "no_answer", "busy", "complaint"],
    )
    recording_uri: str | None = Field(default=None, max_length=500)
    speech_rate_wpm: float | None = Field(default=None, ge=0, le=1000)
    volume_db: float | None = Field(default=None, ge=-200, le=200)

    @model_validator(mode="after")
    def _ended_has_its_result(self) -> Self:
        if self.at.tzinfo is None:
            raise ValueError("at must carry a UTC offset")
        if self.event == "ended" and (self.duration_seconds is None or not self.disposition):
            raise ValueError("an ended call needs duration_seconds and disposition")
        return self


class CallWebhookOut(BaseModel):
    delivery_id: str
    call_id: str
    event: str
    contact_id: str | None
    flagged: bool = Field(description="The policy would have denied the call at its start")
    flag_rules: list[str] = Field(examples=[["CALL-QUIET"]])
    duplicate: bool = Field(description="A retry: the first delivery's outcome, nothing changed")


@router.post(
    "/calls",
    response_model=CallWebhookOut,
    responses=ERRORS,
    summary="Call started / answered / ended, HMAC-signed by the dialer",
    dependencies=[require_roles(Role.DIALER)],
)
async def post_call_webhook(request: Request) -> CallWebhookOut:
    verifier: WebhookVerifier = request.app.state.dialer_verifier
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ProblemError(413, f"a webhook body is at most {MAX_BODY_BYTES} bytes")
    try:
        verified = await verifier.verify(request.headers, body)
    except WebhookRejected as exc:
        # rule: SEC-ACCESS
        raise ProblemError(
            401, f"webhook refused: {exc.reason}", rule="SEC-ACCESS", code=exc.code
        ) from None
    try:
        payload = CallWebhook.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise ProblemError(422, first["msg"], field=field) from None
    if payload.delivery_id != verified.delivery_id:
        raise ProblemError(
            422, f"delivery_id differs from the {HEADER_DELIVERY_ID} header", field="delivery_id"
        )
    delivery = CallDelivery(**payload.model_dump())
    ctx: ContactContext = request.app.state.contact_context
    clock = request.app.state.runtime.clock
    try:
        async with ctx.uow_factory() as uow:
            outcome, new = await record_call_event(uow, ctx.policies, delivery, now=clock.now())
            if new:
                await uow.commit()
    except UnknownCase:
        raise ProblemError(404, f"no case {delivery.case_id}", field="case_id") from None
    except UnknownDebtor:
        raise ProblemError(404, f"no debtor {delivery.debtor_id}", field="debtor_id") from None
    except IntegrityError:
        # A concurrent retry of the same delivery committed first: answer with its outcome.
        async with ctx.uow_factory() as uow:
            previous = await stored_outcome(uow.session, delivery)
        if previous is None:
            raise
        outcome, new = previous, False
    return CallWebhookOut(**outcome, duplicate=not new)
