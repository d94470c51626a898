"""Complaint tickets and their SLA steps; idempotency keys and timers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from collect_common.migrations_ops import create_timers_table, drop_timers_table
from collect_common.web.idempotency_migrations import (
    create_idempotency_table,
    drop_idempotency_table,
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_idempotency_table()
    create_timers_table()
    op.create_table(
        "complaint_tickets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        # personal data: ciphertext only (SEC-PII)
        sa.Column("complainant_name", sa.Text, nullable=False),
        sa.Column("complainant_contact", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("accepted_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("paused_at", TS, nullable=True),
        sa.Column("paused_total_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_tickets"),
        sa.UniqueConstraint("number", name="uq_complaint_tickets_number"),
    )
    op.create_index("ix_complaint_tickets_case_id", "complaint_tickets", ["case_id"])
    op.create_table(
        "complaint_steps",
        sa.Column("ticket_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(40), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("deadline", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("warned_first_at", TS, nullable=True),
        sa.Column("warned_second_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("ticket_id", "step", name="pk_complaint_steps"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["complaint_tickets.id"],
            name="fk_complaint_steps_ticket_id_complaint_tickets",
        ),
    )


def downgrade() -> None:
    op.drop_table("complaint_steps")
    op.drop_index("ix_complaint_tickets_case_id", table_name="complaint_tickets")
    op.drop_table("complaint_tickets")
    drop_timers_table()
    drop_idempotency_table()
