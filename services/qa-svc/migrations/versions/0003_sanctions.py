"""Sanction ladder (QA-SANCTION): violations, sanctions, retraining exams

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "violations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(32), nullable=False),
        sa.Column("evidence", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_violations"),
    )
    op.create_index("ix_violations_agent_id_recorded_at", "violations", ["agent_id", "recorded_at"])
    op.create_table(
        "sanctions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("violation_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retraining_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reinstated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reinstated_by", sa.String(200), nullable=True),
        sa.Column("exam_ref", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sanctions"),
    )
    op.create_index("ix_sanctions_agent_id_applied_at", "sanctions", ["agent_id", "applied_at"])
    op.create_table(
        "exams",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("exam_ref", sa.String(64), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("score", sa.Numeric(5, 2), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exams"),
    )
    op.create_index("ix_exams_agent_id_recorded_at", "exams", ["agent_id", "recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_exams_agent_id_recorded_at", table_name="exams")
    op.drop_table("exams")
    op.drop_index("ix_sanctions_agent_id_applied_at", table_name="sanctions")
    op.drop_table("sanctions")
    op.drop_index("ix_violations_agent_id_recorded_at", table_name="violations")
    op.drop_table("violations")
