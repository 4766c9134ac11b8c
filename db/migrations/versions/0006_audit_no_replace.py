"""SQLite: an audit row cannot be replaced by inserting over its id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

``INSERT OR REPLACE`` deletes the row in the way without firing its DELETE trigger (SQLite fires those only with
recursive triggers on), so ``relabel_audit`` and ``operator_audit`` rows could be rewritten in place. A trigger
now refuses an insert naming an id that exists. PostgreSQL has no such statement (its ``ON CONFLICT DO UPDATE`` is
an UPDATE, which is refused already): nothing changes there.

Additive: older code only inserts new rows. Software at 0001 can still use the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from db.migrations.compat import forget_revision, record_oldest_reader

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLDEST_READER = "0001"
"""The oldest revision whose code can still read and write this schema (see db.migrations.compat)."""

AUDIT_TABLES = ("relabel_audit", "operator_audit")


def upgrade() -> None:
    """SQLite: refuse an insert over an existing audit row."""
    if op.get_bind().dialect.name == "sqlite":
        for table in AUDIT_TABLES:
            op.execute(
                f"""CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
                WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id)
                BEGIN SELECT RAISE(ABORT, '{table} is append-only: REPLACE refused'); END"""
            )
    record_oldest_reader(revision, OLDEST_READER)


def downgrade() -> None:
    """Drop the triggers."""
    forget_revision(revision)
    if op.get_bind().dialect.name == "sqlite":
        for table in AUDIT_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
