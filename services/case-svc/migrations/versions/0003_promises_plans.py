"""Promises to pay (CASE-PROMISE) and hardship repayment plans (CASE-HARDSHIP)

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

MONEY = sa.Numeric(18, 2)


def upgrade() -> None:
    op.create_table(
        "promises",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_promises"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_promises_case_id_cases"),
    )
    op.create_index("ix_promises_case_status", "promises", ["case_id", "status"])
    op.create_table(
        "plans",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("agreement_ref", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_plans_case_id_cases"),
    )
    op.create_index("ix_plans_case_status", "plans", ["case_id", "status"])
    op.create_table(
        "plan_installments",
        sa.Column("plan_id", sa.String(36), nullable=False),
        sa.Column("no", sa.Integer, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "no", name="pk_plan_installments"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_installments_plan_id_plans"
        ),
    )


def downgrade() -> None:
    op.drop_table("plan_installments")
    op.drop_index("ix_plans_case_status", table_name="plans")
    op.drop_table("plans")
    op.drop_index("ix_promises_case_status", table_name="promises")
    op.drop_table("promises")
