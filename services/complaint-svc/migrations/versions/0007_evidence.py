"""The debtor's SMS and letters as evidence (COMP-RECORD, COMP-SLA-EVIDENCE)

The read model of contact records fed by contact.events (ids and references only), and
evidence that references one: its kind, its id in contact-svc, when it happened and the
carrier's receipt; each attached once per ticket.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("complaint_evidence") as batch:
        batch.alter_column(
            "kind", existing_type=sa.String(16), type_=sa.String(24), existing_nullable=False
        )
        batch.add_column(sa.Column("reference", sa.String(64), nullable=True))
        batch.add_column(sa.Column("occurred_at", TS, nullable=True))
        batch.add_column(sa.Column("proof_ref", sa.String(500), nullable=True))
        batch.create_unique_constraint(
            "uq_complaint_evidence_ticket_id", ["ticket_id", "kind", "reference"]
        )
    op.create_table(
        "complaint_contact_records",
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("proof_ref", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("kind", "reference", name="pk_complaint_contact_records"),
    )
    op.create_index(
        "ix_complaint_contact_records_debtor_occurred",
        "complaint_contact_records",
        ["debtor_id", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_complaint_contact_records_debtor_occurred", table_name="complaint_contact_records"
    )
    op.drop_table("complaint_contact_records")
    op.execute("DELETE FROM complaint_evidence WHERE reference IS NOT NULL")
    with op.batch_alter_table("complaint_evidence") as batch:
        batch.drop_constraint("uq_complaint_evidence_ticket_id", type_="unique")
        batch.drop_column("proof_ref")
        batch.drop_column("occurred_at")
        batch.drop_column("reference")
        batch.alter_column(
            "kind", existing_type=sa.String(24), type_=sa.String(16), existing_nullable=False
        )
