"""Event envelope, catalogue and the platform's event types.

Importing this package registers every catalogued event, whichever service
defines it, so any consumer can decode any platform event (an unknown type
would be dead-lettered) and the catalogue and AsyncAPI document are complete.
"""

from collect_common.events import complaint, contact, qa, types  # noqa: F401  (registration)
from collect_common.events.catalogue import Event, UnknownEventType, catalogue, event_class
from collect_common.events.envelope import EventEnvelope

__all__ = ["Event", "EventEnvelope", "UnknownEventType", "catalogue", "event_class"]
