"""Initial verdict-log schema, with triggers that make ``relabel_audit`` append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_NAME = sa.String(length=64)
_REF = sa.String(length=255)

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER relabel_audit_no_update BEFORE UPDATE ON relabel_audit
    BEGIN SELECT RAISE(ABORT, 'relabel_audit is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER relabel_audit_no_delete BEFORE DELETE ON relabel_audit
    BEGIN SELECT RAISE(ABORT, 'relabel_audit is append-only: DELETE refused'); END""",
)
_PG_TRIGGERS = (
    """CREATE FUNCTION relabel_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'relabel_audit is append-only: % refused', TG_OP USING ERRCODE = 'raise_exception';
    END
    $$""",
    """CREATE TRIGGER relabel_audit_no_update_delete BEFORE UPDATE OR DELETE ON relabel_audit
    FOR EACH ROW EXECUTE FUNCTION relabel_audit_refuse_change()""",
    """CREATE TRIGGER relabel_audit_no_truncate BEFORE TRUNCATE ON relabel_audit
    FOR EACH STATEMENT EXECUTE FUNCTION relabel_audit_refuse_change()""",
)


def _enum_check(column: str, values: Sequence[str], table: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    """Create every table, index and the audit-log triggers."""
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _NAME, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("name", name=op.f("uq_stations_name")),
    )
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _NAME, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("pin_hash", _REF, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        _enum_check("role", ("operator", "supervisor"), "operators"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_operators_name")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", _NAME, nullable=False),
        sa.Column("expected_type", _NAME, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
    )
    op.create_table(
        "cups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("expected_type", _NAME, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_cups_operator_id_operators")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_cups_order_id_orders")),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_cups_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cups")),
    )
    op.create_index(op.f("ix_cups_expected_type"), "cups", ["expected_type"])
    op.create_index("ix_cups_station_created", "cups", ["station_id", "created_at"])
    op.create_table(
        "captures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cup_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ref", _REF, nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["cup_id"], ["cups.id"], name=op.f("fk_captures_cup_id_cups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
        sa.UniqueConstraint("cup_id", name=op.f("uq_captures_cup_id")),
    )
    op.create_index(op.f("ix_captures_sha256"), "captures", ["sha256"])
    op.create_table(
        "coins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cup_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("diameter_mm", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("top_type", _NAME, nullable=True),
        sa.Column("top_side", sa.String(length=16), nullable=True),
        sa.Column("top_score", sa.Float(), nullable=True),
        sa.Column("mask_ref", _REF, nullable=True),
        sa.Column("crop_ref", _REF, nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint('"index" >= 0', name=op.f("ck_coins_index_nonneg")),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name=op.f("ck_coins_confidence_range")),
        _enum_check("top_side", ("obverse", "reverse"), "coins"),
        sa.ForeignKeyConstraint(["cup_id"], ["cups.id"], name=op.f("fk_coins_cup_id_cups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coins")),
        sa.UniqueConstraint("cup_id", "index", name=op.f("uq_coins_cup_id_index")),
    )
    op.create_index(op.f("ix_coins_cup_id"), "coins", ["cup_id"])
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cup_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=36), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("p_correct", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("model_version", _NAME, nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("p_correct >= 0 AND p_correct <= 1", name=op.f("ck_verdicts_p_correct_range")),
        _enum_check("decision", ("pass", "flag"), "verdicts"),
        sa.ForeignKeyConstraint(["cup_id"], ["cups.id"], name=op.f("fk_verdicts_cup_id_cups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdicts")),
        sa.UniqueConstraint("cup_id", name=op.f("uq_verdicts_cup_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_verdicts_idempotency_key")),
    )
    op.create_index(op.f("ix_verdicts_created_at"), "verdicts", ["created_at"])
    op.create_index(op.f("ix_verdicts_model_version"), "verdicts", ["model_version"])
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cup_id", sa.Integer(), nullable=False),
        sa.Column("coin_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("corrected_type", _NAME, nullable=True),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'corrected' AND corrected_type IS NOT NULL) OR (kind <> 'corrected' AND corrected_type IS NULL)",
            name=op.f("ck_labels_corrected_type_iff_corrected"),
        ),
        _enum_check("kind", ("confirmed", "corrected", "not_a_coin", "damaged", "wrong_side"), "labels"),
        sa.ForeignKeyConstraint(["coin_id"], ["coins.id"], name=op.f("fk_labels_coin_id_coins")),
        sa.ForeignKeyConstraint(["cup_id"], ["cups.id"], name=op.f("fk_labels_cup_id_cups")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_labels_operator_id_operators")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    op.create_index(op.f("ix_labels_coin_id"), "labels", ["coin_id"])
    op.create_index(op.f("ix_labels_created_at"), "labels", ["created_at"])
    op.create_index(op.f("ix_labels_cup_id"), "labels", ["cup_id"])
    op.create_index(
        "uq_labels_current_target",
        "labels",
        ["target"],
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    )
    op.create_table(
        "relabel_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("cup_id", sa.Integer(), nullable=False),
        sa.Column("coin_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=96), nullable=True),
        sa.Column("new_value", sa.String(length=96), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["coin_id"], ["coins.id"], name=op.f("fk_relabel_audit_coin_id_coins")),
        sa.ForeignKeyConstraint(["cup_id"], ["cups.id"], name=op.f("fk_relabel_audit_cup_id_cups")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_relabel_audit_operator_id_operators")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relabel_audit")),
    )
    op.create_index(op.f("ix_relabel_audit_cup_id"), "relabel_audit", ["cup_id"])

    dialect = op.get_bind().dialect.name
    triggers = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _PG_TRIGGERS}.get(dialect)
    if triggers is None:
        raise NotImplementedError(f"no append-only triggers written for {dialect}")
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    """Drop everything this revision created (triggers and the trigger function included)."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS relabel_audit_no_truncate ON relabel_audit")
        op.execute("DROP TRIGGER IF EXISTS relabel_audit_no_update_delete ON relabel_audit")
    else:
        op.execute("DROP TRIGGER IF EXISTS relabel_audit_no_delete")
        op.execute("DROP TRIGGER IF EXISTS relabel_audit_no_update")
    op.drop_table("relabel_audit")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS relabel_audit_refuse_change()")
    op.drop_table("labels")
    op.drop_table("verdicts")
    op.drop_table("coins")
    op.drop_table("captures")
    op.drop_table("cups")
    op.drop_table("orders")
    op.drop_table("operators")
    op.drop_table("stations")
