"""The public complaint form of the online portal (COMP-CHANNELS): no authentication,
size-limited; answers at once with the complaint number and the expected handling time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from collect_common.web.auth import PUBLIC
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from complaint_svc.domain.model import Channel, ComplaintType
from complaint_svc.entrypoints.api.bodies import bounded_body
from complaint_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from complaint_svc.entrypoints.api.schemas import ComplaintIn, PortalReceipt
from complaint_svc.service_layer.tickets import Intake, open_ticket

router = APIRouter(prefix="/v1/portal", tags=["portal"])


@router.post(
    "/complaints",
    response_model=PortalReceipt,
    status_code=201,
    responses={413: {"content": {PROBLEM_JSON: {}}}, 422: {"content": {PROBLEM_JSON: {}}}},
    summary="File a complaint from the public portal (no authentication)",
    dependencies=[PUBLIC],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ComplaintIn.model_json_schema()}},
        }
    },
)
async def post_portal_complaint(
    request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> PortalReceipt:
    """The body is read up to the policy's limit (413 beyond, rule COMP-CHANNELS)."""
    raw = await bounded_body(request, ctx.policy.portal_max_body_bytes)
    try:
        body = ComplaintIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise ProblemError(422, first["msg"], field=field, rule="COMP-RECORD") from None
    intake = Intake(
        channel=Channel.PORTAL,
        type=ComplaintType(body.type),
        complainant_name=body.complainant_name,
        complainant_contact=body.complainant_contact,
        content=body.content,
        case_id=body.case_id,
    )
    now = runtime.clock.now()
    async with runtime.uow() as uow:
        ticket = await open_ticket(ctx, uow, intake, now)
        await uow.commit()
    due = ticket.expected_result_by
    assert due is not None
    return PortalReceipt(
        number=ticket.number,
        received_at=ticket.accepted_at,
        expected_result_by=due,
        expected_handling_hours=(due - now).total_seconds() / 3600,
    )
