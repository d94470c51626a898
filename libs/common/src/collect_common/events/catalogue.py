"""The catalogue of event types: one pydantic model per versioned type name.

A subclass of :class:`Event` declares its ``type_name`` (``<service-domain>.<what>.v<N>``),
the ``topic`` it travels on and ``key_field``, the attribute whose value is the
Kafka key (the aggregate: case id, debtor id, ticket id, agent id). Defining the
class registers it; producers and consumers share these classes, and the
AsyncAPI document is generated from the registry.

Events carry ids, codes, amounts and instants, never personal data (SEC-PII):
names, national IDs, phones and addresses stay in the owning service.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

_REGISTRY: dict[str, type[Event]] = {}


class UnknownEventType(LookupError):
    pass


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]
    topic: ClassVar[str]
    key_field: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type_name")
        if name is None:
            return  # an abstract intermediate class
        if name in _REGISTRY and _REGISTRY[name].__qualname__ != cls.__qualname__:
            raise TypeError(f"event type {name} is already catalogued by {_REGISTRY[name]}")
        if not name.rsplit(".", 1)[-1].startswith("v"):
            raise TypeError(f"event type {name} must end with its version, e.g. .v1")
        _REGISTRY[name] = cls

    @property
    def partition_key(self) -> str:
        return str(getattr(self, self.key_field))


def event_class(type_name: str) -> type[Event]:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownEventType(type_name) from None


def catalogue() -> dict[str, type[Event]]:
    """The platform's event types (the contracts between services), by type name.

    Types registered elsewhere, such as the probes tests define, can still be
    looked up with :func:`event_class` but are not part of the catalogue.
    """
    from collect_common.events import types  # noqa: F401  (registers the platform's events)

    return {
        name: cls
        for name, cls in sorted(_REGISTRY.items())
        if cls.__module__.startswith("collect_common.events.")
    }
