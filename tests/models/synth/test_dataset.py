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
from models.types import CupKind

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


def _copy_real(real: Path, out: Path, files: list[str]) -> Path:
    """A real data root holding only ``files`` (paths below ``real``)."""
    import shutil

    for rel in files:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real / rel, out / rel)
    return out


def test_without_real_options_the_set_does_not_depend_on_the_real_folder(real_data: Path, tmp_path: Path) -> None:
    """Real photos are what the evaluations judge: none may come in unasked, not even as a table."""
    scene = dataclasses.replace(CONFIG.scene, real_fraction=0.0)
    base = SynthConfig(n_types=12, n_cups=4, seed=4, scene=scene, crop_size=64, cache_dir=tmp_path / "cache")
    write_dataset(dataclasses.replace(base, real_root=real_data), tmp_path / "with", progress=False)
    write_dataset(base, tmp_path / "without", progress=False)
    for name in ("manifest.json", "mint.json"):
        assert (tmp_path / "with" / name).read_bytes() == (tmp_path / "without" / name).read_bytes()
    for cup in _manifest(tmp_path / "with")["cups"]:
        assert (tmp_path / "with" / cup["image"]).read_bytes() == (tmp_path / "without" / cup["image"]).read_bytes()
        assert "real_crops" not in cup and "real_backgrounds" not in cup
    assert _manifest(tmp_path / "with")["real_photos"] == {"coins": [], "backgrounds": []}


def test_real_coins_and_backgrounds_are_named_photo_by_photo(real_data: Path, tmp_path: Path) -> None:
    photos = ["euro_kaa/photos/mixed/test_3.jpg", "won_cho0h5/photos/20201011_153140.jpg"]
    crops = [
        str(f.relative_to(real_data))
        for t in ("1e", "2e")
        for f in sorted((real_data / "euro_kaa/crops/train" / t).glob("train_2_*.jpg"))[:2]
    ]
    root = _copy_real(real_data, tmp_path / "real", photos + crops)
    scene = dataclasses.replace(CONFIG.scene, real_fraction=1.0, kind_weights={CupKind.PURE: 1.0})
    config = SynthConfig(
        n_types=12, n_cups=6, seed=4, scene=scene, crop_size=64, real_root=root, cache_dir=tmp_path / "cache"
    )
    off = write_dataset(config, tmp_path / "off", progress=False)
    assert off.real_background_photos == () and off.real_coin_photos == ("euro_kaa/train_2",)
    summary = write_dataset(dataclasses.replace(config, real_backgrounds=True), tmp_path / "on", progress=False)
    m = _manifest(tmp_path / "on")
    assert m["real_photos"]["coins"] == ["euro_kaa/train_2"] == list(summary.real_coin_photos)
    assert m["real_photos"]["backgrounds"] and set(m["real_photos"]["backgrounds"]) <= set(photos)
    assert list(summary.real_background_photos) == m["real_photos"]["backgrounds"]
    used = {f for c in m["cups"] for f in c.get("real_crops", [])}
    assert used and used <= set(crops)
    with pytest.raises(ValueError, match="real backgrounds need the real data folder"):
        dataclasses.replace(config, real_root=None, real_backgrounds=True).validate()


@pytest.mark.parametrize("weight", [float("inf"), float("nan"), -1.0])
def test_kind_weights_must_be_finite_and_not_negative(weight: float) -> None:
    scene = dataclasses.replace(CONFIG.scene, kind_weights={CupKind.PURE: weight, CupKind.EMPTY: 1.0})
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        SynthConfig(n_types=12, n_cups=1, seed=0, scene=scene).validate()


@pytest.mark.parametrize(
    ("n_cups", "first_index", "message"),
    [(1_000_001, 0, "number of cups must be at most 1000000"), (10, 999_995, "first index 999995 is too large")],
)
def test_too_many_cups_names_what_is_too_large(n_cups: int, first_index: int, message: str) -> None:
    config = SynthConfig(n_types=12, n_cups=n_cups, seed=0, scene=CONFIG.scene, first_index=first_index)
    with pytest.raises(ValueError, match=message):
        config.validate()
    SynthConfig(n_types=12, n_cups=10, seed=0, scene=CONFIG.scene, first_index=999_990).validate()


