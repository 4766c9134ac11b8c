"""db.health on real SQLite and real PostgreSQL: an empty database, a set-up one with its people, a newer schema,
and one that cannot be reached."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from db.health import database_health
from db.session import make_engine
from tests.db.test_migrations import FUTURE, HEAD, migrate_with_newer_software


def test_an_empty_database_has_no_revision(empty_db_url: str, tmp_path: Path) -> None:
    health = database_health(empty_db_url, tmp_path)
    assert (health.error, health.revision, health.head, health.people) == ("", None, HEAD, 0)


def test_a_set_up_database_names_its_revision_and_people(db_url: str, tmp_path: Path) -> None:
    health = database_health(db_url, tmp_path)
    assert (health.revision, health.newer, health.usable) == (HEAD, False, True)
    assert (health.people, health.supervisors) == (2, 1)  # the seeded operator and supervisor
    assert "password" not in health.where
    if db_url.startswith("postgresql"):  # what cupcheck doctor compares the installed pg_dump with
        assert health.server_version[0] == 18
    else:
        assert health.server_version == ()


@pytest.mark.parametrize("oldest", [HEAD, FUTURE])
def test_a_newer_schema_is_usable_only_when_it_says_so(empty_db_url: str, tmp_path: Path, oldest: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        migrate_with_newer_software(engine, tmp_path, oldest=oldest)
    finally:
        engine.dispose()
    health = database_health(empty_db_url, tmp_path)
    assert (health.revision, health.newer, health.usable) == (FUTURE, True, oldest == HEAD)


def test_an_unreachable_database_says_so(tmp_path: Path) -> None:
    health = database_health("postgresql+psycopg://cupcheck@127.0.0.1:9/cupcheck", tmp_path)
    assert health.error.startswith("postgresql+psycopg://cupcheck@127.0.0.1:9/cupcheck cannot be reached:")
    assert database_health("nonsense://", tmp_path).error.startswith("the database URL cannot be used")


def test_a_missing_sqlite_file_is_empty_and_not_made(tmp_path: Path) -> None:
    health = database_health(None, tmp_path)
    assert (health.error, health.revision, health.head, health.people) == ("", None, HEAD, 0)
    assert not (tmp_path / "cupcheck.db").exists()


def test_a_sqlite_file_is_only_read(sqlite_template: Path, tmp_path: Path) -> None:
    folder = tmp_path / "db"  # a SQLite file's own check: its folder, apart from the home, is watched for writes
    folder.mkdir()
    shutil.copyfile(sqlite_template, folder / "cupcheck.db")
    before = {p.name: p.stat().st_mtime_ns for p in (folder, *folder.iterdir())}
    assert database_health(f"sqlite:///{folder / 'cupcheck.db'}", tmp_path).people == 2
    assert {
        p.name: p.stat().st_mtime_ns for p in (folder, *folder.iterdir())
    } == before  # nothing made, nothing written
