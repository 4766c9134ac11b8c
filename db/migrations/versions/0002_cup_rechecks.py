"""A cup checked again after its coins were turned names the check it answers (``cups.recheck_of_id``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable self-reference, its foreign key and its index."""
    with op.batch_alter_table("cups") as batch:
        batch.add_column(sa.Column("recheck_of_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_cups_recheck_of_id_cups"), "cups", ["recheck_of_id"], ["id"])
        batch.create_index(op.f("ix_cups_recheck_of_id"), ["recheck_of_id"], unique=False)


def downgrade() -> None:
    """Drop the index, the foreign key and the column."""
    with op.batch_alter_table("cups") as batch:
        batch.drop_index(op.f("ix_cups_recheck_of_id"))
        batch.drop_constraint(op.f("fk_cups_recheck_of_id_cups"), type_="foreignkey")
        batch.drop_column("recheck_of_id")
