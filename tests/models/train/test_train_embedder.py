"""Embedder training: crop data sets, augmentation, a tiny resumable run that writes a self-describing checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.embedder import Embedder
from models.train.crops_data import read_real_crops, read_synth_crops, split_heldout
from models.train.embedder import augment_crop, config_from_args, load_train_data, recall_at_k, train_embedder
from models.types import Side
from tests.models.embed_helpers import coin_image

COLUMNS = ("path", "type_id", "design_id", "side", "family", "cup_id", "split", "partial", "occlusion", "source")


def write_synth_crops(root: Path) -> Path:
    """A miniature ``cupcheck synth`` crops data set: 4 families of 2 types sharing an obverse, 7 crops per side."""
    (root / "crops" / "images").mkdir(parents=True)
    rows = []
    for fam in range(4):
        for member in range(2):
            tid = f"t{fam * 2 + member:04d}"
            for side in (Side.OBVERSE, Side.REVERSE):
                design = f"f{fam:03d}-obv" if side == Side.OBVERSE else f"{tid}-rev"
                base = coin_image(fam * 3 + member, side, 64)
                for n in range(7):
                    rel = f"crops/images/{tid}_{side.value[0]}{n}.png"
                    rot = cv2.getRotationMatrix2D((32, 32), 50.0 * n, 1.0)
                    cv2.imwrite(str(root / rel), cv2.warpAffine(base, rot, (64, 64)))
                    rows.append(
                        dict(
                            zip(
                                COLUMNS,
                                (
                                    rel,
                                    tid,
                                    design,
                                    side.value,
                                    f"f{fam:03d}",
                                    f"{n:06d}",
                                    "train",
                                    0,
                                    "0.0",
                                    "synthetic",
                                ),
                                strict=True,
                            )
                        )
                    )
    rows.append(
        dict(
            zip(
                COLUMNS,
                ("crops/images/x.png", "real-euro-1e", "real-euro-1e", "unknown", "euro", "1", "train", 0, "0", "real"),
                strict=True,
            )
        )
    )
    with (root / "crops" / "index.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (root / "mint.json").write_text(json.dumps({"n_types": 12, "seed": 5, "types": []}))
    return root


def test_designs_of_different_mints_are_different_classes(tmp_path: Path) -> None:
    first = write_synth_crops(tmp_path / "a")
    other = write_synth_crops(tmp_path / "b")  # the same catalogue numbers in another mint
    (other / "mint.json").write_text(json.dumps({"n_types": 12, "seed": 6, "types": []}))
    again = write_synth_crops(tmp_path / "c")  # a second rendering of the first mint
    one = load_train_data(config_from_args(data=(str(first),)))
    assert len(one.label_names) >= 6 and all(n.startswith("mint5/") for n in one.label_names)
    assert {r.label.split("/")[0] for r in one.val_synth} == {"mint5"}  # held-out families are named alike
    two = load_train_data(config_from_args(data=(str(first), str(other))))
    assert two.mint_seeds == [5, 6] and len(two.label_names) == 2 * len(one.label_names)
    assert {n.replace("mint6/", "mint5/", 1) for n in two.label_names} == set(one.label_names)
    same = load_train_data(config_from_args(data=(str(first), str(again))))
    assert same.label_names == one.label_names and len(same.train) == 2 * len(one.train)


def test_read_synth_crops_labels_are_designs(tmp_path: Path) -> None:
    recs = read_synth_crops(write_synth_crops(tmp_path / "ds"))
    assert len(recs) == 112 and all(r.source == "synthetic" for r in recs)
    obv = {r.label for r in recs if r.side == Side.OBVERSE and r.family == "f000"}
    assert obv == {"f000-obv"}
    train, held = split_heldout(recs, 0.5)
    assert train and held and not {r.family for r in train} & {r.family for r in held}
    with pytest.raises(FileNotFoundError):
        read_synth_crops(tmp_path / "nothing")


def test_augment_crop_keeps_shape_and_changes_pixels() -> None:
    img = coin_image(0, size=96)
    out = augment_crop(img, np.random.default_rng(0), 64)
    again = augment_crop(img, np.random.default_rng(0), 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, augment_crop(img, np.random.default_rng(1), 64))


def test_recall_at_k_aggregates_per_label() -> None:
    refs = np.eye(3, dtype=np.float32)
    q = np.array([[0.9, 0.1, 0], [0, 0.2, 0.8], [0.6, 0.7, 0]], np.float32)
    rec, ranked = recall_at_k(q, ["a", "c", "a"], refs, ["a", "b", "c"], ks=(1, 2))
    assert rec == {1: pytest.approx(2 / 3), 2: 1.0}
    assert ranked[2][:2] == ["b", "a"]


def test_tiny_training_run_writes_checkpoint_and_resumes(tmp_path: Path) -> None:
    data = write_synth_crops(tmp_path / "ds")
    out = tmp_path / "run" / "emb.pt"
    kwargs = dict(
        data=(str(data),),
        out=str(out),
        arch="mobilenetv2_050",
        embed_dim=16,
        input_size=48,
        epochs=1,
        batches_per_epoch=2,
        batch_size=8,
        m_per_class=2,
        holdout_fraction=0.5,
        val_queries=20,
        workers=0,
    )
    result = train_embedder(config_from_args(**kwargs), progress=False)
    assert result["epochs_done"] == 1 and "synth_R@1" in result["before"] and "synth_R@1" in result["history"][0]
    emb = Embedder.load(out)
    assert emb.prep.input_size == 48 and emb.embed_dim == 16 and emb.train_args["holdout_fraction"] == 0.5
    assert out.with_name("emb.state").is_file() and out.with_name("emb.history.json").is_file()
    resumed = train_embedder(config_from_args(**{**kwargs, "epochs": 2}), resume=True, progress=False)
    assert resumed["epochs_done"] == 2 and len(resumed["history"]) == 2
    assert Embedder.load(out).version != emb.version


def test_read_real_crops_splits(real_data: Path) -> None:
    train = read_real_crops(real_data, "train", ("won",))
    test = read_real_crops(real_data, "test", ("won",))
    assert {r.label for r in train} == {"real-won-10won", "real-won-50won", "real-won-100won", "real-won-500won"}
    assert not {r.path for r in train} & {r.path for r in test}
    rupee = read_real_crops(real_data, "train", ("rupee",)) + read_real_crops(real_data, "test", ("rupee",))
    assert len(rupee) == 1400 and "real-rupee-invalid" not in {r.label for r in rupee}
