"""The live rules a batch at a time, on PostgreSQL: the same alerts however the events are
split into batches; speech rate, volume and the SMS weekly cap through the handlers."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from qa_test_helpers import NOW, attempt, completed, settings_for
from sqlalchemy import delete, select

from collect_common.bus.consumer import BatchHandler, HandlerContext
from collect_common.clock import FrozenClock
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.contact import SmsSent
from collect_common.events.envelope import EventEnvelope
from qa_svc.adapters.tables import alerts, contact_events, sms_sent
from qa_svc.entrypoints.consumer import handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = pytest.mark.postgres
H = timedelta(hours=1)
MONDAY = datetime(2026, 11, 22, 16, 0, tzinfo=NOW.tzinfo)  # Monday 2026-11-23 00:00 Shanghai


@asynccontextmanager
async def running(pg_url: str, clock: FrozenClock) -> AsyncIterator[Any]:
    app = create_app(settings_for(pg_url), clock)
    async with app.router.lifespan_context(app):
        yield app.state.runtime


def rules_of(runtime: Any, clock: FrozenClock) -> BatchHandler:
    rules = handlers(lambda: runtime.context_of(LiveRules), clock)["contact.attempted.v1"]
    assert isinstance(rules, BatchHandler)
    return rules


def sms(debtor: str, at: datetime) -> SmsSent:
    return SmsSent(
        debtor_id=debtor,
        message_id=uuid.uuid4().hex,
        case_id=f"case-{debtor}",
        template_id="tpl-reminder",
        template_version=1,
        filing_number="F-1",
        agent_id="agent-7",
        text_sha256="0" * 64,
        provider="sandbox",
        provider_id=uuid.uuid4().hex,
        sent_at=at,
    )


def metered(debtor: str, at: datetime, wpm: float | None, db: float | None) -> Event:
    return completed(debtor, at, 120).model_copy(update={"speech_rate_wpm": wpm, "volume_db": db})


def wrapped(events: Sequence[Event]) -> list[tuple[EventEnvelope, Event]]:
    return [(wrap(e, source="/contact-svc", time=NOW, correlation_id="c"), e) for e in events]


async def apply(
    runtime: Any, rules: BatchHandler, items: list[tuple[EventEnvelope, Event]], size: int
) -> None:
    """Apply ``items`` in batches of ``size``, each in one unit of work, as the consumer does."""
    for n in range(0, len(items), size):
        async with runtime.uow() as uow:
            chunk = [
                (event, HandlerContext(uow, env, None, defer_emits=True))  # type: ignore[arg-type]
                for env, event in items[n : n + size]
            ]
            await rules.handle_batch(chunk)
            for _, ctx in chunk:
                uow.emit(*ctx.emitted)
            await uow.commit()


async def outcome(runtime: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The alerts and their events, without the generated alert ids."""
    async with runtime.sessions() as s:
        rows = (await s.execute(select(alerts))).all()
        payloads = (await s.scalars(select(runtime.outbox.c.payload))).all()
    table = sorted(
        (
            r.kind,
            r.rule_id,
            r.debtor_id,
            r.window_start,
            r.window_end,
            tuple(json.loads(r.evidence)),
            r.detail,
        )
        for r in rows
    )
    events = []
    for p in payloads:
        data = json.loads(p)["data"]
        events.append(
            (
                data["check"],
                data["debtor_id"],
                data["window_start"],
                tuple(data["evidence_event_ids"]),
            )
        )
    return table, sorted(events)


def mixed_stream(seed: int = 5) -> list[Event]:
    """Calls, completions, SMS and other contacts of a few debtors over two weeks, with
    out-of-order (late) events; enough of each to breach every rule several times."""
    rng = random.Random(seed)
    timed: list[tuple[datetime, Event]] = []
    for d in range(6):
        debtor = f"DB{seed}-{d}"
        for _ in range(16):
            at = MONDAY + timedelta(minutes=rng.randrange(5 * 24 * 60))
            timed.append((at, attempt(debtor, at)))
            seconds = rng.choice([5, 60, 300, 2000])
            wpm = rng.choice([None, 150.0, 240.0])
            db = rng.choice([None, -20.0, -3.0])
            done = metered(debtor, at, wpm, db).model_copy(update={"duration_seconds": seconds})
            timed.append((at + timedelta(seconds=seconds), done))
        for _ in range(10):
            at = MONDAY + timedelta(minutes=rng.randrange(14 * 24 * 60))
            timed.append((at, sms(debtor, at)))
            timed.append((at, attempt(debtor, at, channel=rng.choice(["sms", "letter", "visit"]))))
    timed.sort(key=lambda p: p[0])
    events = [e for _, e in timed]
    for _ in range(25):  # some arrive late
        i = rng.randrange(len(events) - 10)
        j = i + rng.randrange(1, 10)
        events[i], events[j] = events[j], events[i]
    return events


