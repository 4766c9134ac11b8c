"""``cupcheck train recalibrate``: a new bundle certified on today's cuts, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.bundle import load_bundle
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.train.galleries import ENROL_DIR
from models.types import CupKind
from station.cli import main
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import write_bundle

SCENE = SceneOptions(image_size=256, max_coins=6, kind_weights={CupKind.PURE: 1.0})


def test_recalibrate_writes_a_new_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cal = tmp_path / "cal"
    write_dataset(SynthConfig(n_types=4, n_cups=6, seed=6, scene=SCENE, crop_size=64), cal, progress=False)
    enrol = SynthConfig(n_types=4, n_cups=8, seed=6, scene=SCENE, crop_size=64, first_index=1000)
    write_dataset(enrol, cal / ENROL_DIR, progress=False)
    old, _ = write_bundle(tmp_path / "old", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    args = ["train", "recalibrate", "--data-cal", str(cal), "--bundle", str(old), "--cache", str(tmp_path / "c")]
    args += ["--cut-workers", "2"]  # the calibration cups cut in two processes
    assert main([*args, "--out", str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    new = load_bundle(tmp_path / "new" / "verdict.json")
    assert f"{load_bundle(old).version} -> {new.version}" in out
    assert "threshold" in out.lower()


def test_recalibrate_refuses_what_is_not_a_data_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["train", "recalibrate", "--data-cal", str(tmp_path), "--out", str(tmp_path / "new")])
    assert status == 2
    assert "is not a synthetic data set (manifest.json missing)" in capsys.readouterr().err


def test_recalibrate_refuses_no_cutting_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_dataset(SynthConfig(n_types=4, n_cups=1, seed=6, scene=SCENE, crop_size=64), tmp_path, progress=False)
    status = main(
        ["train", "recalibrate", "--data-cal", str(tmp_path), "--out", str(tmp_path / "new"), "--cut-workers", "0"]
    )
    assert status == 2
    assert "--cut-workers must be >= 1, got 0" in capsys.readouterr().err


def test_eval_verdict_cuts_in_processes_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = SceneOptions(image_size=256, max_coins=6, kind_weights={CupKind.PURE: 1.0, CupKind.CONTAMINATED: 1.0})
    sets = {}
    for name, seed, cups, val in (("train", 7, 16, 0.25), ("cal", 8, 8, 0.0), ("test", 9, 8, 0.0)):
        folder = sets[name] = tmp_path / name
        write_dataset(
            SynthConfig(n_types=4, n_cups=cups, seed=seed, scene=mixed, crop_size=64, val_fraction=val),
            folder,
            progress=False,
        )
        enrol = SynthConfig(n_types=4, n_cups=8, seed=seed, scene=SCENE, crop_size=64, first_index=1000)
        write_dataset(enrol, folder / ENROL_DIR, progress=False)
    bundle, _ = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    args = ["eval", "verdict", "--data", str(sets["test"]), "--out", str(tmp_path / "report"), "--bundle", str(bundle)]
    args += ["--data-train", str(sets["train"]), "--data-cal", str(sets["cal"]), "--cache", str(tmp_path / "c")]
    assert main([*args, "--cut-workers", "0"]) == 2
    assert "--cut-workers must be >= 1, got 0" in capsys.readouterr().err
    assert main([*args, "--turn-cups", "-1"]) == 2
    assert "--turn-cups must be >= 0, got -1" in capsys.readouterr().err
    assert main([*args, "--cut-workers", "2", "--turn-cups", "3"]) == 0
    out, err = capsys.readouterr()
    assert "test precision" in out and (tmp_path / "report" / "report.md").is_file()
    # the bundle predates the recorded rules: five photos a side, any cup with a coin may pass
    report = (tmp_path / "report" / "report.md").read_text()
    assert "gallery holds 5 enrolment photos a side; any cup with a coin may pass." in report
    # three fresh cups of the test mint checked as they lie and, where the FLAG names coins, after turning them
    assert "## Cups checked again after the operator turns the coins a FLAG names" in report
    assert "3 cups of the test mint drawn as its own (indices from 500000)" in report
    turning = json.loads((tmp_path / "report" / "results.json").read_text())["turning"]
    assert turning["cups"] == 3 == sum(k["cups"] for k in turning["kinds"].values())
    assert sorted(p.name.split("-")[2] for p in (tmp_path / "c").glob("gallery-*")) == ["enrol5"] * 3
    assert "cut test" in err and "cut cal" in err  # the bar of the parallel cutting, not the one-process one
    assert not list((tmp_path / "c").rglob("*.parts"))  # the parts were joined into one cache per data set
