"""``cupcheck train voter``: a bundle trained end to end on tiny data sets, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.bundle import MIN_COINS, load_bundle
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.train.galleries import ENROL_DIR
from models.types import CupKind
from station.cli import main
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.train.real_helpers import write_tiny_real_root

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
    # each mint recorded, so an evaluation can tell a test set from them; where the calibration cups came from
    assert [(m["seed"], m["n_types"]) for m in bundle.training_mints] == [(3, 6)]
    assert [(m["path"], m["seed"]) for m in bundle.calibration_mints] == [(str(cal), 5)]
    assert all(len(m["sha256"]) == 64 for m in bundle.training_mints + bundle.calibration_mints)
    assert bundle.train["cal_source"] == f"the calibration data set {cal} (its own mint)"
    # both data sets' galleries were enrolled with two photos a side
    assert sorted(p.name.split("-")[1:3] for p in cache.glob("gallery-*")) == [["cal", "enrol2"], ["train", "enrol2"]]


def test_train_voter_trains_on_the_pairs_of_every_data_set_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two training mints, each judged against its own gallery: the voter sees the train pairs of both (here under
    monotone constraints, which the bundle's voter keeps)."""
    from models.embedder import Embedder
    from models.eval_verdict import recorded_sets
    from models.train.pairs import make_pairs
    from models.train.voter import TrainConfig, load_split

    sets = [_data_set(tmp_path / "train_a", 3, 30), _data_set(tmp_path / "train_b", 7, 30)]
    cal = _data_set(tmp_path / "cal", 5, 24)
    cache, ckpt = tmp_path / "cache", write_tiny_checkpoint(tmp_path / "embedder.pt")
    args = ["train", "voter", "--data", str(sets[0]), "--data", str(sets[1]), "--data-cal", str(cal)]
    args += ["--out", str(tmp_path / "bundle"), "--cache", str(cache), "--embedder", str(ckpt)]
    assert main([*args, "--instances", "gt", "--enrol-per-side", "2", "--monotone"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    bundle = load_bundle(tmp_path / "bundle" / "verdict.json")
    assert recorded_sets(bundle.train["data"]) == sets
    assert summary["monotone"] is True and bundle.load_voter().monotone
    embedder = Embedder.load(ckpt, threads=1)
    cfg = TrainConfig(data=sets[0], out=tmp_path / "o", cache=cache, embedder=ckpt, enrol_per_side=2)
    counts = []
    for d in sets:
        c, _, mint = load_split(d, embedder, cfg, None, False)
        counts.append(len(make_pairs(c, mint, seed=0, splits=("train",), extra_negatives=cfg.extra_negatives)))
    assert min(counts) > 0 and summary["train_pairs"] == sum(counts)
    galleries = sorted(p.name.split("-")[1] for p in cache.glob("gallery-*"))
    assert galleries == ["cal", "train_a", "train_b"]


def test_train_voter_also_learns_from_cups_of_real_crops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], real_data: Path
) -> None:
    """``--real``: cups drawn from labelled real crops join the synthetic training pairs (at their own weight);
    the calibration stays synthetic."""
    train, cal = _data_set(tmp_path / "train", 3, 30), _data_set(tmp_path / "cal", 5, 24)
    real = write_tiny_real_root(real_data, tmp_path / "real")
    args = ["train", "voter", "--data", str(train), "--data-cal", str(cal), "--out", str(tmp_path / "bundle")]
    args += ["--cache", str(tmp_path / "cache"), "--embedder", str(write_tiny_checkpoint(tmp_path / "embedder.pt"))]
    args += ["--instances", "gt", "--enrol-per-side", "2", "--real", str(real), "--real-cups", "40"]
    assert main([*args, "--real-weight", "0.25"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    bundle = load_bundle(tmp_path / "bundle" / "verdict.json")
    assert bundle.train["real"] == str(real) and bundle.train["real_weight"] == 0.25
    assert summary["real_coins"] > 0 and summary["real_train_pairs"] > 40 and summary["real_val_pairs"] > 0
    # the same training without the real cups: the same synthetic pairs and calibration cups, another voter
    assert main([*args[: args.index("--real")], "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert "real" not in plain and plain["train_pairs"] == summary["train_pairs"]
    assert plain["cal_pairs"] == summary["cal_pairs"] == bundle.cal_scores.size
    assert (
        bundle.load_voter().model_text() != load_bundle(tmp_path / "plain" / "verdict.json").load_voter().model_text()
    )


def test_train_voter_refuses_a_real_root_without_crops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    status = main(["train", "voter", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--real", str(tmp_path)])
    assert status == 2
    assert f"{tmp_path} holds none of euro_kaa/crops/train, won_cho0h5/crops/train" in capsys.readouterr().err


def test_train_voter_names_a_training_data_set_that_is_not_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "manifest.json").write_text("{}")
    status = main(["train", "voter", "--data", str(good), "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert status == 2
    assert f"{tmp_path / 'nope'} is not a synthetic data set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "option", "bad"),
    [
        ("voter", "--enrol-per-side", "0"),
        ("voter", "--enrol-per-side", "-3"),
        ("voter", "--min-coins", "0"),
        ("voter", "--real-cups", "0"),
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


def test_recalibrate_refuses_a_delta_outside_zero_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    status = main(["train", "recalibrate", "--data-cal", str(tmp_path), "--out", str(tmp_path / "o"), "--delta", "1"])
    assert status == 2
    assert "--delta must be in (0, 1), got 1.0" in capsys.readouterr().err


def test_train_voter_refuses_calibration_cups_rendered_from_a_training_mint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--data v41 --data-cal v41cal``, both seed 41: the calibration cups show the types the voter learnt."""
    train = _data_set(tmp_path / "v41", 41, 4)
    other = _data_set(tmp_path / "v42", 42, 4)
    write_dataset(SynthConfig(n_types=6, n_cups=4, seed=41, scene=SCENE, first_index=500), tmp_path / "v41cal")
    args = ["train", "voter", "--data", str(other), "--data", str(train), "--data-cal", str(tmp_path / "v41cal")]
    args += ["--out", str(tmp_path / "bundle"), "--cache", str(tmp_path / "cache")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"the calibration data {tmp_path / 'v41cal'} was rendered from the same mint as the training data" in err
    assert f"{train} (seed 41, 6 types)" in err and "another --seed" in err
    assert not (tmp_path / "bundle").exists() and not (tmp_path / "cache").exists()  # refused before any work


def test_train_voter_without_a_calibration_set_certifies_on_val_cups_kept_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The val cups that stop the boosting early certify nothing: half of them are kept apart for that, by cup."""
    from models.embedder import Embedder
    from models.train.pairs import make_pairs
    from models.train.voter import TrainConfig, load_split, split_val_cups

    train = _data_set(tmp_path / "train", 3, 40)
    cache, ckpt = tmp_path / "cache", write_tiny_checkpoint(tmp_path / "embedder.pt")
    args = ["train", "voter", "--data", str(train), "--out", str(tmp_path / "bundle"), "--cache", str(cache)]
    assert main([*args, "--embedder", str(ckpt), "--instances", "gt", "--enrol-per-side", "2"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.split("\n", 1)[1])
    bundle = load_bundle(tmp_path / "bundle" / "verdict.json")
    cfg = TrainConfig(data=train, out=tmp_path / "o", cache=cache, embedder=ckpt, enrol_per_side=2)
    cups, _, mint = load_split(train, Embedder.load(ckpt, threads=1), cfg, None, False)
    val = make_pairs(cups, mint, seed=1, splits=("val",))
    stop, held = split_val_cups(val, 0)
    assert stop and held and not {p.cup for p in stop} & {p.cup for p in held}
    assert len(stop) + len(held) == len(val)
    assert summary["val_pairs"] == len(stop) and summary["cal_pairs"] == len(held) == bundle.cal_scores.size
    n_held, n_stop = len({p.cup for p in held}), len({p.cup for p in stop})
    said = f"no --data-cal: {n_held} cups of the training data's val split, kept apart from the {n_stop} val cups"
    assert bundle.train["cal_source"].startswith(said) and f"calibration cups: {said}" in err
    assert bundle.train["data_cal"] is None and bundle.calibration_mints == []
    assert [(m["path"], m["seed"], m["n_types"]) for m in bundle.training_mints] == [(str(train), 3, 6)]
