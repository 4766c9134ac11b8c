"""``cupcheck models promote|rollback`` in a home with no registry (a mistyped --home) is refused before the
registry's lock is taken, and makes no ``models/`` folder there."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli import main

REFUSALS = [
    (["rollback"], "nothing to roll back to: no model was ever put in force here"),
    (["promote", "shipped"], "shipped is already in force"),
    (["promote", "verdict-0000"], "model version 'verdict-0000' is not registered"),
]


@pytest.mark.parametrize(("action", "why"), REFUSALS, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_a_home_with_no_registry_is_refused_and_nothing_is_made_there(
    action: list[str], why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "x" / "no-such-home"
    assert main(["models", "--home", str(home), *action]) == 2
    err = capsys.readouterr().err
    assert f"{why} (no model registry at {home / 'models' / 'registry.json'}: is --home" in err
    assert "nothing was written" in err
    assert not (home / "models").exists()  # no lock, no registry folder (the home itself: station.home's doing)


def test_a_station_home_with_no_registry_yet_lists_and_prunes_without_making_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert main(["models", "--home", str(home), "list"]) == 0
    assert main(["models", "--home", str(home), "prune"]) == 0
    assert "removed 0 version folders" in capsys.readouterr().out
    assert list(home.iterdir()) == []
