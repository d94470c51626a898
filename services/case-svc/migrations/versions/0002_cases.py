"""Cases, payments, the bank's change feed; idempotency keys and timers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from collect_common.db import BigId
from collect_common.migrations_ops import create_timers_table, drop_timers_table
from collect_common.web.idempotency_migrations import (
    create_idempotency_table,
    drop_idempotency_table,
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(18, 2)


def upgrade() -> None:
    create_idempotency_table()
    create_timers_table()
    op.create_table(
        "cases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("bank_id", sa.String(64), nullable=False),
        sa.Column("contract_no", sa.String(64), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("national_id_index", sa.String(64), nullable=False),
        # personal data: ciphertext only (SEC-PII)
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("national_id", sa.Text, nullable=False),
        sa.Column("phones", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("principal", MONEY, nullable=False),
        sa.Column("interest", MONEY, nullable=False),
        sa.Column("fees", MONEY, nullable=False),
        sa.Column("paid_total", MONEY, nullable=False),
        sa.Column("overdue_since", sa.Date, nullable=False),
        sa.Column("debtor_timezone", sa.String(64), nullable=False),
        sa.Column("history", sa.String(32), nullable=False),
        sa.Column("willingness", sa.String(32), nullable=False),
        sa.Column("bucket", sa.String(8), nullable=False),
        sa.Column("track", sa.String(16), nullable=False),
        sa.Column("channels", sa.String(200), nullable=False),
        sa.Column("strategy_rule", sa.String(100), nullable=True),
        sa.Column("strategy_version", sa.String(40), nullable=False),
        sa.Column("strategy_reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("bank_id", "contract_no", name="uq_cases_bank_contract"),
    )
    op.create_index("ix_cases_debtor_id", "cases", ["debtor_id"])
    op.create_index("ix_cases_national_id_index", "cases", ["national_id_index"])
    op.create_table(
        "payments",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "payment_id", name="pk_payments"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_payments_case_id_cases"),
    )
    op.create_table(
        "case_changes",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("contract_no", sa.String(64), nullable=False),
        sa.Column("change", sa.String(100), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_case_changes"),
    )
    op.create_index("ix_case_changes_bank_seq", "case_changes", ["bank_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_case_changes_bank_seq", table_name="case_changes")
    op.drop_table("case_changes")
    op.drop_table("payments")
    op.drop_index("ix_cases_national_id_index", table_name="cases")
    op.drop_index("ix_cases_debtor_id", table_name="cases")
    op.drop_table("cases")
    drop_timers_table()
    drop_idempotency_table()
