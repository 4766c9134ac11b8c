"""An image store that is not mounted stops the nightly retrain with an error (exit 2), never "nothing to do": every
labelled cup's coins would be unreadable, every cup left out, and cron would take the night for a quiet one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from db.repository import VerdictRepository
from db.schema import Role
from models.registry import registry_file
from station.cli import main
from station.retrain_job import EXIT_NOTHING_TO_DO, EXIT_REJECTED
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN
from tests.db.test_retrain_job import _home_with_tiny_model, _log_cups

RETRAIN = ["--quiet", "--no-embedder", "--target", "0.8", "--delta", "0.2", "--rounds", "20"]


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A station home (SQLite log, images in its own ``captures/``) with the tiny world's model in force and 40 cups
    a supervisor ruled on, each kept with its coins' crops (no embedding), built once; tests change a copy."""
    root = tmp_path_factory.mktemp("station")
    home = root / "home"
    home.mkdir()
    repo = VerdictRepository.open(home)
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        repo.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
        _log_cups(repo, _home_with_tiny_model(home, root), 40)
    finally:
        repo.engine.dispose()
    return home


@pytest.fixture
def home(station: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(station, home)
    return home


def _crops(home: Path) -> list[Path]:
    """The files of the labelled coins' crops in the home's store, in the order the log names them."""
    repo = VerdictRepository.open(home)
    try:
        refs = [c.crop_ref for c in repo.training_export().coins if c.crop_ref is not None]
        return [repo.store.path(ref) for ref in dict.fromkeys(refs)]
    finally:
        repo.engine.dispose()


def _stopped(home: Path, err: str, *needles: str) -> None:
    for needle in needles:
        assert needle in err
    assert "is the share mounted?" in err
    last = (home / "models" / "retrain.log").read_text().splitlines()[-1]
    assert "retrain stopped (exit status 2)" in last and "is the share mounted" in last


def test_a_store_that_is_not_there_or_lacks_its_captures_is_an_error(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = registry_file(home).read_bytes()
    gone = tmp_path / "nas"  # a store path that does not exist
    assert main(["retrain", "--home", str(home), "--store", str(gone), *RETRAIN]) == 2
    _stopped(home, capsys.readouterr().err, f"the image folder {gone} is not there")
    assert not gone.exists()

    mount = tmp_path / "mnt"  # a share that is not mounted: its mount point, an empty local folder
    mount.mkdir()
    assert main(["retrain", "--home", str(home), "--store", str(mount), *RETRAIN]) == 2
    _stopped(home, capsys.readouterr().err, f"the image folder {mount} has no captures/, yet the verdict log names")
    assert list(mount.iterdir()) == []
    assert registry_file(home).read_bytes() == before  # nothing learnt, no label mark set

    shutil.rmtree(home / "captures")  # the station's own store, gone
    assert main(["retrain", "--home", str(home), *RETRAIN]) == 2
    _stopped(home, capsys.readouterr().err, f"the image folder {home} has no captures/")


def test_a_store_that_holds_few_of_the_labelled_coins_images_is_an_error(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``captures/`` folder of the wrong share (or one left on the mount point by an earlier run) holds none of
    them: the cups are not left out one by one into "nothing to do"."""
    other = tmp_path / "other-share"
    (other / "captures").mkdir(parents=True)
    before = registry_file(home).read_bytes()
    assert main(["retrain", "--home", str(home), "--store", str(other), *RETRAIN]) == 2
    _stopped(home, capsys.readouterr().err, f"of the labelled coins are missing from the image folder {other}")
    assert registry_file(home).read_bytes() == before

    # the station's own store, most of its crops lost: stopped too; a few lost leave their cups out, and it goes on
    crops = _crops(home)
    for path in crops[: len(crops) * 3 // 4]:
        path.unlink()
    assert main(["retrain", "--home", str(home), "--dry-run", *RETRAIN]) == 2
    err = capsys.readouterr().err
    assert f"of the labelled coins are missing from the image folder {home}" in err
    assert registry_file(home).read_bytes() == before


def test_a_few_lost_images_leave_their_cups_out_and_the_night_goes_on(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _crops(home)[0].unlink()
    assert main(["retrain", "--home", str(home), "--dry-run", *RETRAIN]) in (EXIT_REJECTED, EXIT_NOTHING_TO_DO)
    assert "error" not in capsys.readouterr().err
    assert (
        "left out of the retrain: a coin of it can no longer be read" in (home / "models" / "retrain.log").read_text()
    )
