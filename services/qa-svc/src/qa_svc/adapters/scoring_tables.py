"""Tables of scoring (QA-SCORE) and complaint feedback (QA-FEEDBACK), on qa-svc's metadata.

``qa_staff`` is the pool review tasks are assigned from (specialists join it; ops sets
who is a supervisor). ``scorecard_versions`` keeps every version of every scorecard
(the definition as JSON). ``review_tasks`` is the specialists' work list: one row per
sampled record of a drawn week (unique per week and record) or per complaint re-check;
it carries the effective score (after a supervisor's amendment) so reports aggregate
one table. ``review_scores`` keeps each scoring's answers and section scores, for tasks
and for ``calibration_sessions``. ``complaint_outcomes`` is one row per ticket and cycle
(idempotency of the feedback) and the risk-pick feed of the next weekly sample
(``sample_week`` set by the draw that used it). Free text written by people (dispute
reasons, decision notes, comments) is encrypted (SEC-PII).
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

from collect_common.db import UtcDateTime
from collect_common.security.crypto import EncryptedText
from qa_svc.adapters.tables import metadata

qa_staff = Table(
    "qa_staff",
    metadata,
    Column("subject", String(200), primary_key=True),  # the principal's subject
    Column("active", Boolean, nullable=False),
    Column("supervisor", Boolean, nullable=False),
    Column("joined_at", UtcDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

scorecard_versions = Table(
    "scorecard_versions",
    metadata,
    Column("scorecard_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("definition", Text, nullable=False),  # JSON: the sections and items
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

review_tasks = Table(
    "review_tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),  # sample, risk, recheck
    Column("week", String(8), nullable=True),
    Column("record_id", String(64), nullable=True),  # the contact event's id
    Column("bucket", String(8), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("agent_id", String(64), nullable=True),
    Column("case_id", String(64), nullable=True),
    Column("ticket_id", String(64), nullable=True),
    Column("cycle", Integer, nullable=True),
    Column("assignee", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("assigned_at", UtcDateTime, nullable=True),
    Column("scorecard_id", String(64), nullable=True),
    Column("scorecard_version", Integer, nullable=True),
    Column("score", Numeric(5, 2), nullable=True),  # effective: amended if a decision did
    Column("auto_failed", Boolean, nullable=True),
    Column("scored_by", String(200), nullable=True),
    Column("scored_at", UtcDateTime, nullable=True),
    Column("dispute_reason", EncryptedText(aad="review_tasks.dispute_reason"), nullable=True),
    Column("disputed_by", String(200), nullable=True),
    Column("disputed_at", UtcDateTime, nullable=True),
    Column("decision", String(16), nullable=True),
    Column("decision_note", EncryptedText(aad="review_tasks.decision_note"), nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", UtcDateTime, nullable=True),
    UniqueConstraint("week", "record_id", name="uq_review_tasks_week_record"),
    Index("ix_review_tasks_assignee_created_at_id", "assignee", "created_at", "id"),
    Index("ix_review_tasks_created_at_id", "created_at", "id"),
    Index("ix_review_tasks_agent_id_scored_at", "agent_id", "scored_at"),
)

calibration_sessions = Table(
    "calibration_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("record_id", String(64), nullable=False),
    Column("scorecard_id", String(64), nullable=False),
    Column("scorecard_version", Integer, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

review_scores = Table(
    "review_scores",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "task_id",
        String(36),
        ForeignKey("review_tasks.id", name="fk_review_scores_task_id_review_tasks"),
        nullable=True,
    ),
    Column(
        "calibration_id",
        String(36),
        ForeignKey(
            "calibration_sessions.id", name="fk_review_scores_calibration_id_calibration_sessions"
        ),
        nullable=True,
    ),
    Column("scorer", String(200), nullable=False),
    Column("scorecard_id", String(64), nullable=False),
    Column("scorecard_version", Integer, nullable=False),
    Column("answers", Text, nullable=False),  # JSON
    Column("sections", Text, nullable=False),  # JSON {"compliance": "90.00" | null, ...}
    Column("score", Numeric(5, 2), nullable=False),
    Column("raw_score", Numeric(5, 2), nullable=False),
    Column("auto_failed", Boolean, nullable=False),
    Column("failed_items", Text, nullable=False),  # JSON list of critical item ids
    Column("comment", EncryptedText(aad="review_scores.comment"), nullable=True),
    Column("scored_at", UtcDateTime, nullable=False),
    UniqueConstraint("task_id", name="uq_review_scores_task_id"),
    UniqueConstraint("calibration_id", "scorer", name="uq_review_scores_calibration_id_scorer"),
)

complaint_outcomes = Table(
    "complaint_outcomes",
    metadata,
    Column("ticket_id", String(64), primary_key=True),
    Column("cycle", Integer, primary_key=True),
    Column("agent_id", String(64), nullable=True),
    Column("case_id", String(64), nullable=True),
    Column("substantiated", Boolean, nullable=False),
    Column("sanction_requested", Boolean, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("task_id", String(36), nullable=True),
    Column("violation_id", String(36), nullable=True),
    Column("sample_week", String(8), nullable=True),  # the draw that took the risk pick
    Index("ix_complaint_outcomes_pending_risk", "sample_week", "substantiated"),
)
