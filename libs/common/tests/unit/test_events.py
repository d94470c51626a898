from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from collect_common.events import EventEnvelope, catalogue, event_class
from collect_common.events.asyncapi import build_document
from collect_common.events.catalogue import Event, UnknownEventType
from collect_common.events.codec import unwrap, wrap
from collect_common.events.types import CaseImported


def _imported() -> CaseImported:
    return CaseImported(
        case_id="case-1",
        debtor_id="debtor-9",
        bank_id="bank-a",
        overdue_total=Decimal("1234.50"),
        overdue_since=date(2026, 9, 1),
        bucket="M3",
        debtor_timezone="Asia/Shanghai",
    )


def test_envelope_round_trip_keeps_cloudevents_attributes_and_decimal_money() -> None:
    t = datetime(2026, 11, 28, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    env = wrap(
        _imported(), source="/case-svc", time=t, correlation_id="corr-1", causation_id="req-1"
    )
    back = EventEnvelope.from_bytes(env.to_bytes())
    assert back.specversion == "1.0"
    assert back.type == "case.imported.v1"
    assert back.subject == "case-1"  # the aggregate, also the Kafka key
    assert back.time == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    assert (back.correlationid, back.causationid) == ("corr-1", "req-1")
    assert back.data["overdue_total"] == "1234.50"  # never a float on the wire
    ev = unwrap(back)
    assert isinstance(ev, CaseImported)
    assert ev.overdue_total == Decimal("1234.50")


def test_envelope_refuses_naive_time_and_unversioned_type() -> None:
    with pytest.raises(ValidationError):
        EventEnvelope(
            source="/x", type="case.imported.v1", time=datetime(2026, 1, 1), subject="s", data={}
        )
    with pytest.raises(ValidationError):
        EventEnvelope(
            source="/x", type="case.imported", time=datetime.now(UTC), subject="s", data={}
        )


def test_catalogue_registers_versioned_types_and_rejects_conflicts() -> None:
    types = catalogue()
    assert types["case.imported.v1"] is CaseImported
    assert event_class("qa.agent_suspended.v1").topic == "qa.events"
    with pytest.raises(UnknownEventType):
        event_class("case.nope.v1")
    with pytest.raises(TypeError):
        type(
            "Clash",
            (Event,),
            {
                "type_name": "case.imported.v1",
                "topic": "x",
                "key_field": "a",
                "__annotations__": {"a": str},
            },
        )
    with pytest.raises(TypeError):
        type(
            "NoVersion",
            (Event,),
            {
                "type_name": "case.unversioned",
                "topic": "x",
                "key_field": "a",
                "__annotations__": {"a": str},
            },
        )


def test_events_carry_no_personal_data_fields() -> None:
    forbidden = {"name", "national_id", "phone", "address", "card_number", "id_number"}
    for type_name, cls in catalogue().items():
        assert not forbidden & set(cls.model_fields), f"{type_name} carries personal data"


def test_asyncapi_document_lists_every_catalogued_event_on_its_topic() -> None:
    doc = build_document()
    assert doc["asyncapi"].startswith("3.")
    messages = doc["components"]["messages"]
    for type_name, cls in catalogue().items():
        mid = type_name.replace(".", "_")
        assert messages[mid]["name"] == type_name
        channel = doc["channels"][cls.topic.replace(".", "_")]
        assert channel["address"] == cls.topic
        assert mid in channel["messages"]
        assert doc["components"]["schemas"][mid]["properties"]


def test_committed_asyncapi_document_matches_the_catalogue() -> None:
    """docs/asyncapi.json is what integrators read: it must not drift (make asyncapi)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[4] / "docs" / "asyncapi.json"
    committed = json.loads(path.read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(build_document(), default=str))
