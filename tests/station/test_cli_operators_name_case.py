"""``cupcheck operators`` given a registered name under another case: it names the registered spelling, exits 2 and
changes nothing (the history names people exactly, so it does not act on the other spelling)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from station.cli import main


def test_a_name_in_another_case_is_answered_with_the_registered_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = ["operators", "--home", str(tmp_path / "home")]
    monkeypatch.setattr("sys.stdin", io.StringIO("2468\n"))
    assert main([*home, "add", "Ana", "--role", "supervisor", "--pin-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("1357\n"))
    assert main([*home, "add", "olga", "--pin-stdin"]) == 0
    capsys.readouterr()

    for command in (["deactivate", "ANA"], ["role", "ana", "operator"], ["history", "aNA"]):
        assert main([*home, *command]) == 2
        assert f"operator {command[1]!r} is not registered; did you mean 'Ana'?" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("9999\n"))
    assert main([*home, "set-pin", "OLGA", "--pin-stdin"]) == 2
    assert "operator 'OLGA' is not registered; did you mean 'olga'?" in capsys.readouterr().err

    assert main([*home, "history", "--json"]) == 0
    assert [h["action"] for h in json.loads(capsys.readouterr().out)["history"]] == ["added", "added"]
