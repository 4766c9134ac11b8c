"""A database URL naming a driver cupcheck does not install is refused in one line that names the URL to use."""

from __future__ import annotations

import importlib.util

import pytest
from sqlalchemy.exc import ArgumentError

from db.session import make_engine
from station.cli import main

ELSEWHERE = "postgresql+psycopg2://postgres:secret@127.0.0.1:1/site1"


@pytest.mark.skipif(importlib.util.find_spec("psycopg2") is not None, reason="psycopg2 is installed here")
def test_a_driver_that_is_not_installed_is_named_with_the_url_to_use(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        ArgumentError,
        match=r"^the driver psycopg2 is not installed: use postgresql\+psycopg://postgres:\*\*\*@127.0.0.1:1/site1$",
    ):
        make_engine(ELSEWHERE)
    for command in (["operators", "--db", ELSEWHERE, "list"], ["review", "--db", ELSEWHERE]):
        assert main(command) == 2  # before: a traceback ending in ModuleNotFoundError
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"cupcheck {command[0]}: error: the database cannot be used: the driver psycopg2 is not installed: "
            "use postgresql+psycopg://postgres:***@127.0.0.1:1/site1"
        ]
