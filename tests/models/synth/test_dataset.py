"""The synthetic data set writer: layout, manifest/labels/crops consistency, determinism, ultralytics loading."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import CupRoi
from models.synth.dataset import CROP_COLUMNS, MAX_CROP_OCCLUSION, SynthConfig, is_val, write_dataset
from models.synth.mint import generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup

CONFIG = SynthConfig(n_types=12, n_cups=10, seed=4, scene=SceneOptions(image_size=256, max_coins=12), crop_size=64)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    summary = write_dataset(CONFIG, out, progress=False)
    assert summary.n_cups == CONFIG.n_cups
    return out


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_layout_and_manifest(dataset: Path) -> None:
    m = _manifest(dataset)
    assert m["seed"] == 4 and m["image_size"] == 256 and m["n_types"] == 12
    assert len(m["cups"]) == 10
    mint = json.loads((dataset / "mint.json").read_text())
    assert mint["n_types"] == 12 and mint["seed"] == 4 and len(mint["types"]) == 12
    splits = [c["split"] for c in m["cups"]]
    assert splits.count("val") == 1
    for cup in m["cups"]:
        img = cv2.imread(str(dataset / cup["image"]))
        assert img is not None
        assert img.shape == (256, 256, 3)
        assert cup["image"] == f"yolo/images/{cup['split']}/{cup['id']}.jpg"
        assert cup["px_per_mm"] > 0
        tray = cup["tray"]  # null on a flat table
        assert tray is None or CupRoi.from_dict(tray).radius * 2 == pytest.approx(
            cup["cup_diameter_mm"] * cup["px_per_mm"], rel=1e-3
        )
        for inst in cup["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            poly = np.asarray(inst["polygon"])
            assert x1 <= poly[:, 0].min() and poly[:, 0].max() < x2
            assert y1 <= poly[:, 1].min() and poly[:, 1].max() < y2


def test_yolo_labels_rasterize_back_to_the_rendered_masks(dataset: Path) -> None:
    m = _manifest(dataset)
    assets = SceneAssets(generate_mint(12, 4))
    for idx, cup in enumerate(m["cups"][:5]):
        scene = render_cup(assets, 4, idx, CONFIG.scene)
        lines = (dataset / "yolo" / "labels" / cup["split"] / f"{cup['id']}.txt").read_text().splitlines()
        assert len(lines) == len(cup["instances"]) == len(scene.instances)
        for line, inst, truth in zip(lines, cup["instances"], scene.instances, strict=True):
            vals = line.split()
            assert int(vals[0]) == (0 if inst["is_coin"] else 1)
            pts = (np.asarray(vals[1:], np.float64).reshape(-1, 2) * 256).round().astype(np.int32)
            raster = np.zeros((256, 256), np.uint8)
            cv2.fillPoly(raster, [pts], 1)
            mask = scene.mask(truth)
            n, _comp = cv2.connectedComponents(mask.astype(np.uint8))
            if n == 2:
                iou = (raster.astype(bool) & mask).sum() / (raster.astype(bool) | mask).sum()
                assert iou > 0.9
            ys, xs = np.nonzero(mask)
            assert inst["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_crops_index_matches_manifest(dataset: Path) -> None:
    m = _manifest(dataset)
    with (dataset / "crops" / "index.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CROP_COLUMNS
        rows = list(reader)
    expected = []
    for cup in m["cups"]:
        for inst in cup["instances"]:
            if inst["is_coin"] and inst["occlusion"] <= MAX_CROP_OCCLUSION:
                expected.append((cup["id"], cup["split"], inst["type_id"], inst["design_id"], inst["side"]))
    got = [(r["cup_id"], r["split"], r["type_id"], r["design_id"], r["side"]) for r in rows]
    assert got == expected and rows
    for r in rows[:20]:
        crop = cv2.imread(str(dataset / r["path"]))
        assert crop is not None
        assert crop.shape == (64, 64, 3)
        assert crop[0, 0].sum() == 0  # the corner lies outside the coin: black
        assert crop[32, 32].sum() > 0 or float(r["occlusion"]) > 0.2
        assert r["source"] == "synthetic"


def test_same_config_gives_the_same_bytes_with_any_worker_count(dataset: Path, tmp_path: Path) -> None:
    small = SynthConfig(n_types=12, n_cups=4, seed=4, scene=CONFIG.scene, crop_size=64)
    write_dataset(small, tmp_path / "a", progress=False)
    write_dataset(small, tmp_path / "b", workers=2, progress=False)
    for cup in _manifest(tmp_path / "a")["cups"]:
        a = (tmp_path / "a" / cup["image"]).read_bytes()
        assert a == (tmp_path / "b" / cup["image"]).read_bytes()
        assert a == (dataset / cup["image"]).read_bytes()  # the first cups of the bigger set are the same
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()


def test_empty_references_leave_the_cups_as_they_were_and_hold_no_coin(dataset: Path, tmp_path: Path) -> None:
    scene = dataclasses.replace(CONFIG.scene, empty_reference=True)
    with_empty = SynthConfig(n_types=12, n_cups=4, seed=4, scene=scene, crop_size=64)
    write_dataset(with_empty, tmp_path, progress=False)
    for cup in _manifest(tmp_path)["cups"]:
        assert (tmp_path / cup["image"]).read_bytes() == (dataset / cup["image"]).read_bytes()
        assert cup["empty"] == f"empty/{cup['id']}.jpg"
        frame = cv2.imread(str(tmp_path / cup["image"]))
        empty = cv2.imread(str(tmp_path / cup["empty"]))
        assert frame is not None and empty is not None and empty.shape == frame.shape
        diff = np.abs(frame.astype(np.int16) - empty.astype(np.int16)).max(axis=2)
        inside = np.zeros(diff.shape, bool)
        for inst in cup["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            inside[max(0, y1 - 12) : y2 + 12, max(0, x1 - 12) : x2 + 12] = True  # the coin, its shadow, its blur
        # away from the coins the two photos agree up to noise; on the coins they differ
        assert np.median(diff[~inside]) < 12
        if cup["instances"]:
            assert np.median(diff[inside]) > np.median(diff[~inside]) + 10
    assert "empty" not in _manifest(dataset)["cups"][0]


def test_first_index_draws_other_cups_of_the_same_mint(dataset: Path, tmp_path: Path) -> None:
    later = SynthConfig(n_types=12, n_cups=3, seed=4, scene=CONFIG.scene, crop_size=64, first_index=8)
    write_dataset(later, tmp_path, progress=False)
    assert (tmp_path / "mint.json").read_bytes() == (dataset / "mint.json").read_bytes()
    cups = _manifest(tmp_path)["cups"]
    assert [c["id"] for c in cups] == ["000008", "000009", "000010"]
    for cup in cups[:2]:  # cups 8 and 9 are also the last two of the 10-cup set
        assert (tmp_path / cup["image"]).read_bytes() == (dataset / cup["image"]).read_bytes()


def test_val_split_is_exact() -> None:
    assert sum(is_val(i, 0.1) for i in range(1000)) == 100
    assert not any(is_val(i, 0.0) for i in range(50))


@pytest.mark.parametrize(
    "bad",
    [
        {"n_types": 1},
        {"n_cups": -1},
        {"val_fraction": 1.5},
        {"crop_size": 2},
        {"first_index": -1},
    ],
)
def test_bad_config_is_rejected(bad: dict, tmp_path: Path) -> None:
    fields = {"n_types": 12, "n_cups": 1, "seed": 0, "scene": CONFIG.scene} | bad
    with pytest.raises(ValueError):
        write_dataset(SynthConfig(**fields), tmp_path, progress=False)


def test_yolo_dataset_loads_in_ultralytics(dataset: Path) -> None:
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(dataset / "yolo" / "data.yaml"))
    assert data["nc"] == 2 and data["names"] == {0: "coin", 1: "object"}
    ds = YOLODataset(img_path=data["train"], imgsz=256, augment=False, data=data, task="segment", cache=False)
    n_train = sum(1 for c in _manifest(dataset)["cups"] if c["split"] == "train")
    assert len(ds.labels) == n_train
    n_inst = sum(len(c["instances"]) for c in _manifest(dataset)["cups"] if c["split"] == "train")
    assert sum(len(lb["cls"]) for lb in ds.labels) == n_inst


def test_a_copied_data_set_reads_its_own_images_in_ultralytics(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``data.yaml`` names no folder: a copy reads the images beside it, not the original's."""
    import shutil

    from ultralytics.data.utils import check_det_dataset

    moved = tmp_path / "copy"
    shutil.copytree(dataset, moved)
    monkeypatch.chdir(tmp_path)  # not the folder the set is in: a relative path would be taken from here
    data = check_det_dataset(str(moved / "yolo" / "data.yaml"))
    assert Path(data["train"]) == (moved / "yolo" / "images" / "train").resolve()
    assert Path(data["val"]) == (moved / "yolo" / "images" / "val").resolve()
