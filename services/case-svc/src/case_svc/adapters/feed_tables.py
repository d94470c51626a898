"""Tables of the change-feed push (CASE-FEEDBACK), in case-svc's shared ``metadata``.

``feed_push_state`` keeps, per push target, the ``seq`` of the last change the
target acknowledged (2xx). Migration 0004 creates it.
"""

from sqlalchemy import Column, String, Table

from case_svc.adapters.tables import metadata
from collect_common.db import BigId, UtcDateTime

feed_push_state = Table(
    "feed_push_state",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("last_seq", BigId, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
