"""The e-mail channel (COMP-CHANNELS): the mail gateway forwards each raw RFC 822 message.

The gateway authenticates as a machine client with the ``complaint`` role. Every
non-empty message is filed, one ticket per Message-ID: a message that cannot be read
(subject not in the form, no sender, no text, not even valid headers) is filed with
``needs_triage`` and the reasons, never dropped. Only an empty body is refused (422).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.idempotency import REPLAYED_HEADER
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from complaint_svc.domain.mail import parse_complaint_mail
from complaint_svc.entrypoints.api.bodies import bounded_body
from complaint_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from complaint_svc.entrypoints.api.schemas import TicketOut
from complaint_svc.service_layer.mail import file_mail, filed_ticket

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])


def _answer(ticket: Any, created: bool) -> Response:
    body = TicketOut.of(ticket).model_dump(mode="json")
    if created:
        return JSONResponse(body, status_code=201)
    return JSONResponse(body, status_code=200, headers={REPLAYED_HEADER: "true"})


@router.post(
    "/email",
    response_model=TicketOut,
    status_code=201,
    responses={
        200: {"description": "This Message-ID was filed before: that ticket, replayed"},
        413: {"content": {PROBLEM_JSON: {}}},
        422: {"content": {PROBLEM_JSON: {}}},
    },
    summary="File a complaint e-mail (raw RFC 822, from the mail gateway)",
    dependencies=[require_roles(Role.COMPLAINT)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_inbound_email(request: Request, ctx: ContextDep, runtime: RuntimeDep) -> Response:
    """Subject ``关于xxxx银行催收投诉 - [name] - [phone]`` gives the name and the phone; the
    sender's address is the contact; the text (plain, else HTML stripped) the content; the
    message (SHA-256 and size) and each attachment (name, type, size, SHA-256) are the
    evidence. The ticket runs the SLA chain (COMP-SLA-*) like any other. The same
    Message-ID again answers 200 with the ticket filed first (``Idempotent-Replayed``)."""
    raw = await bounded_body(request, ctx.policy.email_max_bytes, "the message")
    if not raw.strip():
        raise ProblemError(422, "the message is empty", field="body", rule="COMP-CHANNELS")
    mail = parse_complaint_mail(raw)
    now = runtime.clock.now()
    try:
        async with runtime.uow() as uow:
            ticket, created = await file_mail(ctx, uow, mail, now)
            if created:
                await uow.commit()
        return _answer(ticket, created)
    except IntegrityError:  # the same message filed concurrently: answer with that ticket
        async with runtime.uow() as uow:
            existing = await filed_ticket(uow, mail.message_id)
        if existing is None:
            raise
        return _answer(existing, False)
