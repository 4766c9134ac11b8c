"""Database URLs as the commands meet them: a port that is not a number, a password to keep off the screen, a
relative SQLite file in a station file; and the schema a read-only command finds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import ArgumentError

from db.backup import sqlite_file
from db.session import (
    anchored_url,
    init_db,
    make_engine,
    masked_url,
    parse_url,
    schema_behind,
    schema_revisions,
    schema_state,
    upgrade,
)

BAD_PORT = "postgresql+psycopg://cupcheck:S3cretPw@dbhost:543l/site"


@pytest.mark.parametrize(
    "read",
    [parse_url, make_engine, lambda url: sqlite_file(url, Path("."))],
    ids=["parse_url", "make_engine", "sqlite_file"],
)
def test_a_port_that_is_not_a_number_is_an_argument_error_naming_it(read: object) -> None:
    assert callable(read)
    with pytest.raises(ArgumentError) as caught:
        read(BAD_PORT)
    message = str(caught.value)
    assert message.startswith("the database URL's port '543l' is not a number")
    assert "S3cretPw" not in message


def test_a_url_that_does_not_parse_still_has_its_password_masked() -> None:
    assert masked_url(BAD_PORT) == "postgresql+psycopg://cupcheck:***@dbhost:543l/site"
    assert (
        masked_url("postgresql+psycopg://cupcheck:S3cretPw@dbhost/site")
        == "postgresql+psycopg://cupcheck:***@dbhost/site"
    )
    assert masked_url("sqlite:///srv/cupcheck.db") == "sqlite:///srv/cupcheck.db"


def test_a_relative_sqlite_file_is_taken_from_the_folder_given(tmp_path: Path) -> None:
    assert anchored_url("sqlite:///log/cupcheck.db", tmp_path) == f"sqlite:///{tmp_path}/log/cupcheck.db"
    assert anchored_url(f"sqlite:///{tmp_path}/a.db", Path("/elsewhere")) == f"sqlite:///{tmp_path}/a.db"
    assert anchored_url("sqlite://", tmp_path) == "sqlite://"
    assert anchored_url(BAD_PORT, tmp_path) == BAD_PORT


def test_a_database_older_than_the_software_is_named_with_how_to_upgrade_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    try:
        assert schema_behind(engine).endswith(
            "holds no cupcheck schema (never set up): start an upgraded station on "
            "it, or run `cupcheck init-site --config FILE` to upgrade it"
        )
        upgrade(engine, "0004")
        head = schema_revisions(engine)[0]
        assert schema_behind(engine) == (
            f"the database {url} is at schema 0004, older than this software's {head}; start an upgraded station on "
            "it, or run `cupcheck init-site --config FILE` to upgrade it"
        )
        assert schema_state(engine) == f"{url} at revision 0004, older than this software's {head} (not yet upgraded)"
        init_db(engine)
        assert schema_behind(engine) == ""
        assert schema_state(engine) == f"{url} at this software's schema"
    finally:
        engine.dispose()
