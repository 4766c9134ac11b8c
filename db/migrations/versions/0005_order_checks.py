"""A cup records how many coins its order asked for (``cups.expected_count``), and a cup is found by its order
(``ix_cups_order_id``: the operator window asks whether an order already passed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Additive: a nullable column older code leaves empty, and an index. Software at 0001 can still use the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.compat import forget_revision, record_oldest_reader

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLDEST_READER = "0001"
"""The oldest revision whose code can still read and write this schema (see db.migrations.compat)."""


def upgrade() -> None:
    """Add the nullable count (an ALTER TABLE ADD COLUMN on both backends: no table copy) and the index."""
    op.add_column("cups", sa.Column("expected_count", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_cups_order_id"), "cups", ["order_id"])
    record_oldest_reader(revision, OLDEST_READER)


def downgrade() -> None:
    """Drop the index and the column."""
    forget_revision(revision)
    op.drop_index(op.f("ix_cups_order_id"), table_name="cups")
    with op.batch_alter_table("cups") as batch:
        batch.drop_column("expected_count")
