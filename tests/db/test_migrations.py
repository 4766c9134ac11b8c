"""Alembic migrations on real SQLite and PostgreSQL: up, down, up again, and agreement with the ORM schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from db.repository import VerdictRepository
from db.schema import Base, Role
from db.session import (
    DB_FILENAME,
    MIGRATIONS_DIR,
    SchemaTooNewError,
    alembic_config,
    current_revision,
    downgrade,
    init_db,
    make_engine,
    oldest_reader,
    upgrade,
)
from models.types import Decision
from tests.db.factories import OPERATOR, OPERATOR_PIN, make_record

TRIGGER_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
    "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname",
}

HEAD = "0006"
REVISIONS = ["0006", "0005", "0004", "0003", "0002", "0001"]
FUTURE = "0007"

EXPECTED_TRIGGERS = {
    "sqlite": [
        "operator_audit_no_delete",
        "operator_audit_no_replace",
        "operator_audit_no_update",
        "relabel_audit_no_delete",
        "relabel_audit_no_replace",
        "relabel_audit_no_update",
    ],
    "postgresql": [
        "operator_audit_no_truncate",
        "operator_audit_no_update_delete",
        "relabel_audit_no_truncate",
        "relabel_audit_no_update_delete",
    ],
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
            sql = "SELECT COUNT(*) FROM pg_proc WHERE proname LIKE '%_audit_refuse_change'"
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


def test_a_log_with_coins_and_rulings_migrates_down_and_up_again_whole(empty_engine: Engine, tmp_path: Path) -> None:
    """SQLite rebuilds ``cups`` to alter it: with foreign keys enforced, dropping the old table broke on the coins,
    verdicts and labels naming its rows, so a station's log older than a revision could never be upgraded."""
    upgrade(empty_engine)
    repo = VerdictRepository(empty_engine, tmp_path)
    repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
    repo.add_operator("sam", Role.SUPERVISOR, "2468")
    for n in range(3):
        repo.relabel("sam", repo.cup_of_verdict(repo.log_verdict(make_record(n))), "confirmed")

    def counts() -> dict[str, int]:
        with empty_engine.connect() as conn:
            return {
                t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("cups", "coins", "verdicts", "labels", "relabel_audit")
            }

    before = counts()
    assert before["coins"] == 9 and before["labels"] == 3
    downgrade(empty_engine, "0001")
    assert counts() == before
    upgrade(empty_engine)
    assert counts() == before and current_revision(empty_engine) == HEAD
    if empty_engine.dialect.name == "sqlite":
        with empty_engine.connect() as conn:  # enforced again afterwards
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []


def test_stations_starting_together_on_a_new_sqlite_log_all_migrate_it(tmp_path: Path) -> None:
    """The migration takes SQLite's write lock up front: the second process waits for the first and then finds the
    schema at head, instead of failing on "database is locked" (two of three did, most starts)."""
    script = "import sys; from db.session import init_db; init_db(sys.argv[1])"
    for attempt in range(2):
        url = f"sqlite:///{tmp_path / f'log{attempt}.db'}"
        procs = [
            subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True) for _ in range(3)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        engine = make_engine(url)
        assert current_revision(engine) == HEAD
        engine.dispose()


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


def test_every_revision_names_its_oldest_reader(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        rows: dict[str, str] = dict(conn.execute(text("SELECT revision, oldest_reader FROM schema_compat")).all())
    assert rows == {"0001": "0001", "0002": "0001", "0003": "0001", "0004": "0001", "0005": "0001", "0006": "0001"}
    assert oldest_reader(empty_engine, HEAD) == "0001"
    downgrade(empty_engine, "0002")
    assert oldest_reader(empty_engine, "0002") is None  # before 0003 a database did not say


FUTURE_REVISION = '''"""A revision this software does not ship, made by a newer one.

Revision ID: {future}
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

from db.migrations.compat import forget_revision, record_oldest_reader

revision = "{future}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cups") as batch:
        batch.add_column(sa.Column("weighed_g", sa.Float(), nullable=True))
    record_oldest_reader(revision, "{oldest}")


def downgrade() -> None:
    with op.batch_alter_table("cups") as batch:
        batch.drop_column("weighed_g")
    forget_revision(revision)
'''


def migrate_with_newer_software(engine: Engine, tmp_path: Path, oldest: str) -> None:
    """Migrate ``engine`` the way newer software would: this package's revisions plus revision :data:`FUTURE`."""
    scripts = tmp_path / "newer_migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / f"{FUTURE}_future.py").write_text(
        FUTURE_REVISION.format(future=FUTURE, head=HEAD, oldest=oldest)
    )
    cfg = Config()
    cfg.set_main_option("script_location", str(scripts))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "head")
    assert current_revision(engine) == FUTURE


def test_a_station_keeps_working_on_a_schema_newer_software_made_compatibly(
    empty_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    migrate_with_newer_software(empty_engine, tmp_path, oldest=HEAD)
    with caplog.at_level("WARNING", logger="db.session"):
        assert init_db(empty_engine) is empty_engine
    assert current_revision(empty_engine) == FUTURE  # left as the newer station made it
    assert f"schema revision {FUTURE}, newer than this software's {HEAD}" in caplog.text
    repo = VerdictRepository(empty_engine, tmp_path / "home")
    repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
    first = make_record(1, decision=Decision.FLAG, p_correct=0.2)
    repo.log_verdict(first)
    repo.log_verdict(make_record(2, decision=Decision.FLAG, p_correct=0.3, recheck_of=first.idempotency_key))
    with empty_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, recheck_of_id, weighed_g FROM cups ORDER BY id")).all()
    assert [(r.recheck_of_id, r.weighed_g) for r in rows] == [(None, None), (rows[0].id, None)]
    assert [(item.cup_id, item.recheck_of) for item in repo.review_queue()] == [(rows[1].id, rows[0].id)]


def test_a_station_refuses_a_schema_its_software_cannot_use(empty_engine: Engine, tmp_path: Path) -> None:
    migrate_with_newer_software(empty_engine, tmp_path, oldest=FUTURE)
    with pytest.raises(
        SchemaTooNewError,
        match=rf"revision {FUTURE}, newer than this software's {HEAD}, and needs "
        rf"software that knows revision {FUTURE}: upgrade cupcheck",
    ):
        init_db(empty_engine)
    with empty_engine.begin() as conn:  # a revision that does not say who may use it
        conn.execute(text(f"DELETE FROM schema_compat WHERE revision = '{FUTURE}'"))
    with pytest.raises(SchemaTooNewError, match="needs newer software"):
        init_db(empty_engine)
    assert current_revision(empty_engine) == FUTURE


def test_the_revision_template_records_the_oldest_reader() -> None:
    template = (MIGRATIONS_DIR / "script.py.mako").read_text()
    assert "record_oldest_reader(revision, OLDEST_READER)" in template
    assert "forget_revision(revision)" in template
    assert "OLDEST_READER = revision" in template  # safe unless the author says the change is additive
