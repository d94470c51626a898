"""Event envelope, catalogue and the platform's event types."""

from collect_common.events.catalogue import Event, UnknownEventType, catalogue, event_class
from collect_common.events.envelope import EventEnvelope

__all__ = ["Event", "EventEnvelope", "UnknownEventType", "catalogue", "event_class"]
