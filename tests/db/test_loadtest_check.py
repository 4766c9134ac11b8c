"""db.loadtest.check_database on a damaged database, real SQLite and real PostgreSQL: a cup without its capture,
one short of a coin, one without its verdict, a verdict nobody logged, and an idempotency key stored twice are each
counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Engine, delete, select, update

from db.loadtest import OPERATOR, OPERATOR_PIN, StationPlan, StationRun, check_database, coins_of, cup_key, make_cup
from db.repository import VerdictRepository
from db.schema import Capture, Coin, Role, Verdict
from db.session import init_db

STATION = "station-1"
LOGGED = 9
"""Cups the station logged; it acknowledged all but the last (killed before its ``ack`` line)."""


@pytest.fixture
def logged(empty_db_url: str, tmp_path: Path) -> Iterator[tuple[str, VerdictRepository]]:
    """A database of its own, migrated, where the load test's station logged cups 0 to ``LOGGED - 1``."""
    engine = init_db(empty_db_url)
    repository = VerdictRepository(engine, tmp_path / "home")
    repository.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
    for cup in range(LOGGED):
        repository.log_verdict(make_cup(STATION, cup))
    yield empty_db_url, repository
    engine.dispose()


def cup_id_of(engine: Engine, cup: int, station: str = STATION) -> int:
    """The database's id of the station's cup number ``cup``, found by its idempotency key."""
    with engine.connect() as conn:
        found = conn.scalar(select(Verdict.cup_id).where(Verdict.idempotency_key == cup_key(station, cup)))
    assert found is not None, f"{station} cup {cup} is not stored"
    return int(found)


def drop_key_uniqueness(engine: Engine) -> None:
    """Take the unique constraint off ``verdicts.idempotency_key`` (SQLite: the table is rebuilt without it), so a
    key can be stored twice, as in a database whose constraint was lost."""
    with engine.begin() as conn:
        ops = Operations(MigrationContext.configure(conn))
        with ops.batch_alter_table("verdicts") as batch:
            batch.drop_constraint("uq_verdicts_idempotency_key", type_="unique")


def test_check_database_counts_each_kind_of_damage(logged: tuple[str, VerdictRepository]) -> None:
    """Each damage is made in turn and moves exactly the count it belongs to: (stored, lost, duplicated,
    half-written)."""
    url, repository = logged
    engine = repository.engine
    runs = [StationRun(StationPlan(STATION, LOGGED), acked=list(range(LOGGED - 1)))]
    assert check_database(url, runs) == (LOGGED, 0, 0, 0)

    with engine.begin() as conn:  # cup 1 lost its photograph
        conn.execute(delete(Capture).where(Capture.cup_id == cup_id_of(engine, 1)))
    assert check_database(url, runs) == (LOGGED, 0, 0, 1)

    assert coins_of(2) == 3
    cup_2 = cup_id_of(engine, 2)
    with engine.begin() as conn:  # cup 2 lost one of its three coins
        conn.execute(delete(Coin).where(Coin.cup_id == cup_2, Coin.index == 2))
    assert check_database(url, runs) == (LOGGED, 0, 0, 2)

    # a verdict no station of the run logged: a stray row, and its coins cannot be checked against a logged cup
    repository.log_verdict(make_cup("station-9", 0))
    assert check_database(url, runs) == (LOGGED + 1, 0, 1, 3)

    # cup 8 (logged, never acknowledged) stored under cup 0's key: the key twice; both cups hold one coin, so the
    # copy is otherwise whole
    assert coins_of(8) == coins_of(0) == 1
    drop_key_uniqueness(engine)
    with engine.begin() as conn:
        conn.execute(
            update(Verdict)
            .where(Verdict.idempotency_key == cup_key(STATION, 8))
            .values(idempotency_key=cup_key(STATION, 0))
        )
    assert check_database(url, runs) == (LOGGED + 1, 0, 2, 3)

    with engine.begin() as conn:  # cup 7, acknowledged, lost its verdict: lost, and its cup half-written
        conn.execute(delete(Verdict).where(Verdict.cup_id == cup_id_of(engine, 7)))
    assert check_database(url, runs) == (LOGGED, 1, 2, 4)


def test_an_acknowledged_cup_never_stored_is_lost(logged: tuple[str, VerdictRepository]) -> None:
    """A station that acknowledged a cup the database does not hold: lost, and nothing else is counted."""
    url, _ = logged
    runs = [StationRun(StationPlan(STATION, LOGGED + 2), acked=list(range(LOGGED + 1)))]
    assert check_database(url, runs) == (LOGGED, 1, 0, 0)
