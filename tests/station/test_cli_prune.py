"""``cupcheck prune`` on a station home's real SQLite log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from db.repository import VerdictRepository
from db.schema import Role
from station.cli import main
from tests.db.factories import OPERATOR, OPERATOR_PIN, make_record


def test_prune_drops_old_passes_and_says_how_much(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = VerdictRepository.open(tmp_path)
    repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
    for seed in range(3):  # checked on 2026-01-01, long before "30 days ago"
        repo.log_verdict(make_record(seed))
    repo.engine.dispose()
    args = ["prune", "--older-than-days", "30", "--home", str(tmp_path), "--station", "station-1"]
    assert main([*args, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("station-1: would drop the images of 3 cups checked before ")
    assert main(args) == 0  # the files were written just now: they are left for an hour, their references go
    assert "dropped the images of 3 cups" in capsys.readouterr().out
    assert main(args) == 0
    assert "dropped the images of 0 cups" in capsys.readouterr().out
    store = tmp_path / "captures"
    files = [f for f in store.rglob("*") if f.is_file()]
    assert len(files) == 3 * 7  # a photograph, three crops and three masks each, young: still there
    for f in files:  # an hour later
        os.utime(f, (f.stat().st_mtime - 7200, f.stat().st_mtime - 7200))
    assert main(args) == 0
    assert "21 files no row names any more removed" in capsys.readouterr().out
    assert not [f for f in store.rglob("*") if f.is_file()]
    assert main(["prune", "--older-than-days", "0", "--home", str(tmp_path)]) == 2
    assert "--older-than-days must be positive" in capsys.readouterr().err
    assert main(["prune", "--older-than-days", "30", "--home", str(tmp_path), "--station", "station-9"]) == 2
    assert "no station named 'station-9'; the database knows: station-1" in capsys.readouterr().err


def test_a_shared_image_folder_is_not_pruned_through_a_stations_own_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cron line that forgot the site's database would sweep every other station's photographs away."""
    share = tmp_path / "share" / "captures"
    share.mkdir(parents=True)
    (share / "ab").mkdir()
    (share / "ab" / "cd.jpg").write_bytes(b"another station's photograph")
    args = ["prune", "--older-than-days", "30", "--home", str(tmp_path / "home"), "--store", str(tmp_path / "share")]
    assert main(args) == 2
    assert "is a site's shared folder, but no site database is given" in capsys.readouterr().err
    assert (share / "ab" / "cd.jpg").is_file()
