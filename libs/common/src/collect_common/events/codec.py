"""Wrapping catalogued events into envelopes and back."""

from __future__ import annotations

from datetime import datetime

from collect_common.events.catalogue import Event, event_class
from collect_common.events.envelope import EventEnvelope


def wrap(
    event: Event,
    *,
    source: str,
    time: datetime,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
) -> EventEnvelope:
    fields: dict[str, object] = {
        "source": source,
        "type": event.type_name,
        "time": time,
        "subject": event.partition_key,
        "correlationid": correlation_id,
        "causationid": causation_id,
        "data": event.model_dump(mode="json"),
    }
    if event_id is not None:
        fields["id"] = event_id
    return EventEnvelope.model_validate(fields)


def unwrap(envelope: EventEnvelope) -> Event:
    """The typed event inside an envelope (UnknownEventType, ValidationError if it is not)."""
    return event_class(envelope.type).model_validate(envelope.data)
