"""The event envelope: CloudEvents 1.0 attribute names, JSON on the wire.

Every message on a platform topic is one envelope. ``data`` holds the payload of
the catalogued event named by ``type`` (``case.imported.v1``); ``subject`` is the
aggregate the event is about and doubles as the Kafka key, so order holds per
aggregate. ``correlationid`` follows one business flow across services;
``causationid`` names the event (or request) that caused this one.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EventEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=64)
    source: str = Field(min_length=1, examples=["/case-svc"])
    type: str = Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[0-9]+$", examples=["case.imported.v1"]
    )
    time: AwareDatetime  # an instant with its offset; the platform writes UTC
    subject: str = Field(min_length=1, max_length=200, examples=["case-7f3a"])
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str | None = None
    causationid: str | None = None
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> EventEnvelope:
        return cls.model_validate_json(raw)
