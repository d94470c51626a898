"""Scorecards, review tasks, disputes, calibration and re-checks (QA-SCORE, QA-FEEDBACK)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "qa_staff",
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("supervisor", sa.Boolean, nullable=False),
        sa.Column("joined_at", TZ, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_qa_staff"),
    )
    op.create_table(
        "scorecard_versions",
        sa.Column("scorecard_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("scorecard_id", "version", name="pk_scorecard_versions"),
    )
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("week", sa.String(8), nullable=True),
        sa.Column("record_id", sa.String(64), nullable=True),
        sa.Column("bucket", sa.String(8), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("ticket_id", sa.String(64), nullable=True),
        sa.Column("cycle", sa.Integer, nullable=True),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("assigned_at", TZ, nullable=True),
        sa.Column("scorecard_id", sa.String(64), nullable=True),
        sa.Column("scorecard_version", sa.Integer, nullable=True),
        sa.Column("score", sa.Numeric(5, 2), nullable=True),
        sa.Column("auto_failed", sa.Boolean, nullable=True),
        sa.Column("scored_by", sa.String(200), nullable=True),
        sa.Column("scored_at", TZ, nullable=True),
        sa.Column("dispute_reason", sa.Text, nullable=True),
        sa.Column("disputed_by", sa.String(200), nullable=True),
        sa.Column("disputed_at", TZ, nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decision_note", sa.Text, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_tasks"),
        sa.UniqueConstraint("week", "record_id", name="uq_review_tasks_week_record"),
    )
    op.create_index(
        "ix_review_tasks_assignee_created_at_id",
        "review_tasks",
        ["assignee", "created_at", "id"],
    )
    op.create_index("ix_review_tasks_created_at_id", "review_tasks", ["created_at", "id"])
    op.create_index("ix_review_tasks_agent_id_scored_at", "review_tasks", ["agent_id", "scored_at"])
    op.create_table(
        "calibration_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("scorecard_id", sa.String(64), nullable=False),
        sa.Column("scorecard_version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calibration_sessions"),
    )
    op.create_table(
        "review_scores",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=True),
        sa.Column("calibration_id", sa.String(36), nullable=True),
        sa.Column("scorer", sa.String(200), nullable=False),
        sa.Column("scorecard_id", sa.String(64), nullable=False),
        sa.Column("scorecard_version", sa.Integer, nullable=False),
        sa.Column("answers", sa.Text, nullable=False),
        sa.Column("sections", sa.Text, nullable=False),
        sa.Column("score", sa.Numeric(5, 2), nullable=False),
        sa.Column("raw_score", sa.Numeric(5, 2), nullable=False),
        sa.Column("auto_failed", sa.Boolean, nullable=False),
        sa.Column("failed_items", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("scored_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_scores"),
        sa.ForeignKeyConstraint(
            ["task_id"], ["review_tasks.id"], name="fk_review_scores_task_id_review_tasks"
        ),
        sa.ForeignKeyConstraint(
            ["calibration_id"],
            ["calibration_sessions.id"],
            name="fk_review_scores_calibration_id_calibration_sessions",
        ),
        sa.UniqueConstraint("task_id", name="uq_review_scores_task_id"),
        sa.UniqueConstraint(
            "calibration_id", "scorer", name="uq_review_scores_calibration_id_scorer"
        ),
    )
    op.create_table(
        "complaint_outcomes",
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("substantiated", sa.Boolean, nullable=False),
        sa.Column("sanction_requested", sa.Boolean, nullable=False),
        sa.Column("decided_at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("task_id", sa.String(36), nullable=True),
        sa.Column("violation_id", sa.String(36), nullable=True),
        sa.Column("sample_week", sa.String(8), nullable=True),
        sa.PrimaryKeyConstraint("ticket_id", "cycle", name="pk_complaint_outcomes"),
    )
    op.create_index(
        "ix_complaint_outcomes_pending_risk",
        "complaint_outcomes",
        ["sample_week", "substantiated"],
    )


def downgrade() -> None:
    op.drop_table("complaint_outcomes")
    op.drop_table("review_scores")
    op.drop_table("calibration_sessions")
    op.drop_table("review_tasks")
    op.drop_table("scorecard_versions")
    op.drop_table("qa_staff")
