"""The batch path on SQLite (``make run``): no arrays there, the same alerts whatever the split."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from collect_common.bus.consumer import BatchHandler, HandlerContext
from collect_common.clock import FrozenClock
from collect_common.db import UnitOfWork, create_engine, session_factory
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.contact import SmsSent
from collect_common.events.types import CallCompleted, ContactAttempted
from qa_svc.adapters.tables import alerts, metadata
from qa_svc.domain.policy import QaPolicy
from qa_svc.entrypoints.contact_handlers import ContactRules
from qa_svc.service_layer.live_rules import LiveRules

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
H = timedelta(hours=1)


def call(debtor: str, at: datetime) -> ContactAttempted:
    return ContactAttempted(
        debtor_id=debtor,
        case_id="c1",
        contact_id=uuid.uuid4().hex,
        channel="call",
        agent_id="a1",
        attempted_at=at,
    )


def done(debtor: str, at: datetime, wpm: float) -> CallCompleted:
    return CallCompleted(
        debtor_id=debtor,
        case_id="c1",
        contact_id=uuid.uuid4().hex,
        agent_id="a1",
        started_at=at,
        duration_seconds=60,
        disposition="answered",
        speech_rate_wpm=wpm,
    )


def sms(debtor: str, at: datetime) -> SmsSent:
    return SmsSent(
        debtor_id=debtor,
        message_id=uuid.uuid4().hex,
        case_id="c1",
        template_id="t",
        template_version=1,
        filing_number="F",
        agent_id="a1",
        text_sha256="0" * 64,
        provider="p",
        provider_id="x",
        sent_at=at,
    )


async def run(events: list[tuple[Any, Event]], size: int) -> list[tuple[Any, ...]]:
    engine = create_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    clock = FrozenClock(NOW)
    rules: BatchHandler = ContactRules(lambda: LiveRules(QaPolicy()), clock)
    for n in range(0, len(events), size):
        uow = UnitOfWork(sessions, source="/qa-svc", clock=clock, outbox=metadata.tables["outbox"])
        async with uow:
            chunk = [
                (event, HandlerContext(uow, env, None, defer_emits=True))  # type: ignore[arg-type]
                for env, event in events[n : n + size]
            ]
            await rules.handle_batch(chunk)
            for _, ctx in chunk:
                uow.emit(*ctx.emitted)
            await uow.commit()
    async with sessions() as s:
        rows = (await s.execute(select(alerts))).all()
        raised = (await s.scalars(select(metadata.tables["outbox"].c.event_type))).all()
    await engine.dispose()
    assert len(raised) == len(rows)  # one alert_raised event per alert
    return sorted(
        (r.kind, r.debtor_id, r.window_start, r.window_end, tuple(json.loads(r.evidence)))
        for r in rows
    )


async def test_sqlite_gives_the_same_alerts_in_one_batch_or_event_by_event() -> None:
    stream: list[Event] = [call("D1", NOW + i * H) for i in (0, 1, 2, 5)]  # 4th call: a breach
    stream.insert(2, call("D1", NOW - 3 * H))  # a late call joins the same breach
    stream += [sms("D2", NOW + i * H) for i in range(5)]  # over the weekly cap
    stream += [done("D3", NOW, 250.0), done("D3", NOW + H, 150.0)]  # one too fast
    events = [(wrap(e, source="/contact-svc", time=NOW), e) for e in stream]

    one_by_one = await run(events, 1)
    assert [a[0] for a in one_by_one] == ["call_frequency", "sms_weekly_cap", "speech_rate"]
    frequency, weekly, _ = one_by_one
    assert len(frequency[4]) == 5 and len(weekly[4]) == 5
    assert await run(events, len(events)) == one_by_one
    assert await run(events, 3) == one_by_one
