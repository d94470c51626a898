"""Tables of the statistics (COMP-STATS) and of the portal's rate limit (COMP-CHANNELS), in
complaint-svc's shared ``metadata``. Migration 0006 creates them.

- ``complaint_case_profiles``: the read model's statistics dimensions of a case (region,
  customer group, case type: codes from ``case.imported.v1``, never personal data) and the
  debtor's time zone, which places a bucket change's local day in time.
- ``complaint_case_stages``: the case's collection stage (CASE-BUCKET) over time, one row
  per change, so a complaint counts in the stage its case was in when it was accepted.
- ``complaint_corrective_actions`` and ``complaint_corrective_action_changes``: corrective
  actions with owner and deadline, tracked to done, and who changed what, when.
- ``complaint_portal_rate``: requests per client address and fixed window, shared by
  every replica (the address is kept only as a keyed hash).

It also indexes the tickets' acceptance and the step clocks' completion and breach, which
the reports select by.
"""

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from collect_common.db import BigId, UtcDateTime
from collect_common.security.crypto import EncryptedText
from complaint_svc.adapters.tables import metadata, ticket_steps, tickets

# The reports select tickets by acceptance and step clocks by completion and breach.
Index("ix_complaint_tickets_accepted_at", tickets.c.accepted_at)
Index("ix_complaint_steps_completed_at", ticket_steps.c.completed_at)
Index("ix_complaint_steps_breached_at", ticket_steps.c.breached_at)

case_profiles = Table(
    "complaint_case_profiles",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("region", String(32), nullable=True),
    Column("customer_group", String(64), nullable=True),
    Column("case_type", String(64), nullable=True),
    Column("debtor_timezone", String(64), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

case_stages = Table(
    "complaint_case_stages",
    metadata,
    Column("case_id", String(64), primary_key=True),
    # from when the bucket holds (the import's row: the earliest instant, it holds until
    # the first change)
    Column("since", UtcDateTime, primary_key=True),
    Column("bucket", String(8), nullable=False),
)

corrective_actions = Table(
    "complaint_corrective_actions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(16), nullable=False),  # "ticket" or "finding"
    Column("ticket_id", String(36), ForeignKey("complaint_tickets.id"), nullable=True),
    Column("finding", Text, nullable=True),  # JSON: the report, period, dimension, key
    # free text may name people: ciphertext only (SEC-PII)
    Column(
        "description",
        EncryptedText(aad="complaint_corrective_actions.description"),
        nullable=False,
    ),
    Column("owner", String(128), nullable=False),
    Column("deadline", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("done_at", UtcDateTime, nullable=True),
    Index("ix_complaint_corrective_actions_status_deadline", "status", "deadline"),
    Index("ix_complaint_corrective_actions_created", "created_at", "id"),
    Index("ix_complaint_corrective_actions_ticket_id", "ticket_id"),
)

corrective_action_changes = Table(
    "complaint_corrective_action_changes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "action_id",
        String(36),
        ForeignKey(
            "complaint_corrective_actions.id", name="fk_complaint_corrective_action_changes_action"
        ),
        nullable=False,
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # "created" or "updated"
    # JSON {field: [old, new]}; a changed description is named, its text is not copied
    Column("changes", Text, nullable=False),
    Index("ix_complaint_corrective_action_changes_action", "action_id", "id"),
)

portal_rate = Table(
    "complaint_portal_rate",
    metadata,
    Column("client", String(64), primary_key=True),  # HMAC of the address (blind index)
    Column("window_start", UtcDateTime, primary_key=True),
    Column("hits", Integer, nullable=False),
    Index("ix_complaint_portal_rate_window_start", "window_start"),
)
