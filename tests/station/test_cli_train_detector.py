"""``cupcheck train detector``: resuming after one part finished, packaging with the settings the weights were
trained with, and clear errors for checkpoints that are not ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from station.cli import main
from tests.models.train.synth_sets import write_detector_set

SEG = ["--seg-epochs", "1", "--seg-size", "32"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small cups of four types (two in the val split)."""
    return write_detector_set(tmp_path_factory.mktemp("det_cli") / "synth")


@pytest.fixture(scope="module")
def yolo_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose YOLO part finished (one epoch at imgsz 64), its segmenter never started."""
    out = tmp_path_factory.mktemp("det_cli_run") / "run"
    args = ["--data", str(data), "--out", str(out), "--part", "yolo", "--epochs", "1", "--imgsz", "64", "--batch", "4"]
    assert main(["train", "detector", *args]) == 0
    return out


def _sidecar(out: Path) -> dict:
    return json.loads((out / "detector" / "detector.json").read_text())


@pytest.mark.slow
def test_resume_after_the_yolo_part_finished_trains_the_segmenter_and_keeps_yolo(
    data: Path, yolo_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The segmenter was killed before its first epoch: --resume leaves the finished YOLO run alone (ultralytics
    would start a new one on coco8) and trains the segmenter, then packages at the size YOLO was trained at."""
    out = tmp_path / "run"
    shutil.copytree(yolo_run, out)
    results = (out / "yolo" / "results.csv").read_text()
    last = (out / "yolo" / "weights" / "last.pt").read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "detector", "--data", str(data), "--out", str(out), "--resume", *SEG]) == 0
    assert (out / "yolo" / "results.csv").read_text() == results
    assert (out / "yolo" / "weights" / "last.pt").read_bytes() == last
    assert (out / "segmenter" / "best.pt").is_file() and not (tmp_path / "runs").exists()
    sidecar = _sidecar(out)
    assert sidecar["imgsz"] == 64 and sidecar["extra"]["epochs"] == 1 and sidecar["extra"]["seg_epochs"] == 1


@pytest.mark.slow
def test_package_records_the_settings_the_weights_were_trained_with(
    data: Path, yolo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not the command's defaults (imgsz 256, 30 and 8 epochs); a flag that says otherwise is refused."""
    out = tmp_path / "run"
    shutil.copytree(yolo_run, out)
    base = ["train", "detector", "--data", str(data), "--out", str(out)]
    assert main([*base, "--part", "segmenter", "--seg-epochs", "2", "--seg-size", "32"]) == 0
    assert main([*base, "--part", "package"]) == 0
    sidecar = _sidecar(out)
    assert sidecar["imgsz"] == 64 and sidecar["extra"]["epochs"] == 1 and sidecar["extra"]["seg_epochs"] == 2
    capsys.readouterr()
    assert main([*base, "--part", "package", "--imgsz", "256"]) == 2
    assert "--imgsz 256 conflicts with the weights in" in capsys.readouterr().err
    assert main([*base, "--resume", "--imgsz", "128"]) == 2
    assert "its YOLO part was trained at imgsz 64" in capsys.readouterr().err
    assert main([*base, "--part", "package", "--seg-epochs", "8"]) == 2
    assert "its segmenter was set to 2 epochs" in capsys.readouterr().err
    assert _sidecar(out) == sidecar


@pytest.mark.parametrize("flag", ["--init", "--seg-init"])
def test_an_init_that_is_not_a_checkpoint_is_refused_in_a_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    init = tmp_path / "notckpt.pt"
    init.write_text("hello\n")
    part = "yolo" if flag == "--init" else "segmenter"
    args = ["--data", str(data), "--out", str(tmp_path / "run"), "--part", part, flag, str(init), *SEG]
    assert main(["train", "detector", *args]) == 2
    assert f"{init} is not a readable torch checkpoint" in capsys.readouterr().err
