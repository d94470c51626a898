"""Joint investigation, outcome, remedies and sanction requests (COMP-JOINT)

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

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "complaint_findings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("ticket_id", sa.String(36), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("department", sa.String(20), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),  # ciphertext
        sa.Column("added_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_findings"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["complaint_tickets.id"],
            name="fk_complaint_findings_ticket_id_complaint_tickets",
        ),
    )
    op.create_index(
        "ix_complaint_findings_ticket_cycle", "complaint_findings", ["ticket_id", "cycle"]
    )
    op.create_table(
        "complaint_outcomes",
        sa.Column("ticket_id", sa.String(36), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("substantiated", sa.Boolean, nullable=False),
        sa.Column("remedies", sa.Text, nullable=False),
        sa.Column("fee_waiver_amount", sa.Numeric(18, 2), nullable=True),
        sa.Column("sanction_severity", sa.String(16), nullable=True),
        sa.Column("apology_recorded", sa.Boolean, nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "cycle", name="pk_complaint_outcomes"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["complaint_tickets.id"],
            name="fk_complaint_outcomes_ticket_id_complaint_tickets",
        ),
    )
    op.create_table(
        "complaint_step_history",
        sa.Column("ticket_id", sa.String(36), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(40), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("deadline", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("warned_first_at", TS, nullable=True),
        sa.Column("warned_second_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("ticket_id", "cycle", "step", name="pk_complaint_step_history"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["complaint_tickets.id"],
            name="fk_complaint_step_history_ticket_id_complaint_tickets",
        ),
    )


def downgrade() -> None:
    op.drop_table("complaint_step_history")
    op.drop_table("complaint_outcomes")
    op.drop_index("ix_complaint_findings_ticket_cycle", table_name="complaint_findings")
    op.drop_table("complaint_findings")