def test_obverse_only_alone_is_refused_for_a_mint_without_a_shared_obverse() -> None:
    scene = dataclasses.replace(CONFIG.scene, kind_weights={CupKind.OBVERSE_ONLY: 1.0})
    with pytest.raises(ValueError, match="share an obverse design"):
        SynthConfig(n_types=2, n_cups=3, seed=0, scene=scene).validate()
    SynthConfig(n_types=12, n_cups=3, seed=0, scene=scene).validate()


def test_a_failed_run_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    real = tmp_path / "real"
    for denomination in ("1e", "2e"):  # real crops that are no pictures: the first cup pasting one fails
        folder = real / "euro_kaa" / "crops" / "train" / denomination
        folder.mkdir(parents=True)
        (folder / "train_1_0.jpg").write_text("not a picture")
    scene = dataclasses.replace(CONFIG.scene, real_fraction=1.0, kind_weights={CupKind.PURE: 1.0})
    broken = SynthConfig(n_types=12, n_cups=4, seed=4, scene=scene, crop_size=64, real_root=real)
    with pytest.raises(OSError, match="cannot read"):
        write_dataset(broken, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    write_dataset(dataclasses.replace(broken, real_root=None), out, progress=False)  # the re-run is not blocked
    assert sorted(p.name for p in out.iterdir()) == ["crops", "manifest.json", "mint.json", "notes.txt", "yolo"]


def test_a_crop_larger_than_the_largest_cup_photo_is_refused_before_anything_is_drawn() -> None:
    """A crop of 100,000 px a side asked OpenCV for 30 GB and died with its traceback."""
    with pytest.raises(ValueError, match="crop size must be from 8 to 4096"):
        dataclasses.replace(CONFIG, crop_size=100_000).validate()
    dataclasses.replace(CONFIG, crop_size=4096).validate()


def test_contaminated_cups_need_room_for_three_coins() -> None:
    """A contaminated cup holds two coins of its type beside the intruder, whatever the most coins says: fewer is
    refused rather than drawn as three without a word."""
    for kinds in ({CupKind.CONTAMINATED: 1.0}, {CupKind.PURE: 1.0, CupKind.CONTAMINATED: 0.5}):
        scene = dataclasses.replace(CONFIG.scene, max_coins=2, kind_weights=kinds)
        with pytest.raises(ValueError, match="max coins 2 is too few for contaminated cups, which hold at least 3"):
            dataclasses.replace(CONFIG, scene=scene).validate()
    for kinds in ({CupKind.PURE: 1.0}, {CupKind.PURE: 1.0, CupKind.CONTAMINATED: 0.0}):
        dataclasses.replace(CONFIG, scene=dataclasses.replace(CONFIG.scene, max_coins=1, kind_weights=kinds)).validate()
    dataclasses.replace(CONFIG, scene=dataclasses.replace(CONFIG.scene, max_coins=3)).validate()


def test_the_rendering_clock_leaves_out_building_the_real_surface_patches(real_data: Path, tmp_path: Path) -> None:
    """With one worker the patch bank (minutes from every real photo) was built inside the clock, and the speed
    line read 0.0 images/s: with no cup to draw, the rendering takes no time at all."""
    photos = ["euro_kaa/photos/mixed/test_3.jpg", "won_cho0h5/photos/20201011_153140.jpg"]
    root = _copy_real(real_data, tmp_path / "real", photos)
    config = SynthConfig(
        n_types=12,
        n_cups=0,
        seed=4,
        scene=dataclasses.replace(CONFIG.scene, real_fraction=0.0),
        real_root=root,
        real_backgrounds=True,
        cache_dir=tmp_path / "cache",
    )
    summary = write_dataset(config, tmp_path / "set", progress=False)
    assert list((tmp_path / "cache").glob("surface_patches_*.npz"))  # the bank was built in this run
    assert summary.n_cups == 0 and summary.seconds < 0.05