async def test_the_same_alerts_whatever_the_batch_split(pg_url: str, clock: FrozenClock) -> None:
    items = wrapped(mixed_stream())
    results = []
    async with running(pg_url, clock) as runtime:
        rules = rules_of(runtime, clock)
        for size in (1, 7, 64, len(items)):
            async with runtime.sessions() as s:
                for table in (alerts, contact_events, sms_sent, runtime.outbox):
                    await s.execute(delete(table))
                await s.commit()
            await apply(runtime, rules, items, size)
            results.append(await outcome(runtime))
    one_by_one = results[0]
    kinds = {row[0] for row in one_by_one[0]}
    assert kinds == {
        "call_frequency",
        "call_duration",
        "quiet_hours",
        "speech_rate",
        "volume",
        "sms_weekly_cap",
    }
    assert len(one_by_one[1]) == len(one_by_one[0])  # one event per alert
    for other in results[1:]:
        assert other == one_by_one


async def test_the_sms_weekly_cap_one_alert_per_week_late_sms_in_its_week(
    pg_url: str, clock: FrozenClock
) -> None:
    async with running(pg_url, clock) as runtime:
        rules = rules_of(runtime, clock)
        first = wrapped([sms("S1", MONDAY + i * 24 * H) for i in range(3)])
        await apply(runtime, rules, first, 10)
        assert (await outcome(runtime))[0] == []  # three: the cap, no breach
        fourth = wrapped([sms("S1", MONDAY + 6 * 24 * H + 23 * H)])  # Sunday 23:00 Shanghai
        await apply(runtime, rules, fourth, 1)
        (alert,), (event,) = await outcome(runtime)
        assert alert[:5] == (
            "sms_weekly_cap",
            "SMS-WEEKLY-CAP",
            "S1",
            MONDAY,
            MONDAY + 7 * 24 * H,
        )
        assert alert[5] == tuple(env.id for env, _ in first + fourth) == event[3]
        # next week (Monday 00:00 Shanghai on) is a new count; a late SMS joins its own week
        nxt = wrapped([sms("S1", MONDAY + 7 * 24 * H + i * H) for i in range(3)])
        late = wrapped([sms("S1", MONDAY + 2 * H)])
        await apply(runtime, rules, nxt + late, 2)
        (alert,), events = await outcome(runtime)
        assert len(events) == 1  # still one alert, one event
        assert alert[5] == (*(env.id for env, _ in first + fourth), late[0][0].id)
        # a redelivered SMS is not counted twice
        await apply(runtime, rules, late, 1)
        assert len((await outcome(runtime))[0][0][5]) == 5
        assert (
            runtime.registry.get_sample_value("alerts_raised_total", {"rule": "SMS-WEEKLY-CAP"})
            == 1
        )


async def test_speech_rate_and_volume_from_the_completed_call(
    pg_url: str, clock: FrozenClock
) -> None:
    async with running(pg_url, clock) as runtime:
        rules = rules_of(runtime, clock)
        items = wrapped(
            [
                metered("V1", NOW, 200.0, -6.0),  # at both thresholds: fine
                metered("V1", NOW + H, None, None),  # not measured: not judged
                metered("V2", NOW, 231.5, -6.0),
                metered("V3", NOW, 120.0, -2.5),
            ]
        )
        await apply(runtime, rules, items, 4)
        table, events = await outcome(runtime)
        assert [(r[0], r[1], r[2], r[5]) for r in table] == [
            ("speech_rate", "QA-REALTIME", "V2", (items[2][0].id,)),
            ("volume", "QA-REALTIME", "V3", (items[3][0].id,)),
        ]
        assert [e[0] for e in events] == ["speech_rate", "volume"]
        assert "231.5 wpm" in table[0][6]
