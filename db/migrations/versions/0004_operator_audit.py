"""Who may sign in keeps a history: ``operator_audit``, append-only like ``relabel_audit``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

A new table that older code never reads: software at 0001 can still use the schema (it adds operators without a
history row).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.compat import forget_revision, record_oldest_reader

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLDEST_READER = "0001"
"""The oldest revision whose code can still read and write this schema (see db.migrations.compat): an older one
only for an additive change."""

ACTIONS = ("added", "pin_changed", "role_changed", "deactivated", "activated")

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER operator_audit_no_update BEFORE UPDATE ON operator_audit
    BEGIN SELECT RAISE(ABORT, 'operator_audit is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER operator_audit_no_delete BEFORE DELETE ON operator_audit
    BEGIN SELECT RAISE(ABORT, 'operator_audit is append-only: DELETE refused'); END""",
)
_PG_TRIGGERS = (
    """CREATE FUNCTION operator_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'operator_audit is append-only: % refused', TG_OP USING ERRCODE = 'raise_exception';
    END
    $$""",
    """CREATE TRIGGER operator_audit_no_update_delete BEFORE UPDATE OR DELETE ON operator_audit
    FOR EACH ROW EXECUTE FUNCTION operator_audit_refuse_change()""",
    """CREATE TRIGGER operator_audit_no_truncate BEFORE TRUNCATE ON operator_audit
    FOR EACH STATEMENT EXECUTE FUNCTION operator_audit_refuse_change()""",
)


def upgrade() -> None:
    """Create the table, its index and the triggers that refuse UPDATE, DELETE (and TRUNCATE)."""
    quoted = ", ".join(f"'{a}'" for a in ACTIONS)
    op.create_table(
        "operator_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("old_value", sa.String(length=64), nullable=True),
        sa.Column("new_value", sa.String(length=64), nullable=True),
        sa.Column("changed_by", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(f"action IN ({quoted})", name=op.f("ck_operator_audit_action")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_operator_audit_operator_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_audit")),
    )
    op.create_index(op.f("ix_operator_audit_operator_id"), "operator_audit", ["operator_id"])
    dialect = op.get_bind().dialect.name
    triggers = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _PG_TRIGGERS}.get(dialect)
    if triggers is None:
        raise NotImplementedError(f"no append-only triggers written for {dialect}")
    for statement in triggers:
        op.execute(statement)
    record_oldest_reader(revision, OLDEST_READER)


def downgrade() -> None:
    """Drop the triggers, the table and (PostgreSQL) the trigger function."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS operator_audit_no_truncate ON operator_audit")
        op.execute("DROP TRIGGER IF EXISTS operator_audit_no_update_delete ON operator_audit")
    else:
        op.execute("DROP TRIGGER IF EXISTS operator_audit_no_delete")
        op.execute("DROP TRIGGER IF EXISTS operator_audit_no_update")
    op.drop_index(op.f("ix_operator_audit_operator_id"), table_name="operator_audit")
    op.drop_table("operator_audit")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS operator_audit_refuse_change()")
    forget_revision(revision)
