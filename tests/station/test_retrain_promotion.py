"""A candidate the nightly retrain's gate passes is recorded and put in force together: a report folder that cannot
be written stops the night before anything is recorded, and a retrain killed once its candidate is in the registry
has put it in force. Either way the next night is right about what is left to do. A version put in force by a person
while a retrain ran keeps its candidate a candidate, and the report says so under the gate's PROMOTE; the copies of a
version a killed run left in the registry are removed when the next retrain starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db.repository import VerdictRepository
from models.registry import BLOBS_DIR, SHIPPED, load_registry, promote, registry_file, registry_root
from station.cli import main
from station.retrain_job import CANDIDATE_PREFIX, EXIT_NOTHING_TO_DO, EXIT_PROMOTED, EXIT_REJECTED
from tests.db.factories import SUPERVISOR
from tests.models.test_retrain_degraded import Station, _station

GOOD = ["--quiet", "--no-embedder", "--target", "0.95", "--delta", "0.2", "--rounds", "20"]
"""The retrain whose candidate passes the gate at the degraded-candidate world's station (its labels unshuffled)."""


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    """The station, built once: each test retrains a copy of its home (the bundle's embedder stays beside it)."""
    return _station(tmp_path_factory.mktemp("station"))


@pytest.fixture
def home(station: Station, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(station.home, home)
    return home


def test_a_report_folder_that_cannot_be_written_leaves_nothing_recorded(
    home: Path, station: Station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recorded with its label mark before the report failed, the candidate was never put in force, and the next
    night said "nothing to do"."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    before = registry_file(home).read_bytes()
    assert main(["retrain", "--home", str(home), *GOOD, "--report", str(blocked)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the retrain report in {blocked} (File exists: {blocked})" in err
    assert "nothing was recorded or promoted" in err
    assert registry_file(home).read_bytes() == before  # no entry, no label mark, nothing in force
    last = (home / "models" / "retrain.log").read_text().splitlines()[-1]
    assert "retrain stopped (exit status 2): cannot write the retrain report" in last

    assert main(["retrain", "--home", str(home), *GOOD]) == EXIT_PROMOTED  # the same labels, learnt again
    reg = load_registry(home)
    assert reg.current is not None and reg.current != station.version
    assert reg.get(reg.current).status == "promoted" and reg.get(reg.current).labels_until is not None


def _versions(home: Path) -> int:
    try:
        return len(load_registry(home).versions)
    except ValueError:  # never half a file (it is replaced whole), but a read may race the rename on some systems
        return 0


def test_a_retrain_killed_once_its_candidate_is_recorded_has_put_it_in_force(home: Path, station: Station) -> None:
    """kill -9 as soon as ``registry.json`` names the candidate: it is in force already, so the next night's
    "nothing to do" is true (recorded apart from the promotion, it stayed a candidate whose labels counted as
    learnt)."""
    cmd = [sys.executable, "-m", "station.cli", "retrain", "--home", str(home), *GOOD]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        while proc.poll() is None and _versions(home) < 2:
            time.sleep(0.002)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -9, "the retrain ended before the test saw its candidate recorded"
    reg = load_registry(home)
    (candidate,) = [e for e in reg.versions if e.version != station.version]
    assert reg.current == candidate.version and candidate.status == "promoted"
    assert reg.history[-1].previous == station.version and reg.history[-1].version == candidate.version
    assert candidate.labels_until is not None

    assert main(["retrain", "--home", str(home), *GOOD]) == EXIT_NOTHING_TO_DO
    assert load_registry(home).current == candidate.version != SHIPPED


def test_a_ruling_withdrawn_after_the_last_retrain_is_work_for_the_next(home: Path) -> None:
    """The model in force learnt a cup's ruling that the supervisor then took back (R in the review window): the next
    night retrains without it instead of saying "nothing to do", and the night after has nothing left."""
    assert main(["retrain", "--home", str(home), *GOOD]) == EXIT_PROMOTED
    assert main(["retrain", "--home", str(home), *GOOD]) == EXIT_NOTHING_TO_DO
    repo = VerdictRepository.open(home)
    try:
        cup = repo.training_export().cups[0].cup_id
        repo.withdraw_ruling(SUPERVISOR, cup, note="ruled the wrong cup")
    finally:
        repo.engine.dispose()
    assert main(["retrain", "--home", str(home), *GOOD]) != EXIT_NOTHING_TO_DO
    log = (home / "models" / "retrain.log").read_text()
    assert "1 of them withdrawn rulings" in log
    assert main(["retrain", "--home", str(home), *GOOD]) == EXIT_NOTHING_TO_DO


def test_a_version_put_in_force_while_the_retrain_ran_is_named_in_its_report(home: Path, station: Station) -> None:
    """``models promote shipped`` while the candidate is trained: the retrain exits 4, its candidate stays one, and
    report.md says under "Gate: PROMOTE" that it was not promoted, and why."""
    cmd = [sys.executable, "-m", "station.cli", "retrain", "--home", str(home), *GOOD]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        root = registry_root(home)
        while proc.poll() is None and not any(root.glob(f"{CANDIDATE_PREFIX}*")):
            time.sleep(0.002)
        promote(home, SHIPPED)  # a supervisor puts the shipped bundle back while the candidate is trained
        assert proc.wait(timeout=300) == EXIT_REJECTED
    finally:
        if proc.poll() is None:
            proc.kill()
    reg = load_registry(home)
    assert reg.current is None
    (candidate,) = [e for e in reg.versions if e.version != station.version]
    assert candidate.status == "candidate"
    lines = (registry_root(home) / "reports" / candidate.version / "report.md").read_text().splitlines()
    gate = lines.index("**Gate: PROMOTE**")
    assert lines[gate + 2] == (
        f"**Not promoted:** {SHIPPED} was put in force while this retrain compared {candidate.version} with "
        f"{station.version}; {candidate.version} stays a candidate (cupcheck models promote {candidate.version} "
        "after a look)"
    )


def test_the_next_retrain_removes_the_copies_a_killed_one_left_in_the_registry(home: Path) -> None:
    """A retrain killed while it copied its candidate into the registry left ``.verdict-<v>.<random>`` (before
    ``.staging-``), holding links to stored files that prune then removed, so their space was never freed."""
    root = registry_root(home)
    blob = next(p for p in (root / BLOBS_DIR).iterdir() if p.is_file())
    left = [root / ".verdict-8ff735fc.cnsmyb7h", root / ".staging-verdict-8ff735fc.x1y2z3w4"]
    for folder in left:
        folder.mkdir()
        os.link(blob, folder / "calibration.npz")
    assert main(["retrain", "--home", str(home), *GOOD]) == EXIT_PROMOTED
    assert [f for f in left if f.exists()] == []
