"""station.cli.main: what a person sees when the environment refuses, instead of a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli import main


def test_a_home_that_is_a_file_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder")
    assert main(["operators", "--home", str(home), "list"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"cupcheck operators: error: the station home is a file, not a folder: {home}"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("garbage://", "'garbage' is not a database cupcheck runs on: SQLite"),
        ("mysql://u@h/db", "'mysql' is not a database cupcheck runs on"),  # no driver installed: was a traceback
        ("notaurl", "Could not parse SQLAlchemy URL"),
    ],
)
def test_a_database_url_that_cannot_be_used_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    assert main(["operators", "--home", str(tmp_path), "--db", url, "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cupcheck operators: error: the database cannot be used: ") and said in err
    assert "Traceback" not in err


def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["mat", "--out", str(blocker / "mat.png")]) == 2  # a file where a folder should be
    err = capsys.readouterr().err
    assert err.startswith("cupcheck mat: error: ") and str(blocker) in err and "Traceback" not in err


def test_a_fault_of_our_own_still_shows_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*_: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr("station.commands.operators.run", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["operators", "--home", str(tmp_path), "list"])
