"""The tables qa-svc owns. The platform tables (outbox, processed_events) come with the metadata.

``contact_events`` is the live rules' keyed window state: every contact attempt
seen, by debtor and event time, so a restart or a partition rebalance rebuilds
nothing in memory and a late event lands where it belongs; ``sms_sent`` is the same
for the SMS sent (SMS-WEEKLY-CAP), kept apart so the sample's records are not
doubled. ``alerts`` is QA's work list; one row per breach (unique per kind, debtor and
window start). ``violations``, ``sanctions`` and ``exams`` are the sanction ladder
(QA-SANCTION). ``contact_events.bucket`` is the
record's delinquency bucket when the event carried one (else none: sampled as
``"unknown"``). ``sample_weeks`` and ``sample_picks`` are the verifiable weekly sample
(QA-SAMPLE): the committed seed (secret until drawn) and the drawn records.
"""

from sqlalchemy import (
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

metadata = new_metadata()

contact_events = Table(
    "contact_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("contact_id", String(64), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("channel", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("bucket", String(8), nullable=True),
    Index("ix_contact_events_debtor_id_at", "debtor_id", "at"),
    Index("ix_contact_events_at", "at"),
)

# SMS-WEEKLY-CAP: every SMS sent, by debtor and event time (the weekly count's state).
sms_sent = Table(
    "sms_sent",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("sent_at", UtcDateTime, nullable=False),
    Index("ix_sms_sent_debtor_id_sent_at", "debtor_id", "sent_at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("rule_id", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("evidence", Text, nullable=False),  # a JSON list of contact event ids
    Column("detail", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("status_by", String(200), nullable=True),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("kind", "debtor_id", "window_start", name="uq_alerts_breach"),
    Index("ix_alerts_raised_at_id", "raised_at", "id"),
)

# QA-SANCTION: violations recorded against agents, the ladder's steps, retraining exams.
violations = Table(
    "violations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agent_id", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("rule_id", String(32), nullable=False),
    Column("evidence", String(64), nullable=False),  # an alert id or a record id
    Column("alert_id", String(36), nullable=True),
    Column("note", Text, nullable=True),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_violations_agent_id_recorded_at", "agent_id", "recorded_at"),
)

sanctions = Table(
    "sanctions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agent_id", String(64), nullable=False),
    Column("violation_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("amount", Numeric(14, 2), nullable=True),
    Column("applied_at", UtcDateTime, nullable=False),
    Column("retraining_until", UtcDateTime, nullable=True),
    Column("reinstated_at", UtcDateTime, nullable=True),
    Column("reinstated_by", String(200), nullable=True),
    Column("exam_ref", String(64), nullable=True),
    Index("ix_sanctions_agent_id_applied_at", "agent_id", "applied_at"),
)

exams = Table(
    "exams",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agent_id", String(64), nullable=False),
    Column("exam_ref", String(64), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("score", Numeric(5, 2), nullable=True),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_exams_agent_id_recorded_at", "agent_id", "recorded_at"),
)

# QA-SAMPLE: one row per committed week; the seed stays secret until the draw reveals it.
sample_weeks = Table(
    "sample_weeks",
    metadata,
    Column("week", String(8), primary_key=True),  # ISO week, e.g. 2026-W49
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("seed", String(64), nullable=False),  # hex; secret until revealed_at
    Column("commitment", String(64), nullable=False),  # SHA-256 of the seed, hex
    Column("committed_by", String(200), nullable=False),
    Column("committed_at", UtcDateTime, nullable=False),
    Column("rate", Numeric(5, 4), nullable=True),
    Column("allocation", String(16), nullable=True),
    Column("population", Text, nullable=True),  # JSON {"bucket/channel": N}
    Column("sizes", Text, nullable=True),  # JSON {"bucket/channel": n} (random part)
    Column("drawn_by", String(200), nullable=True),
    Column("revealed_at", UtcDateTime, nullable=True),
)

sample_picks = Table(
    "sample_picks",
    metadata,
    Column(
        "week",
        String(8),
        ForeignKey("sample_weeks.week", name="fk_sample_picks_week_sample_weeks"),
        primary_key=True,
    ),
    Column("record_id", String(64), primary_key=True),  # contact_events.event_id
    Column("bucket", String(8), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("score", String(64), nullable=False),  # HMAC-SHA256, hex
    Column("risk", Boolean, nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("position", Integer, nullable=False),
)
