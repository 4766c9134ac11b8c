"""Detector evaluation: a detector packaged by ``cupcheck train detector`` records its training data as a folder, and
a test set that is that folder, or was rendered with its mint seed, is not called held out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.detector import DEFAULT_DIR, SIDECAR, DetectorSettings
from models.eval_detect import held_out, training_data_folder
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.train.detector import SEGMENTER_FILE, YOLO_FILE, package_detector


def _packaged(out: Path, data: Path) -> DetectorSettings:
    """The shipped weights packaged as ``cupcheck train detector --data DATA --seed 0`` packages its own."""
    extra = {"data": str(data), "seed": 0, "epochs": 1, "seg_epochs": 1}
    sidecar = package_detector(DEFAULT_DIR / YOLO_FILE, DEFAULT_DIR / SEGMENTER_FILE, out, imgsz=320, extra=extra)
    return DetectorSettings.from_dict(json.loads(sidecar.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two one-cup sets: mint seed 4242 (the training data) and 4343."""
    root = tmp_path_factory.mktemp("sets")
    scene = SceneOptions(image_size=128, max_coins=3, real_fraction=0.0)
    for seed in (4242, 4343):
        write_dataset(SynthConfig(n_types=3, n_cups=1, seed=seed, scene=scene), root / f"s{seed}", progress=False)
    return root


def test_the_training_data_folder_itself_is_not_held_out(sets: Path, tmp_path: Path) -> None:
    """The check read only ``cupcheck synth … --seed N`` text, and said of the training set itself that it "could not
    be checked"."""
    train = sets / "s4242"
    settings = _packaged(tmp_path / "detector", train)
    assert training_data_folder(settings) == train
    same = held_out(settings, train)
    assert not same.held_out
    assert f"{train} is the data set the detector {settings.version} was trained on" in same.line
    copy = tmp_path / "copy"  # the same cups elsewhere: told by the recorded folder's mint seed
    shutil.copytree(train, copy)
    copied = held_out(settings, copy)
    assert not copied.held_out and "mint seed 4242, one the detector" in copied.line
    assert f"its training data {train} was rendered with it too" in copied.line
    fresh = held_out(settings, sets / "s4343")
    assert fresh.held_out and fresh.line.startswith("Held out:") and "(4242)" in fresh.line


def test_a_training_folder_that_is_not_here_is_named_as_what_could_not_be_checked(sets: Path, tmp_path: Path) -> None:
    settings = _packaged(tmp_path / "detector", tmp_path / "gone")
    unknown = held_out(settings, sets / "s4343")
    assert not unknown.held_out and "could not be checked" in unknown.line
    assert f"its training data {tmp_path / 'gone'} is not here to read one from" in unknown.line


def test_the_shipped_detectors_free_text_is_no_folder() -> None:
    settings = DetectorSettings.from_dict(json.loads((DEFAULT_DIR / SIDECAR).read_text(encoding="utf-8")))
    assert training_data_folder(settings) is None
