"""Alembic migrations on real SQLite and PostgreSQL: up, down, up again, and agreement with the ORM schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from db.schema import Base
from db.session import (
    DB_FILENAME,
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade,
    init_db,
    make_engine,
    upgrade,
)

TRIGGER_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
    "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname",
}

HEAD = "0002"
REVISIONS = ["0002", "0001"]

EXPECTED_TRIGGERS = {
    "sqlite": ["relabel_audit_no_delete", "relabel_audit_no_update"],
    "postgresql": ["relabel_audit_no_truncate", "relabel_audit_no_update_delete"],
}


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))


def triggers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(TRIGGER_SQL[engine.dialect.name])).scalars())


def test_upgrade_downgrade_upgrade(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == HEAD
    assert set(inspect(empty_engine).get_table_names()) == {*Base.metadata.tables, "alembic_version"}
    assert schema_diff(empty_engine) == []
    assert triggers(empty_engine) == EXPECTED_TRIGGERS[empty_engine.dialect.name]

    downgrade(empty_engine, "base")
    assert current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    assert triggers(empty_engine) == []
    if empty_engine.dialect.name == "postgresql":
        with empty_engine.connect() as conn:
            sql = "SELECT COUNT(*) FROM pg_proc WHERE proname = 'relabel_audit_refuse_change'"
            assert conn.execute(text(sql)).scalar_one() == 0

    upgrade(empty_engine)
    assert current_revision(empty_engine) == HEAD
    assert schema_diff(empty_engine) == []
    init_db(empty_engine)  # already at head: a no-op
    assert current_revision(empty_engine) == HEAD


def test_recheck_link_migrates_up_and_down_keeping_the_cups(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0001")
    with empty_engine.begin() as conn:
        conn.execute(text("INSERT INTO stations (id, name, created_at) VALUES (1, 's', CURRENT_TIMESTAMP)"))
        conn.execute(
            text(
                "INSERT INTO operators (id, name, role, pin_hash, active, created_at)"
                " VALUES (1, 'o', 'operator', 'x', TRUE, CURRENT_TIMESTAMP)"
            )
        )
        for cup_id in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO cups (id, station_id, operator_id, expected_type, created_at)"
                    " VALUES (:id, 1, 1, 't', CURRENT_TIMESTAMP)"
                ),
                {"id": cup_id},
            )
    upgrade(empty_engine, "0002")
    with empty_engine.begin() as conn:
        assert conn.execute(text("SELECT id, recheck_of_id FROM cups ORDER BY id")).all() == [(1, None), (2, None)]
        conn.execute(text("UPDATE cups SET recheck_of_id = 1 WHERE id = 2"))
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:  # the link must name a cup
        conn.execute(text("UPDATE cups SET recheck_of_id = 99 WHERE id = 1"))
    assert "ix_cups_recheck_of_id" in {ix["name"] for ix in inspect(empty_engine).get_indexes("cups")}
    downgrade(empty_engine, "0001")
    assert "recheck_of_id" not in {c["name"] for c in inspect(empty_engine).get_columns("cups")}
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM cups")).scalar_one() == 2


def test_migrations_ship_inside_the_package_with_one_head() -> None:
    assert MIGRATIONS_DIR.parent.name == "db"
    assert (MIGRATIONS_DIR / "env.py").is_file() and (MIGRATIONS_DIR / "script.py.mako").is_file()
    engine = make_engine("sqlite://")
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    assert scripts.get_heads() == [HEAD]
    assert [s.revision for s in scripts.walk_revisions()] == REVISIONS


def test_init_db_defaults_to_a_wal_sqlite_file_in_the_station_home(tmp_path: Path) -> None:
    engine = init_db(home=tmp_path)
    try:
        assert (tmp_path / DB_FILENAME).is_file()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()
