"""Schema rules the database itself enforces (on both backends), UTC timestamps, connection settings, PINs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from db.pins import hash_pin, verify_pin
from db.repository import VerdictRepository
from db.schema import Station
from db.session import make_engine, make_session_factory
from tests.db.factories import SUPERVISOR, make_record


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO operators (name, role, pin_hash, active, created_at) VALUES ('x', 'admin', 'h', true, :now)",
        "INSERT INTO stations (name, created_at) VALUES ('station-1', :now)",  # the logged verdicts' station
        "INSERT INTO cups (station_id, operator_id, expected_type, created_at) VALUES (999, 999, 'eur_1', :now)",
        "UPDATE verdicts SET p_correct = 1.5",
        "UPDATE verdicts SET decision = 'maybe'",
        "UPDATE coins SET confidence = -0.1",
        "UPDATE verdicts SET idempotency_key = 'same'",  # two verdicts, one key
    ],
)
def test_database_refuses_bad_rows(repo: VerdictRepository, sql: str) -> None:
    repo.log_verdict(make_record(1))
    repo.log_verdict(make_record(2))
    with pytest.raises(IntegrityError), repo.engine.begin() as conn:
        conn.execute(text(sql), {"now": datetime.now(UTC)})


def test_only_one_current_label_per_target(repo: VerdictRepository) -> None:
    verdict_id = repo.log_verdict(make_record(3))
    with repo.engine.connect() as conn:
        cup_id = conn.execute(text("SELECT cup_id FROM verdicts WHERE id = :v"), {"v": verdict_id}).scalar_one()
    repo.relabel(SUPERVISOR, cup_id, "confirmed")
    with pytest.raises(IntegrityError), repo.engine.begin() as conn:
        sql = (
            "INSERT INTO labels (cup_id, target, kind, operator_id, created_at, is_current) "
            "SELECT cup_id, target, 'confirmed', operator_id, created_at, true FROM labels"
        )
        conn.execute(text(sql))


def test_timestamps_come_back_aware_utc(repo: VerdictRepository) -> None:
    factory = make_session_factory(repo.engine)
    local = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with factory.begin() as session:
        session.add(Station(name="tz", created_at=local))
    with factory() as session:
        got = session.scalars(select(Station.created_at).where(Station.name == "tz")).one()
    assert got == local and got.tzinfo is not None and got.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="timezone-aware"), factory.begin() as session:
        session.add(Station(name="naive", created_at=datetime(2026, 3, 1, 12, 0)))


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_pin_hash_is_salted_and_verifies() -> None:
    a, b = hash_pin("2468"), hash_pin("2468")
    assert a != b and "2468" not in a
    assert verify_pin("2468", a) and verify_pin("2468", b)
    assert not verify_pin("2469", a)
    assert not verify_pin("2468", "plain-text")
    assert not verify_pin("2468", "bcrypt$1$2$3$00$00")
    with pytest.raises(ValueError):
        hash_pin("12")
