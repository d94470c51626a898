"""The bank's classification codes of a case: region, customer group, product (COMP-STATS)

Three nullable columns on ``cases``; cases imported before keep them empty (the bank
fills them by re-sending the account).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("region", sa.String(6), nullable=True))
        batch.add_column(sa.Column("customer_group", sa.String(64), nullable=True))
        batch.add_column(sa.Column("product", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("product")
        batch.drop_column("customer_group")
        batch.drop_column("region")
