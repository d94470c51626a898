"""E-mail intake (Message-ID, triage, phone, evidence) and escalation cycles

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

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("complaint_tickets") as batch:
        batch.add_column(sa.Column("cycle", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("escalated_at", TS, nullable=True))
        batch.add_column(sa.Column("followup_note", sa.Text, nullable=True))  # ciphertext
        batch.add_column(sa.Column("complainant_phone", sa.Text, nullable=True))  # ciphertext
        batch.add_column(sa.Column("message_id", sa.String(300), nullable=True))
        batch.add_column(
            sa.Column("needs_triage", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("triage_reasons", sa.Text, nullable=True))
        batch.create_unique_constraint("uq_complaint_tickets_message_id", ["message_id"])
    op.create_table(
        "complaint_evidence",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("ticket_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=True),  # ciphertext
        sa.Column("content_type", sa.String(128), nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_evidence"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["complaint_tickets.id"],
            name="fk_complaint_evidence_ticket_id_complaint_tickets",
        ),
    )
    op.create_index("ix_complaint_evidence_ticket_id", "complaint_evidence", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_complaint_evidence_ticket_id", table_name="complaint_evidence")
    op.drop_table("complaint_evidence")
    with op.batch_alter_table("complaint_tickets") as batch:
        batch.drop_constraint("uq_complaint_tickets_message_id", type_="unique")
        for column in (
            "triage_reasons",
            "needs_triage",
            "message_id",
            "complainant_phone",
            "followup_note",
            "escalated_at",
            "cycle",
        ):
            batch.drop_column(column)
