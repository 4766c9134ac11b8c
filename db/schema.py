"""The verdict log's tables as SQLAlchemy 2.0 typed ORM classes.

Tables: ``stations``, ``operators``, ``orders``, ``cups``, ``captures``, ``coins``, ``verdicts``, ``labels``, the
append-only ``relabel_audit`` and ``operator_audit``. Every timestamp is stored in UTC and read back timezone-aware.
Enumerations are stored as short strings guarded by CHECK constraints (portable between SQLite and PostgreSQL).
The audit tables refuse UPDATE and DELETE twice: here through mapper events, and in the database through triggers
created by their migrations (on SQLite also an insert over an existing row, ``INSERT OR REPLACE``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from models.types import Decision, Side

NAME_LEN = 64
REF_LEN = 255
TARGET_LEN = 32
LABEL_VALUE_LEN = 96
REVISION_LEN = 32

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Role(StrEnum):
    """What an operator may do: supervisors may also relabel."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"


class OperatorChange(StrEnum):
    """What a row of ``operator_audit`` records: a person added, or a PIN, role or sign-in right changed."""

    ADDED = "added"
    PIN = "pin_changed"
    ROLE = "role_changed"
    DEACTIVATED = "deactivated"
    ACTIVATED = "activated"


class LabelKind(StrEnum):
    """A person's ruling on a cup or a coin.

    Cup level: ``confirmed`` (every coin is the expected type) or ``corrected`` (the cup holds ``corrected_type``).
    Coin level: any of the five; ``wrong_side`` keeps the type and says the matched side is wrong.
    """

    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    NOT_A_COIN = "not_a_coin"
    DAMAGED = "damaged"
    WRONG_SIDE = "wrong_side"


CUP_LABEL_KINDS = frozenset({LabelKind.CONFIRMED, LabelKind.CORRECTED})


