"""The commands that reach a site's database, given one they cannot use: a URL whose port is not a number (one line
and exit status 2, never a traceback or the password), and a database older than the software (``report`` and
``order`` only read it, so they say how to upgrade it instead of naming a missing column)."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.repository import VerdictRepository
from db.session import default_sqlite_url, make_engine, schema_revisions, upgrade
from station.cli import main

BAD_PORT = "postgresql+psycopg://cupcheck:S3cretPw@dbhost:543l/site"


def _backup_of_a_station(tmp_path: Path) -> Path:
    """A whole backup of a station home with an empty verdict log (``restore`` checks it before the database)."""
    home = tmp_path / "station"
    home.mkdir()
    VerdictRepository.open(home).engine.dispose()
    assert main(["backup", "--home", str(home), "--out", str(tmp_path / "backup")]) == 0
    return tmp_path / "backup"


@pytest.mark.parametrize("command", ["backup", "report", "order", "restore"])
def test_a_port_that_is_not_a_number_is_one_line_and_exit_status_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = {
        "backup": ["backup", "--out", str(tmp_path / "out")],
        "report": ["report", "--out", str(tmp_path / "out")],
        "order": ["order", "A-1001"],
        "restore": ["restore", str(_backup_of_a_station(tmp_path)) if command == "restore" else ""],
    }[command]
    capsys.readouterr()
    assert main([*args, "--home", str(tmp_path / "home"), "--db", BAD_PORT]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"cupcheck {command}: error: the database cannot be used: the database URL's port '543l' is not a number: "
        "write it as digits (postgresql+psycopg://USER@HOST:5432/DB), or leave it out for the default 5432\n"
    )


@pytest.mark.parametrize("command", ["report", "order"])
def test_a_database_older_than_the_software_says_how_to_upgrade_it(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = default_sqlite_url(home)
    engine = make_engine(url)
    upgrade(engine, "0004")  # as the software before this one left it
    head = schema_revisions(engine)[0]
    engine.dispose()
    args = ["report", "--out", str(tmp_path / "out")] if command == "report" else ["order", "A-1001"]
    assert main([*args, "--home", str(home)]) == 2
    assert capsys.readouterr().err == (
        f"cupcheck {command}: error: the database {url} is at schema 0004, older than this software's {head}; "
        "start an upgraded station on it, or run `cupcheck init-site --config FILE` to upgrade it\n"
    )
