"""Test-wide settings: offscreen Qt, offline ultralytics, a temporary station home, the shared data folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.models.tray_world import TrayWorld

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("CUPCHECK_CACHE", tempfile.mkdtemp(prefix="cupcheck-test-cache-"))  # not the user's cache

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CUPCHECK_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(autouse=True)
def _temp_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own station home and ultralytics settings dir; nothing reads the user's real ones."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CUPCHECK_HOME", str(home))
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("yolo_cfg")))
    return home


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository; tests that need it skip with the reason when it is absent."""
    if not (SHARED / "data" / "real").is_dir():
        pytest.skip(f"real data folder {SHARED / 'data' / 'real'} is absent")
    return SHARED


@pytest.fixture(scope="session")
def real_data(shared_dir: Path) -> Path:
    """``../shared/data/real``."""
    return shared_dir / "data" / "real"


@pytest.fixture(scope="session")
def tray_world(tmp_path_factory: pytest.TempPathFactory) -> TrayWorld:
    """A gallery lacking one type of its mint, and tray photographs of that type (:mod:`tests.models.tray_world`);
    tests that enrol copy its gallery first."""
    from tests.models.tray_world import make_tray_world

    return make_tray_world(tmp_path_factory.mktemp("tray"))
