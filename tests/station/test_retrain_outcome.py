"""What a nightly retrain leaves when it does not end as planned: a version put in force by a person while it ran
keeps its candidate a candidate, and its report says so under the gate's PROMOTE; the copies of a version a killed
run left in the registry are removed when the next retrain starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.registry import BLOBS_DIR, SHIPPED, load_registry, promote, registry_root
from station.cli import main
from station.retrain_job import CANDIDATE_PREFIX, EXIT_PROMOTED, EXIT_REJECTED
from tests.models.test_retrain_degraded import Station, _station
from tests.station.test_retrain_promotion import GOOD


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    """The station, built once: each test retrains a copy of its home."""
    return _station(tmp_path_factory.mktemp("station"))


@pytest.fixture
def home(station: Station, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(station.home, home)
    return home


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
