"""``cupcheck train voter``: a bundle trained end to end on tiny data sets, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.bundle import MIN_COINS, load_bundle
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.train.voter import ENROL_DIR
from models.types import CupKind
from station.cli import main
from tests.models.embed_helpers import write_tiny_checkpoint

SCENE = SceneOptions(
    image_size=256,
    max_coins=5,
    reverse_share=1.0,
    kind_weights={CupKind.PURE: 2.0, CupKind.CONTAMINATED: 1.0, CupKind.EMPTY: 0.3},
)


def _data_set(out: Path, seed: int, n_cups: int) -> Path:
    write_dataset(SynthConfig(n_types=6, n_cups=n_cups, seed=seed, scene=SCENE, crop_size=64, val_fraction=0.3), out)
    enrol = SceneOptions(image_size=256, max_coins=4, kind_weights={CupKind.PURE: 1.0})
    photos = SynthConfig(n_types=6, n_cups=16, seed=seed, scene=enrol, crop_size=64, first_index=1000)
    write_dataset(photos, out / ENROL_DIR)
    return out


def test_train_voter_records_the_enrolment_size_it_trained_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, cal = _data_set(tmp_path / "train", 3, 40), _data_set(tmp_path / "cal", 5, 24)
    cache = tmp_path / "cache"
    args = ["train", "voter", "--data", str(train), "--data-cal", str(cal), "--out", str(tmp_path / "bundle")]
    args += ["--cache", str(cache), "--embedder", str(write_tiny_checkpoint(tmp_path / "embedder.pt"))]
    assert main([*args, "--instances", "gt", "--enrol-per-side", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    bundle = load_bundle(tmp_path / "bundle" / "verdict.json")
    assert bundle.enrol_per_side == summary["enrol_per_side"] == 2
    assert bundle.pass_min_coins == MIN_COINS == 2  # the default rule: a single coin never passes
    assert bundle.cal_scores.size == summary["cal_pairs"] > 0
    # both data sets' galleries were enrolled with two photos a side
    assert sorted(p.name.split("-")[1:3] for p in cache.glob("gallery-*")) == [["cal", "enrol2"], ["train", "enrol2"]]


@pytest.mark.parametrize(
    ("command", "option", "bad"),
    [
        ("voter", "--enrol-per-side", "0"),
        ("voter", "--enrol-per-side", "-3"),
        ("voter", "--min-coins", "0"),
        ("recalibrate", "--min-coins", "0"),
    ],
)
def test_train_voter_and_recalibrate_refuse_bad_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str, bad: str
) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    data = "--data" if command == "voter" else "--data-cal"
    status = main(["train", command, data, str(tmp_path), "--out", str(tmp_path / "o"), option, bad])
    assert status == 2
    assert f"{option} must be >= 1, got {bad}" in capsys.readouterr().err
