"""``cupcheck operators``: register the first supervisor of a fresh station, PINs typed or piped, roles,
deactivation, the list and the history; a window nobody could sign in to is not opened."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from db.repository import VerdictRepository
from station.app import NobodyToSignIn, open_station, require_someone_to_sign_in
from station.cli import main
from station.config import StationConfig
from tests.db.factories import make_record


def _pipe(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_a_fresh_station_gets_its_first_supervisor_and_operators(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = ["operators", "--home", str(tmp_path / "home")]
    assert main([*home, "list"]) == 0
    assert "nobody is registered: add a supervisor first" in capsys.readouterr().out

    _pipe(monkeypatch, "2468\n")
    assert main([*home, "add", "ana", "--role", "supervisor", "--pin-stdin", "--note", "shift lead"]) == 0
    assert capsys.readouterr().out == "added ana (supervisor); they can sign in now\n"
    typed = iter(["1357", "1357"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert main([*home, "add", "olga"]) == 0
    capsys.readouterr()

    repo = VerdictRepository.open(tmp_path / "home")
    try:
        assert repo.verify_operator("ana", "2468") is not None
        assert repo.verify_operator("olga", "1357") is not None
        repo.log_verdict(make_record(1))  # checked by "olga"
    finally:
        repo.engine.dispose()
    assert main([*home, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["name", "role", "sign-in", "cups", "last"]
    assert lines[1].split()[:4] == ["ana", "supervisor", "active", "0"]
    assert lines[2].split()[:4] == ["olga", "operator", "active", "1"]

    assert main([*home, "deactivate", "ana"]) == 2
    assert "ana is the only active supervisor" in capsys.readouterr().err
    assert main([*home, "role", "olga", "supervisor"]) == 0
    assert capsys.readouterr().out == "olga is a supervisor\n"
    assert main([*home, "deactivate", "ana", "--note", "left"]) == 0
    assert capsys.readouterr().out == "ana can no longer sign in\n"
    _pipe(monkeypatch, "9999\n")
    assert main([*home, "set-pin", "ana", "--pin-stdin"]) == 0
    assert "(deactivated: cannot sign in until activated)" in capsys.readouterr().out

    assert main([*home, "history", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)["history"]
    assert [(h["operator"], h["action"], h["note"]) for h in history] == [
        ("ana", "added", "shift lead"),
        ("olga", "added", ""),
        ("olga", "role_changed", ""),
        ("ana", "deactivated", "left"),
        ("ana", "pin_changed", ""),
    ]
    assert main([*home, "history", "olga"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].endswith("olga: role operator -> supervisor  by " + history[2]["changed_by"])
    assert main([*home, "list", "--json"]) == 0
    people = {p["name"]: p for p in json.loads(capsys.readouterr().out)["operators"]}
    assert (people["ana"]["active"], people["olga"]["role"], people["olga"]["cups"]) == (False, "supervisor", 1)


def test_the_site_flags_may_follow_the_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _pipe(monkeypatch, "2468\n")
    assert main(["operators", "add", "ana", "--role", "supervisor", "--pin-stdin", "--home", str(tmp_path / "h")]) == 0
    capsys.readouterr()
    assert main(["operators", "--home", str(tmp_path / "empty"), "list", "--json", "--home", str(tmp_path / "h")]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)["operators"]] == ["ana"]


def test_bad_input_is_refused_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = ["operators", "--home", str(tmp_path / "home")]
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main([*home, "add", "ana"]) == 2  # no terminal, no --pin-stdin
    assert "give it on standard input with --pin-stdin" in capsys.readouterr().err
    _pipe(monkeypatch, "")
    assert main([*home, "add", "ana", "--pin-stdin"]) == 2
    assert "standard input holds no PIN" in capsys.readouterr().err
    _pipe(monkeypatch, b"\xff\xfe12\n".decode("utf-8", "surrogateescape"))  # as Python reads bytes not text
    assert main([*home, "add", "ana", "--pin-stdin"]) == 2
    assert "the PIN is not UTF-8 text" in capsys.readouterr().err
    _pipe(monkeypatch, "12\n")
    assert main([*home, "add", "ana", "--pin-stdin"]) == 2
    assert "a PIN needs at least 4 characters" in capsys.readouterr().err
    typed = iter(["1357", "1358"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert main([*home, "add", "ana"]) == 2
    assert "the two PINs differ: nothing was changed" in capsys.readouterr().err
    _pipe(monkeypatch, "1357\n")
    assert main([*home, "add", "ana", "--pin-stdin"]) == 0
    _pipe(monkeypatch, "1357\n")
    assert main([*home, "add", "Ana", "--pin-stdin"]) == 2
    assert "'ana' is already registered (names may not differ only in case: 'Ana')" in capsys.readouterr().err
    assert main([*home, "activate", "nobody"]) == 2
    assert "operator 'nobody' is not registered" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*home, "role", "ana", "admin"])
    capsys.readouterr()
    assert main([*home, "list"]) == 0
    assert "no active supervisor: nobody can review flagged cups" in capsys.readouterr().out


def test_no_window_opens_that_nobody_could_sign_in_to(tmp_path: Path, station_config: StationConfig) -> None:
    home = tmp_path / "home"
    home.mkdir()  # as resolve_home makes it
    with pytest.raises(NobodyToSignIn, match="no active operator or supervisor is registered in the database sqlite"):
        open_station(station_config, home)  # refused before the model is loaded
    repo = VerdictRepository.open(home)
    try:
        repo.add_operator("olga", "operator", "1357")
        require_someone_to_sign_in(repo, None)
        with pytest.raises(NobodyToSignIn, match="no active supervisor is registered"):
            require_someone_to_sign_in(repo, "supervisor")
        repo.add_operator("sam", "supervisor", "2468")
        require_someone_to_sign_in(repo, "supervisor")
    finally:
        repo.engine.dispose()


def test_the_station_command_says_how_to_register_someone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err
    assert "no active supervisor is registered" in err and "cupcheck operators add NAME --role supervisor" in err
