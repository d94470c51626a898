"""Complaints from contact events: the debtor and call on a ticket, recordings as evidence,
and the read model of cases and recordings fed by case.events and contact.events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("complaint_tickets") as batch:
        batch.add_column(sa.Column("debtor_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("call_id", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_complaint_tickets_call_id", ["call_id"])
    op.create_index("ix_complaint_tickets_debtor_id", "complaint_tickets", ["debtor_id"])
    with op.batch_alter_table("complaint_evidence") as batch:
        batch.alter_column("size_bytes", existing_type=sa.BigInteger, nullable=True)
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("recording_uri", sa.Text, nullable=True))
        batch.add_column(sa.Column("call_id", sa.String(64), nullable=True))
    op.create_table(
        "complaint_known_cases",
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("bank_id", sa.String(64), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_complaint_known_cases"),
    )
    op.create_index("ix_complaint_known_cases_debtor_id", "complaint_known_cases", ["debtor_id"])
    op.create_table(
        "complaint_recordings",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("recording_uri", sa.Text, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_complaint_recordings"),
    )
    op.create_index(
        "ix_complaint_recordings_debtor_recorded",
        "complaint_recordings",
        ["debtor_id", "recorded_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_complaint_recordings_debtor_recorded", table_name="complaint_recordings")
    op.drop_table("complaint_recordings")
    op.drop_index("ix_complaint_known_cases_debtor_id", table_name="complaint_known_cases")
    op.drop_table("complaint_known_cases")
    op.execute("DELETE FROM complaint_evidence WHERE size_bytes IS NULL OR sha256 IS NULL")
    with op.batch_alter_table("complaint_evidence") as batch:
        batch.drop_column("call_id")
        batch.drop_column("recording_uri")
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=False)
        batch.alter_column("size_bytes", existing_type=sa.BigInteger, nullable=False)
    op.drop_index("ix_complaint_tickets_debtor_id", table_name="complaint_tickets")
    with op.batch_alter_table("complaint_tickets") as batch:
        batch.drop_constraint("uq_complaint_tickets_call_id", type_="unique")
        batch.drop_column("call_id")
        batch.drop_column("debtor_id")
