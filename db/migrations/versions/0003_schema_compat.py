"""Each revision names the oldest software that may still use it (``schema_compat``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

From this revision on, every migration adds its own row to ``schema_compat``
(:func:`db.migrations.compat.record_oldest_reader`): the oldest revision whose code can still read and write the
schema it leaves. A station
whose software stops at an older revision then keeps working on a database another station has migrated
further, when that change left the old code's tables and columns usable.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.compat import COMPAT_TABLE

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLDEST_READERS = {"0001": "0001", "0002": "0001", "0003": "0001"}
"""0002 added a nullable column and 0003 a table that code at 0001 never reads: 0001's code can use all three."""


def upgrade() -> None:
    """Create the table and name the oldest reader of every revision so far."""
    op.create_table(
        "schema_compat",
        sa.Column("revision", sa.String(length=32), nullable=False),
        sa.Column("oldest_reader", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_schema_compat")),
    )
    op.bulk_insert(COMPAT_TABLE, [{"revision": r, "oldest_reader": o} for r, o in OLDEST_READERS.items()])


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("schema_compat")
