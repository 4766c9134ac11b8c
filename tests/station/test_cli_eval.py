"""``cupcheck eval detect|embed``: arguments checked before any work, and a test set the detector was trained on
named as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from station.cli import main


def test_eval_detect_refuses_sizes_yolo_would_round_and_max_cups_below_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "r")
    assert main(["eval", "detect", "--out", out, "--sizes", "320", "300"]) == 2
    assert "--sizes: input size 300 is not a positive multiple of 32 (YOLO's stride): give 288 or 320" in (
        capsys.readouterr().err
    )
    assert main(["eval", "detect", "--out", out, "--max-cups", "0"]) == 2
    assert "--max-cups must be >= 1, got 0" in capsys.readouterr().err


def test_eval_detect_warns_of_a_set_rendered_with_a_training_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "s24"
    scene = SceneOptions(max_coins=3, real_fraction=0.0)
    write_dataset(SynthConfig(n_types=3, n_cups=1, seed=24, scene=scene), data, progress=False)
    assert main(["eval", "detect", "--data", str(data), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert f"warning: {data} was rendered with mint seed 24, one the detector" in err
    report = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "its cups are not held out" in report and "Held out:" not in report


def test_eval_embed_refuses_gallery_sizes_below_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "embed", "--out", str(tmp_path / "r"), "--search-sizes=-5"]) == 2
    assert "--search-sizes: give gallery sizes of at least 1, got -5" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
