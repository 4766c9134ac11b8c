"""Calibration and test cups are kept off the voter's training mints: one seed is one mint whatever its number of
types, and a bundle whose training mints cannot be checked says so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from models.bundle import DATA_MINTS, load_bundle
from models.eval_verdict import BUNDLE_TRAIN, check_held_out
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.train.galleries import ENROL_DIR
from models.train.voter import UNCHECKED_MINTS, mint_identity, recalibrate, recorded_training_mints
from models.types import CupKind
from station.cli import main
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import write_bundle

SCENE = SceneOptions(image_size=256, max_coins=5, reverse_share=1.0, kind_weights={CupKind.PURE: 1.0})


def _set(out: Path, seed: int, types: int, cups: int = 2, enrol: bool = False) -> Path:
    write_dataset(SynthConfig(n_types=types, n_cups=cups, seed=seed, scene=SCENE, crop_size=64), out, progress=False)
    if enrol:
        photos = SynthConfig(n_types=types, n_cups=8, seed=seed, scene=SCENE, crop_size=64, first_index=1000)
        write_dataset(photos, out / ENROL_DIR, progress=False)
    return out


def test_train_voter_refuses_calibration_cups_of_the_training_seed_drawn_with_another_number_of_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--data train`` (seed 3, 8 types) with ``--data-cal cal`` (seed 3, 9 types): eight types in common."""
    train, cal = _set(tmp_path / "train", 3, 8), _set(tmp_path / "cal", 3, 9)
    args = ["train", "voter", "--data", str(train), "--data-cal", str(cal), "--out", str(tmp_path / "bundle")]
    assert main([*args, "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert f"the calibration data {cal} was rendered from the same mint as the training data {train}" in err
    assert "(seed 3, 9 and 8 types)" in err and "whatever --types says" in err
    assert not (tmp_path / "bundle").exists() and not (tmp_path / "cache").exists()  # refused before any work


def test_eval_verdict_refuses_a_test_set_of_the_calibration_seed_with_one_type_more(tmp_path: Path) -> None:
    cal, test, other = _set(tmp_path / "cal", 5, 6), _set(tmp_path / "test", 5, 7), _set(tmp_path / "o", 6, 6)
    with pytest.raises(ValueError, match=rf"test data {test} is the calibration set {cal} \(mint seed 5, 7 types\)"):
        check_held_out(test, trained=[(BUNDLE_TRAIN, other)], calibrated=[cal])
    seen = check_held_out(test, trained=[(BUNDLE_TRAIN, cal)], calibrated=[other])
    assert (
        not seen.new_to_voter and "has the same mint (test seed 5, 7 types; other seed 5, 6 types)" in seen.warnings[0]
    )


def test_recalibrate_refuses_the_recorded_training_seed_with_another_number_of_types(tmp_path: Path) -> None:
    train, cal = _set(tmp_path / "train", 6, 4), _set(tmp_path / "cal", 6, 5, enrol=True)
    old_path, _ = write_bundle(tmp_path / "old", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    old = load_bundle(old_path)
    learnt = replace(old, train={**old.train, DATA_MINTS: [mint_identity(train)]}, version="")
    with pytest.raises(ValueError, match=r"rendered from the same mint .*\(seed 6, 5 and 4 types\)"):
        recalibrate(
            learnt.save(tmp_path / "old" / "learnt.json"), cal, tmp_path / "new", tmp_path / "c", progress=False
        )
    assert not (tmp_path / "new").exists()


def test_training_mints_recorded_in_a_nested_summary_are_found_and_unreadable_folders_named(tmp_path: Path) -> None:
    train = _set(tmp_path / "train", 6, 4)
    gone = str(tmp_path / "gone")
    known = recorded_training_mints({"data": [gone], "recalibrated_from": {DATA_MINTS: [mint_identity(train)]}})
    assert [m["seed"] for m in known.mints] == [6] and known.unchecked == (gone,)
    assert f"trained on {gone}, which cannot be read here" in known.warning("verdict-x")
    found = recorded_training_mints({"data": gone, DATA_MINTS: [{**mint_identity(train), "path": gone}]})
    assert found.unchecked == () and found.warning("verdict-x") == ""
    assert "records no training data set nor mint" in recorded_training_mints({}).warning("verdict-x")


def test_recalibrate_warns_when_the_bundle_s_training_mints_cannot_be_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the shipped bundle: it records only training folders that are not on this machine, and no mint."""
    cal = _set(tmp_path / "cal", 6, 4, cups=4, enrol=True)
    old_path, _ = write_bundle(tmp_path / "old", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    old = load_bundle(old_path)
    folders = ["/nowhere/verdict/train", "/nowhere/verdict/train107"]
    away = replace(old, train={**old.train, "data": folders}, version="").save(tmp_path / "old" / "away.json")
    args = ["train", "recalibrate", "--data-cal", str(cal), "--bundle", str(away), "--cache", str(tmp_path / "c")]
    assert main([*args, "--out", str(tmp_path / "new")]) == 0
    err = capsys.readouterr().err
    assert f"warning: bundle {load_bundle(away).version} was trained on {', '.join(folders)}, which cannot" in err
    new = load_bundle(tmp_path / "new" / "verdict.json")
    assert new.train[UNCHECKED_MINTS].startswith(f"bundle {load_bundle(away).version} was trained on")
    # recalibrated again where the training folder can be read: the stale caveat goes
    train = _set(tmp_path / "train", 9, 4)
    here = replace(new, train={**new.train, "data": [str(train)]}, version="").save(tmp_path / "new" / "here.json")
    again = recalibrate(here, cal, tmp_path / "again", tmp_path / "c", progress=False)
    assert UNCHECKED_MINTS not in again.summary and UNCHECKED_MINTS not in load_bundle(again.bundle_path).train