class AuditLogImmutableError(RuntimeError):
    """Raised when code tries to change or remove a row of an append-only audit log."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive ones are refused)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored timestamp as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _str_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints the same everywhere."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Station(Base):
    """A camera station; several may share one PostgreSQL database."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Operator(Base):
    """A person who runs a station; ``pin_hash`` is a salted scrypt hash (see :mod:`db.pins`)."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    role: Mapped[Role] = mapped_column(_str_enum(Role, "role"))
    pin_hash: Mapped[str] = mapped_column(String(REF_LEN))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(Base):
    """A customer order: its number fixes the coin type every cup of it must hold."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    expected_type: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cup(Base):
    """One cup put under the camera, once per photograph.

    ``recheck_of_id`` names the earlier check of the same cup when this photograph was taken after the operator
    turned over the coins that check named (a FLAG with :attr:`models.types.Verdict.turn_first`): the later check
    answers the earlier one, so the earlier one leaves the review queue. ``expected_count`` is how many coins the
    order asked for (``None``: it did not say, or the cup was logged by software before revision 0005).
    """

    __tablename__ = "cups"
    __table_args__ = (Index("ix_cups_station_created", "station_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    expected_type: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    created_at: Mapped[datetime] = mapped_column()
    recheck_of_id: Mapped[int | None] = mapped_column(ForeignKey("cups.id"), index=True)
    expected_count: Mapped[int | None] = mapped_column(Integer)

    station: Mapped[Station] = relationship()
    operator: Mapped[Operator] = relationship()
    order: Mapped[Order | None] = relationship()
    capture: Mapped[Capture | None] = relationship(back_populates="cup")
    coins: Mapped[list[Coin]] = relationship(back_populates="cup", order_by="Coin.index")
    verdict: Mapped[Verdict | None] = relationship(back_populates="cup")


class Capture(Base):
    """The cup's photograph: a JPEG in the content-addressed store (``ref``), with its digest and size."""

    __tablename__ = "captures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cup_id: Mapped[int] = mapped_column(ForeignKey("cups.id"), unique=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    ref: Mapped[str] = mapped_column(String(REF_LEN))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)

    cup: Mapped[Cup] = relationship(back_populates="capture")


class Coin(Base):
    """One detected coin of a cup with its best gallery match; mask and crop are store references."""

    __tablename__ = "coins"
    __table_args__ = (
        UniqueConstraint("cup_id", "index", name="uq_coins_cup_id_index"),
        CheckConstraint('"index" >= 0', name="index_nonneg"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cup_id: Mapped[int] = mapped_column(ForeignKey("cups.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    diameter_mm: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    top_type: Mapped[str | None] = mapped_column(String(NAME_LEN))
    top_side: Mapped[Side | None] = mapped_column(_str_enum(Side, "top_side"))
    top_score: Mapped[float | None] = mapped_column(Float)
    mask_ref: Mapped[str | None] = mapped_column(String(REF_LEN))
    crop_ref: Mapped[str | None] = mapped_column(String(REF_LEN))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)

    cup: Mapped[Cup] = relationship(back_populates="coins")


class Verdict(Base):
    """The station's decision for a cup; ``idempotency_key`` (a client UUID) makes logging retry-safe."""

    __tablename__ = "verdicts"
    __table_args__ = (CheckConstraint("p_correct >= 0 AND p_correct <= 1", name="p_correct_range"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cup_id: Mapped[int] = mapped_column(ForeignKey("cups.id"), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(36), unique=True)
    decision: Mapped[Decision] = mapped_column(_str_enum(Decision, "decision"))
    p_correct: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column()
    model_version: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    timings: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(index=True)

    cup: Mapped[Cup] = relationship(back_populates="verdict")


class Label(Base):
    """A person's ruling on a cup (``coin_id`` null) or one coin; only one ``is_current`` label per target."""

    __tablename__ = "labels"
    __table_args__ = (
        Index(
            "uq_labels_current_target",
            "target",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
        CheckConstraint(
            "(kind = 'corrected' AND corrected_type IS NOT NULL) OR (kind <> 'corrected' AND corrected_type IS NULL)",
            name="corrected_type_iff_corrected",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cup_id: Mapped[int] = mapped_column(ForeignKey("cups.id"), index=True)
    coin_id: Mapped[int | None] = mapped_column(ForeignKey("coins.id"), index=True)
    target: Mapped[str] = mapped_column(String(TARGET_LEN))
    kind: Mapped[LabelKind] = mapped_column(_str_enum(LabelKind, "kind"))
    corrected_type: Mapped[str | None] = mapped_column(String(NAME_LEN))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)

    operator: Mapped[Operator] = relationship()


class RelabelAudit(Base):
    """Append-only history of every relabel: who, when, which target, old value → new value, and a note."""

    __tablename__ = "relabel_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cup_id: Mapped[int] = mapped_column(ForeignKey("cups.id"), index=True)
    coin_id: Mapped[int | None] = mapped_column(ForeignKey("coins.id"))
    target: Mapped[str] = mapped_column(String(TARGET_LEN))
    old_value: Mapped[str | None] = mapped_column(String(LABEL_VALUE_LEN))
    new_value: Mapped[str] = mapped_column(String(LABEL_VALUE_LEN))
    note: Mapped[str] = mapped_column(Text, default="")


class OperatorAudit(Base):
    """Append-only history of who may sign in: the person changed, what changed (old → new), when, and by whom
    (``changed_by``: the account and computer the change was made from)."""

    __tablename__ = "operator_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    action: Mapped[OperatorChange] = mapped_column(_str_enum(OperatorChange, "action"))
    old_value: Mapped[str | None] = mapped_column(String(NAME_LEN))
    new_value: Mapped[str | None] = mapped_column(String(NAME_LEN))
    changed_by: Mapped[str] = mapped_column(String(REF_LEN))
    note: Mapped[str] = mapped_column(Text, default="")


class SchemaCompat(Base):
    """Which software may still use the schema: one row per Alembic revision, written by its own migration.

    ``oldest_reader`` is the oldest revision whose code can read and write a database at ``revision``: an additive
    change (a new nullable column, a new table) names an older revision, a change older code would break on names
    itself. A station whose software does not know the database's revision runs on it when it knows the
    ``oldest_reader`` of that revision (:func:`db.session.init_db`), so the stations of one site can be upgraded one
    at a time, and a station can go back to its previous software after an upgrade.
    """

    __tablename__ = "schema_compat"

    revision: Mapped[str] = mapped_column(String(REVISION_LEN), primary_key=True)
    oldest_reader: Mapped[str] = mapped_column(String(REVISION_LEN))


APPEND_ONLY: tuple[type[Base], ...] = (RelabelAudit, OperatorAudit)
"""The tables whose rows are never changed or removed."""


def _refuse_audit_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise AuditLogImmutableError(f"{target.__tablename__} is append-only: row {target.id} cannot be updated")


def _refuse_audit_delete(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise AuditLogImmutableError(f"{target.__tablename__} is append-only: row {target.id} cannot be deleted")


for _table in APPEND_ONLY:
    event.listen(_table, "before_update", _refuse_audit_update)
    event.listen(_table, "before_delete", _refuse_audit_delete)
