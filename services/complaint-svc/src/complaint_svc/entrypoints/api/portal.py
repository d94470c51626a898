"""The public complaint form of the online portal (COMP-CHANNELS): no authentication,
rate-limited per client address and size-limited; answers at once with the complaint number
and the expected handling time.

The rate limit (``portal_rate_limit`` forms per ``portal_rate_window_seconds``) is counted in
the database so that every replica shares it (``service_layer.portal_limits``). The client
address is the connection's peer: behind a reverse proxy, run the server with its
proxy-headers option limited to the proxy's addresses (uvicorn ``--forwarded-allow-ips``),
so the address is the forwarded one and a client cannot forge it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from collect_common.runtime import ServiceRuntime
from collect_common.web.auth import PUBLIC
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from complaint_svc.domain.model import Channel, ComplaintType
from complaint_svc.domain.policy import ComplaintPolicy
from complaint_svc.entrypoints.api.bodies import bounded_body
from complaint_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from complaint_svc.entrypoints.api.schemas import ComplaintIn, PortalReceipt
from complaint_svc.service_layer import portal_limits
from complaint_svc.service_layer.tickets import Intake, open_ticket

router = APIRouter(prefix="/v1/portal", tags=["portal"])


@router.post(
    "/complaints",
    response_model=PortalReceipt,
    status_code=201,
    responses={
        413: {"content": {PROBLEM_JSON: {}}},
        422: {"content": {PROBLEM_JSON: {}}},
        429: {"content": {PROBLEM_JSON: {}}, "description": "Too many forms from this address"},
    },
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
    """Beyond the policy's rate per client address: 429 with ``Retry-After`` (rule
    COMP-CHANNELS). The body is read up to the policy's limit (413 beyond, COMP-CHANNELS)."""
    await _within_rate(request, ctx.policy, runtime)
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


async def _within_rate(request: Request, policy: ComplaintPolicy, runtime: ServiceRuntime) -> None:
    """rule: COMP-CHANNELS. One more form from this address; 429 beyond the policy's rate."""
    address = request.client.host if request.client is not None else "unknown"
    decision = await portal_limits.take(
        runtime.sessions,
        runtime.cipher.blind_index(address, purpose=portal_limits.PURPOSE),
        runtime.clock.now(),
        limit=policy.portal_rate_limit,
        window_seconds=policy.portal_rate_window_seconds,
    )
    if not decision.allowed:
        raise ProblemError(
            429,
            f"at most {decision.limit} complaint forms per {policy.portal_rate_window_seconds} "
            f"seconds from one address; try again in {decision.retry_after_seconds} seconds",
            slug="rate-limited",
            rule=policy.rule_of("portal_rate_limit"),
            headers={"Retry-After": str(decision.retry_after_seconds)},
            limit=decision.limit,
            window_seconds=policy.portal_rate_window_seconds,
        )
