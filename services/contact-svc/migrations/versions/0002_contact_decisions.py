"""Read model (debtors, cases, agents), contact attempts and denials

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "debtors",
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("debtor_id", name="pk_debtors"),
    )
    op.create_table(
        "contact_cases",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("bank_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("track", sa.String(16), nullable=True),
        sa.Column("channels", sa.String(200), nullable=True),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_contact_cases"),
    )
    op.create_index("ix_contact_cases_debtor_id", "contact_cases", ["debtor_id"])
    op.create_table(
        "contact_agents",
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("suspended", sa.Boolean, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_contact_agents"),
    )
    op.create_table(
        "contact_attempts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=True),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("answered", sa.Boolean, nullable=True),
        sa.Column("attempted_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contact_attempts"),
    )
    op.create_index(
        "ix_contact_attempts_debtor_channel_at",
        "contact_attempts",
        ["debtor_id", "channel", "attempted_at"],
    )
    op.create_table(
        "contact_denials",
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("rules", sa.String(200), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("next_allowed_at", INSTANT, nullable=True),
        sa.Column("denied_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_contact_denials"),
    )
    op.create_index("ix_contact_denials_debtor_at", "contact_denials", ["debtor_id", "denied_at"])


def downgrade() -> None:
    op.drop_index("ix_contact_denials_debtor_at", table_name="contact_denials")
    op.drop_table("contact_denials")
    op.drop_index("ix_contact_attempts_debtor_channel_at", table_name="contact_attempts")
    op.drop_table("contact_attempts")
    op.drop_table("contact_agents")
    op.drop_index("ix_contact_cases_debtor_id", table_name="contact_cases")
    op.drop_table("contact_cases")
    op.drop_table("debtors")
