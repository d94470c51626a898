"""Tables of the change-feed push (CASE-FEEDBACK), in case-svc's shared ``metadata``.

``feed_push_state`` keeps, per push target, the ``seq`` of the last change the
target acknowledged (2xx), and its retry state: failures in a row, when the
next attempt is due (exponential backoff on the service clock) and the last
error; and the lease of the pusher delivering to it, so that with several
replicas one delivers to a target at a time. Migration 0004 creates it, 0007
adds the retry state and the lease.

``feed_push_targets`` are the endpoints ops registered (any number per bank):
where to POST, the signing secret (encrypted at rest) and key id, and whether
the target is enabled. A disabled target keeps its cursor and resumes from it.
The deployment's own target (``FEED_PUSH_URL``) is not in this table.
"""

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from case_svc.adapters.tables import metadata
from collect_common.db import BigId, UtcDateTime
from collect_common.security.crypto import EncryptedText

feed_push_state = Table(
    "feed_push_state",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("last_seq", BigId, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("leased_until", UtcDateTime, nullable=True),  # a pusher is delivering until then
)

feed_push_targets = Table(
    "feed_push_targets",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("bank_id", String(64), nullable=False),
    Column("url", String(500), nullable=False),
    Column("secret", EncryptedText(aad="feed_push_targets.secret"), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_feed_push_targets_bank_id", "bank_id"),
)
