"""Letters (LETTER), field visits (VISIT-TEAM) and contact holds

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from collect_common.web.idempotency_migrations import (
    create_idempotency_table,
    drop_idempotency_table,
)

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_idempotency_table()
    op.create_table(
        "letter_templates",
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("bank_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("template_id", name="pk_letter_templates"),
    )
    op.create_index("ix_letter_templates_bank_id", "letter_templates", ["bank_id"])
    op.create_table(
        "letter_template_versions",
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approval_number", sa.String(64), nullable=True),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", INSTANT, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("template_id", "version", name="pk_letter_template_versions"),
    )
    op.create_table(
        "letters",
        sa.Column("letter_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("bank_id", sa.String(64), nullable=False),
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("template_version", sa.Integer, nullable=False),
        sa.Column("approval_number", sa.String(64), nullable=False),
        sa.Column("seal_ref", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),  # EncryptedText (SEC-PII)
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("generated_by", sa.String(64), nullable=False),
        sa.Column("generated_at", INSTANT, nullable=False),
        sa.Column("carrier", sa.String(32), nullable=True),
        sa.Column("tracking_number", sa.String(64), nullable=True),
        sa.Column("contact_id", sa.String(36), nullable=True),
        sa.Column("dispatched_by", sa.String(64), nullable=True),
        sa.Column("dispatched_at", INSTANT, nullable=True),
        sa.Column("in_transit_at", INSTANT, nullable=True),
        sa.Column("delivered_at", INSTANT, nullable=True),
        sa.Column("returned_at", INSTANT, nullable=True),
        sa.Column("return_reason", sa.String(32), nullable=True),
        sa.Column("proof_ref", sa.String(500), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("letter_id", name="pk_letters"),
        sa.UniqueConstraint(
            "carrier", "tracking_number", name="uq_letters_carrier_tracking_number"
        ),
    )
    op.create_index("ix_letters_case_id", "letters", ["case_id"])
    op.create_index("ix_letters_debtor_id", "letters", ["debtor_id"])
    op.create_table(
        "visits",
        sa.Column("visit_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("planned_at", INSTANT, nullable=False),
        sa.Column("place", sa.Text, nullable=False),  # EncryptedText (SEC-PII)
        sa.Column("staff", sa.String(400), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("planned_by", sa.String(64), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("recording_refs", sa.Text, nullable=True),
        sa.Column("contact_id", sa.String(36), nullable=True),
        sa.Column("completed_at", INSTANT, nullable=True),
        sa.Column("cancel_reason", sa.String(500), nullable=True),
        sa.Column("cancelled_at", INSTANT, nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("visit_id", name="pk_visits"),
    )
    op.create_index("ix_visits_case_id", "visits", ["case_id"])
    op.create_index("ix_visits_debtor_id", "visits", ["debtor_id"])
    op.create_table(
        "contact_holds",
        sa.Column("hold_id", sa.String(36), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),  # EncryptedText
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("ticket_id", sa.String(64), nullable=True),
        sa.Column("until", INSTANT, nullable=True),
        sa.Column("placed_by", sa.String(64), nullable=False),
        sa.Column("placed_at", INSTANT, nullable=False),
        sa.Column("lifted_by", sa.String(64), nullable=True),
        sa.Column("lifted_at", INSTANT, nullable=True),
        sa.Column("lift_reason", sa.Text, nullable=True),  # EncryptedText
        sa.PrimaryKeyConstraint("hold_id", name="pk_contact_holds"),
        sa.UniqueConstraint("ticket_id", name="uq_contact_holds_ticket_id"),
    )
    op.create_index("ix_contact_holds_debtor_id", "contact_holds", ["debtor_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_holds_debtor_id", table_name="contact_holds")
    op.drop_table("contact_holds")
    op.drop_index("ix_visits_debtor_id", table_name="visits")
    op.drop_index("ix_visits_case_id", table_name="visits")
    op.drop_table("visits")
    op.drop_index("ix_letters_debtor_id", table_name="letters")
    op.drop_index("ix_letters_case_id", table_name="letters")
    op.drop_table("letters")
    op.drop_table("letter_template_versions")
    op.drop_index("ix_letter_templates_bank_id", table_name="letter_templates")
    op.drop_table("letter_templates")
    drop_idempotency_table()
