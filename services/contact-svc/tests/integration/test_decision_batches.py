"""Pre-dial decisions taken in batches (group commit): answers as if one by one, caps held
across batches and across two replicas over one PostgreSQL, one bad ask failing alone,
and the decision counters dashboards read."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from collect_common.clock import FrozenClock
from collect_common.events.types import AgentSuspended
from collect_common.testing.apps import offline_settings, service_client
from contact_svc.adapters.tables import contact_attempts, contact_denials
from contact_svc.main import create_app
from contact_svc.service_layer.batching import DecisionBatcher
from contact_svc.service_layer.decisions import (
    DecisionAsk,
    DecisionOutcome,
    UnknownCase,
    UnknownDebtor,
    decide_many,
)
from contact_svc.settings import Settings

from .conftest import DIALER, Apply, imported

URL = "/v1/contact-decisions"


async def test_one_batch_decides_in_order_and_answers_unknown_targets_alone(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    await apply(imported("c-2", "d-2", tz="America/New_York"))  # 21:00 there: quiet
    ctx = contact_api.app.state.contact_context  # type: ignore[attr-defined]
    now = clock.now()
    asks = [
        *(DecisionAsk(now, "call", case_id="c-1", agent_id=f"a-{n}") for n in range(4)),
        DecisionAsk(now, "call", case_id="no-such-case"),
        DecisionAsk(now, "call", debtor_id="no-such-debtor"),
        DecisionAsk(now, "call", debtor_id="d-2"),
        DecisionAsk(now, "sms", case_id="c-1"),
    ]
    async with ctx.uow_factory() as uow:
        answers = await decide_many(uow, ctx.policies, asks)
        await uow.commit()
    outcomes = [a for a in answers if isinstance(a, DecisionOutcome)]
    # the fourth call of the day sees the three the batch allowed before it
    assert [a.decision.allowed for a in answers[:4]] == [True, True, True, False]  # type: ignore[union-attr]
    assert answers[3].decision.rules == ["CALL-DAILY-CAP"]  # type: ignore[union-attr]
    assert isinstance(answers[4], UnknownCase) and isinstance(answers[5], UnknownDebtor)
    assert answers[6].decision.rules == ["CALL-QUIET"]  # type: ignore[union-attr]
    assert answers[7].decision.allowed  # type: ignore[union-attr]  # an SMS, not a call
    runtime = contact_api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        attempts = await session.scalar(select(func.count()).select_from(contact_attempts))
        denials = await session.scalar(select(func.count()).select_from(contact_denials))
        kinds = Counter(
            (await session.execute(select(runtime.outbox.c.event_type))).scalars().all()
        )
    assert attempts == 3 and denials == 2  # the SMS counts once it is sent
    assert kinds == {"contact.attempted.v1": 3, "contact.denied.v1": 2}
    assert len({o.decision_id for o in outcomes}) == len(outcomes)


async def test_two_replicas_under_concurrent_load_never_exceed_a_cap(
    pg_url: str, clock: FrozenClock, contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    debtors = [f"d-{n}" for n in range(5)]
    for n, debtor in enumerate(debtors):
        await apply(imported(f"c-{n}", debtor))
    settings = offline_settings(Settings, pg_url)
    async with service_client(create_app, settings, clock, headers=DIALER) as other:
        replicas = [contact_api, other]
        results = await asyncio.gather(
            *(
                replicas[n % 2].post(URL, json={"debtor_id": debtors[n % 5], "channel": "call"})
                for n in range(60)
            )
        )
    assert all(r.status_code == 200 for r in results), [r.text for r in results][:3]
    allowed = Counter(r.json()["debtor_id"] for r in results if r.json()["allowed"])
    assert allowed == dict.fromkeys(debtors, 3)  # CALL-DAILY-CAP of 3, each debtor
    denied = [r.json() for r in results if not r.json()["allowed"]]
    assert len(denied) == 45 and {d["denials"][0]["rule"] for d in denied} == {"CALL-DAILY-CAP"}


async def test_concurrent_asks_for_unknown_targets_fail_alone_with_404(
    contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    await apply(imported("c-9", "d-9"))
    results = await asyncio.gather(
        contact_api.post(URL, json={"case_id": "c-9", "channel": "call"}),
        contact_api.post(URL, json={"case_id": "missing", "channel": "call"}),
        contact_api.post(URL, json={"debtor_id": "missing", "channel": "call"}),
        contact_api.post(URL, json={"debtor_id": "d-9", "channel": "call"}),
    )
    assert [r.status_code for r in results] == [200, 404, 404, 200]
    assert results[1].json()["field"] == "case_id"
    assert all(r.json()["allowed"] for r in (results[0], results[3]))


async def test_decisions_are_counted_by_channel_outcome_and_denying_rule(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-5", "d-5"))
    await apply(
        AgentSuspended(
            agent_id="a-bad", suspended_at=clock.now(), rule_id="QA-SANCTION", reason="x"
        )
    )
    for _ in range(4):
        await contact_api.post(URL, json={"case_id": "c-5", "channel": "call"})
    await contact_api.post(URL, json={"case_id": "c-5", "channel": "sms", "agent_id": "a-bad"})
    text = (await contact_api.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("contact_decision")
    }

    def value(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"service": "contact-svc", **labels}.items())))
        return samples.get(key, 0.0)

    assert value("contact_decisions_total", channel="call", outcome="allowed") == 3
    assert value("contact_decisions_total", channel="call", outcome="denied") == 1
    assert value("contact_decisions_total", channel="sms", outcome="denied") == 1
    assert value("contact_decision_denials_total", channel="call", rule="CALL-DAILY-CAP") == 1
    assert value("contact_decision_denials_total", channel="sms", rule="QA-SANCTION") == 1
    # one after the other, so five batches of one (group commit's reach shows in the sizes)
    assert value("contact_decision_batch_size_sum") == 5
    assert value("contact_decision_batch_size_count") == 5


async def test_each_decision_event_carries_its_own_requests_correlation(
    contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    """Decided in one batch, recorded in one transaction: each request's events still
    name that request as their cause, so a flow is traceable across services."""
    await apply(imported("c-7", "d-7"))
    results = await asyncio.gather(
        *(
            contact_api.post(
                URL,
                json={"case_id": "c-7", "channel": "call"},
                headers={"X-Correlation-Id": f"flow-{n}", "X-Request-Id": f"req-{n}"},
            )
            for n in range(6)
        )
    )
    by_decision = {r.json()["decision_id"]: n for n, r in enumerate(results)}
    runtime = contact_api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        payloads = (await session.execute(select(runtime.outbox.c.payload))).scalars().all()
    seen = {}
    for raw in payloads:
        envelope = json.loads(raw)
        data = envelope["data"]
        decision_id = data.get("contact_id") or data.get("decision_id")
        seen[by_decision[decision_id]] = (envelope["correlationid"], envelope["causationid"])
    assert seen == {n: (f"flow-{n}", f"req-{n}") for n in range(6)}


async def test_under_load_a_lingering_batch_takes_the_asks_that_arrive_meanwhile(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    for n in range(4):
        await apply(imported(f"c-l{n}", f"d-l{n}"))
    ctx = contact_api.app.state.contact_context  # type: ignore[attr-defined]
    now = clock.now()
    sizes: list[int] = []
    late: list[asyncio.Task[DecisionOutcome]] = []

    class Recording:
        def observe(self, size: int) -> None:
            sizes.append(size)

    def ask(n: int) -> DecisionAsk:
        return DecisionAsk(now, "call", case_id=f"c-l{n}")

    steps: list[float] = []

    async def a_third_ask_arrives_while_lingering(seconds: float) -> None:
        steps.append(seconds)
        if not late:  # during the first step: it is queued before the step ends
            late.append(asyncio.create_task(batcher.decide(ask(2))))
            await asyncio.sleep(0)

    metrics = ctx.metrics
    original = metrics.batch_sizes
    metrics.batch_sizes = Recording()
    batcher = DecisionBatcher(
        ctx, workers=1, linger_seconds=0.005, sleep=a_third_ask_arrives_while_lingering
    )
    try:
        lone = await batcher.decide(ask(3))  # nobody waiting: decided at once, no linger
        assert lone.decision.allowed and not late and sizes == [1]
        # two asks queued at once: under load, so the batch lingers and takes the third
        first = await asyncio.gather(batcher.decide(ask(0)), batcher.decide(ask(1)))
        third = await late[0]
    finally:
        await batcher.aclose()
        metrics.batch_sizes = original
    assert sizes == [1, 3]
    # a step brought an ask, the next brought none: it stopped lingering there
    assert steps == [0.001, 0.001]
    assert all(o.decision.allowed for o in [*first, third])
