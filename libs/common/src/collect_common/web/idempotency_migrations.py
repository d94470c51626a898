"""Alembic operations for the ``idempotency_keys`` table (see :mod:`.idempotency`).

In a service's revision::

    from collect_common.web.idempotency_migrations import (
        create_idempotency_table,
        drop_idempotency_table,
    )

    def upgrade() -> None:
        create_idempotency_table()

    def downgrade() -> None:
        drop_idempotency_table()

The columns match :func:`collect_common.web.idempotency.add_idempotency_table`
(a unit test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collect_common.web.idempotency import IDEMPOTENCY_KEYS


def create_idempotency_table() -> None:
    op.create_table(
        IDEMPOTENCY_KEYS,
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response_body", sa.LargeBinary, nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("response_headers", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", IDEMPOTENCY_KEYS, ["created_at"])


def drop_idempotency_table() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name=IDEMPOTENCY_KEYS)
    op.drop_table(IDEMPOTENCY_KEYS)
