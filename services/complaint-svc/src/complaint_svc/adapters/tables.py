"""The tables complaint-svc owns. The platform tables (outbox, processed_events) come with the
metadata, with the idempotency keys of retried requests and the durable SLA timers.

The complainant's name and contact and the complaint's content are stored only
encrypted (SEC-PII, ``EncryptedText``).
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from collect_common.db import UtcDateTime, new_metadata
from collect_common.security.crypto import EncryptedText
from collect_common.timers import add_timers_table
from collect_common.web.idempotency import add_idempotency_table

metadata = new_metadata()
idempotency_keys = add_idempotency_table(metadata)
timers = add_timers_table(metadata)

tickets = Table(
    "complaint_tickets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("type", String(16), nullable=False),
    Column(
        "complainant_name", EncryptedText(aad="complaint_tickets.complainant_name"), nullable=False
    ),
    Column(
        "complainant_contact",
        EncryptedText(aad="complaint_tickets.complainant_contact"),
        nullable=False,
    ),
    Column("content", EncryptedText(aad="complaint_tickets.content"), nullable=False),
    Column("case_id", String(64), nullable=True, index=True),
    Column("agent_id", String(64), nullable=True),
    Column("state", String(20), nullable=False),
    Column("accepted_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("paused_at", UtcDateTime, nullable=True),
    Column("paused_total_ms", BigInteger, nullable=False),
    # COMP-ESCALATE: the investigation cycle (1, then 2, 3, ... after each escalation)
    Column("cycle", Integer, nullable=False, server_default="1"),
    Column("escalated_at", UtcDateTime, nullable=True),
    Column("followup_note", EncryptedText(aad="complaint_tickets.followup_note"), nullable=True),
    # COMP-CHANNELS, e-mail: the phone from the subject, the Message-ID (one ticket per
    # message), and why a message that could not be read needs triage (JSON list)
    Column(
        "complainant_phone", EncryptedText(aad="complaint_tickets.complainant_phone"), nullable=True
    ),
    Column("message_id", String(300), nullable=True, unique=True),
    Column("needs_triage", Boolean, nullable=False, server_default="false"),
    Column("triage_reasons", Text, nullable=True),
    # COMP-RECORD from contact events: the debtor, and the call the complaint was reported
    # in (one ticket per call, unique)
    Column("debtor_id", String(64), nullable=True, index=True),
    Column("call_id", String(64), nullable=True, unique=True),
)

evidence = Table(
    "complaint_evidence",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ticket_id", String(36), ForeignKey("complaint_tickets.id"), nullable=False, index=True),
    Column("kind", String(24), nullable=False),
    Column("name", EncryptedText(aad="complaint_evidence.name"), nullable=True),
    Column("content_type", String(128), nullable=True),
    Column("size_bytes", BigInteger, nullable=True),  # None: a recording held elsewhere
    Column("sha256", String(64), nullable=True),
    Column("added_at", UtcDateTime, nullable=False),
    # a call recording (COMP-SLA-EVIDENCE): where it is kept, and the call it is of
    Column("recording_uri", Text, nullable=True),
    Column("call_id", String(64), nullable=True),
    # an SMS or letter (domain.evidence): its id in contact-svc, when it happened, the
    # carrier's receipt; attached once per ticket (kind and reference unique)
    Column("reference", String(64), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=True),
    Column("proof_ref", String(500), nullable=True),
    UniqueConstraint("ticket_id", "kind", "reference"),
)

ticket_steps = Table(
    "complaint_steps",
    metadata,
    Column("ticket_id", String(36), ForeignKey("complaint_tickets.id"), primary_key=True),
    Column("step", String(16), primary_key=True),
    Column("rule_id", String(40), nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("deadline", UtcDateTime, nullable=True),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("warned_first_at", UtcDateTime, nullable=True),
    Column("warned_second_at", UtcDateTime, nullable=True),
    Column("breached_at", UtcDateTime, nullable=True),
)

# -- the read model fed by case.events and contact.events (ids and URIs only) -----------

known_cases = Table(
    "complaint_known_cases",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("debtor_id", String(64), nullable=False, index=True),
    Column("bank_id", String(64), nullable=True),
    Column("agent_id", String(64), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

recordings = Table(
    "complaint_recordings",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(64), nullable=True),
    Column("agent_id", String(64), nullable=True),
    Column("recording_uri", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_complaint_recordings_debtor_recorded", "debtor_id", "recorded_at"),
)

# the debtor's SMS and letters (domain.evidence): ids and references, never the text
contact_records = Table(
    "complaint_contact_records",
    metadata,
    Column("kind", String(24), primary_key=True),
    Column("reference", String(64), primary_key=True),
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(64), nullable=True),
    Column("agent_id", String(64), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("proof_ref", String(500), nullable=True),
    Index("ix_complaint_contact_records_debtor_occurred", "debtor_id", "occurred_at"),
)

# -- the joint investigation per cycle (COMP-JOINT) and the steps of past cycles ---------

findings = Table(
    "complaint_findings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ticket_id", String(36), ForeignKey("complaint_tickets.id"), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("department", String(20), nullable=False),
    Column("author", String(128), nullable=False),
    # may name the complainant or the debtor: ciphertext only (SEC-PII)
    Column("text", EncryptedText(aad="complaint_findings.text"), nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
    Index("ix_complaint_findings_ticket_cycle", "ticket_id", "cycle"),
)

outcomes = Table(
    "complaint_outcomes",
    metadata,
    Column("ticket_id", String(36), ForeignKey("complaint_tickets.id"), primary_key=True),
    Column("cycle", Integer, primary_key=True),
    Column("substantiated", Boolean, nullable=False),
    Column("remedies", Text, nullable=False),  # JSON list of remedy names
    Column("fee_waiver_amount", Numeric(18, 2), nullable=True),
    Column("sanction_severity", String(16), nullable=True),  # None: no sanction requested
    Column("apology_recorded", Boolean, nullable=False),
    Column("decided_by", String(128), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
)

# the restarted steps (investigate, resolve, followup) of a cycle an escalation ended
step_history = Table(
    "complaint_step_history",
    metadata,
    Column("ticket_id", String(36), ForeignKey("complaint_tickets.id"), primary_key=True),
    Column("cycle", Integer, primary_key=True),
    Column("step", String(16), primary_key=True),
    Column("rule_id", String(40), nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("deadline", UtcDateTime, nullable=True),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("warned_first_at", UtcDateTime, nullable=True),
    Column("warned_second_at", UtcDateTime, nullable=True),
    Column("breached_at", UtcDateTime, nullable=True),
)
