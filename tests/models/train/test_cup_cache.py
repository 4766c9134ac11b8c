"""Cups cut and embedded once: virtual cups from their coins, detector cuts against the empty tray, parallel parts."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.synth.dataset import SynthConfig, write_dataset
from models.synth.mint import generate_mint
from models.synth.scene import SceneOptions
from models.train.cup_cache import CupCache, virtual_cups
from models.types import CupKind
from tests.models.embed_helpers import tiny_embedder
from tests.models.train.synth_sets import write_set


def _cache_of_pure_cups(types: list[str], coins_per_cup: int = 4) -> CupCache:
    """A cache of one pure training cup per type; each coin's embedding is a one-hot row naming its cup."""
    n = len(types) * coins_per_cup
    emb = np.zeros((n, n), np.float32)
    emb[np.arange(n), np.arange(n)] = 1.0
    return CupCache(
        offsets=np.arange(0, n + 1, coins_per_cup, dtype=np.int64),
        embeddings=emb,
        confidence=np.ones(n, np.float32),
        partial=np.zeros(n, bool),
        visible=np.ones(n, np.float32),
        diameter_mm=np.full(n, np.nan, np.float32),
        focus=np.ones(n, np.float32),
        true_type=np.array([""] * n),
        cup_id=np.array([f"{i:06d}" for i in range(len(types))]),
        kind=np.array(["pure"] * len(types)),
        expected=np.array(types),
        contaminant=np.array([""] * len(types)),
        split=np.array(["train"] * len(types)),
        n_objects=np.zeros(len(types), np.int64),
        embedder_version="toy",
    )


def test_virtual_cups_reuse_the_coins_of_pure_cups() -> None:
    mint = generate_mint(12, 5)
    types = [t.id for t in mint.types]
    cache = _cache_of_pure_cups(types)
    owner = np.repeat(np.arange(len(types)), 4)  # source row -> its cup's type index
    virtual = virtual_cups(cache, mint, 200, seed=1, max_coins=6)
    assert virtual.n_cups == 200
    assert set(virtual.kind.tolist()) == {"pure", "contaminated"}
    for i in range(virtual.n_cups):
        rows = virtual.embeddings[virtual.offsets[i] : virtual.offsets[i + 1]].argmax(axis=1)
        assert 1 <= rows.size <= 6
        src = [types[k] for k in owner[rows]]
        foreign = [t for t in src if t != virtual.expected[i]]
        if virtual.kind[i] == "pure":
            assert not foreign and virtual.contaminant[i] == ""
        else:
            assert 1 <= len(foreign) <= 2
            intruder = mint.by_id(foreign[0])
            cup_type = mint.by_id(str(virtual.expected[i]))
            relation = {True: "family", False: "other"}[intruder.family == cup_type.family]
            if cup_type.twin_of == intruder.id:
                relation = "twin"
            assert virtual.contaminant[i] == relation
    again = virtual_cups(cache, mint, 200, seed=1, max_coins=6)
    np.testing.assert_array_equal(again.embeddings, virtual.embeddings)


def test_virtual_cups_need_pure_training_cups() -> None:
    mint = generate_mint(12, 5)
    cache = _cache_of_pure_cups([mint.types[0].id])
    cache.kind[:] = "contaminated"
    with pytest.raises(ValueError, match="no pure training cup"):
        virtual_cups(cache, mint, 5)


def test_detector_cut_cups_count_what_differs_from_the_empty_tray_as_objects(tmp_path: Path) -> None:
    """The shipped detector cuts cups rendered with empty-tray photos; one cup differs from its photo unexplained."""
    from models.detector import Detector
    from models.train.cup_cache import cache_cups

    scene = SceneOptions(image_size=320, max_coins=5, kind_weights={CupKind.PURE: 1.0}, empty_reference=True)
    root = tmp_path / "cups"
    write_dataset(SynthConfig(n_types=4, n_cups=3, seed=8, scene=scene, crop_size=64), root, progress=False)
    cups = json.loads((root / "manifest.json").read_text())["cups"]
    assert all(c["empty"] for c in cups)
    # a square of paper on the tray when its empty photo was taken, where no coin lies now: the cup differs
    # from its photo there, and the detector sees nothing to box (it boxes such a square in the cup as an object)
    path = root / cups[1]["empty"]
    img = cv2.imread(str(path))
    assert img is not None
    free = np.ones(img.shape[:2], np.uint8)
    for inst in cups[1]["instances"]:
        x1, y1, x2, y2 = inst["bbox"]
        free[max(0, y1 - 20) : y2 + 20, max(0, x1 - 20) : x2 + 20] = 0
    tray = cups[1]["tray"]
    if tray is not None:
        yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
        free &= (np.hypot(xx - tray["x"], yy - tray["y"]) < tray["radius"] - 30).astype(np.uint8)
    dist = cv2.distanceTransform(free, cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    assert dist[y, x] > 16
    img[y - 14 : y + 14, x - 14 : x + 14] = (235, 240, 245)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cache = cache_cups(
        root, tiny_embedder(), tmp_path / "cache.npz", instances="detector", detector=Detector.load(), progress=False
    )
    assert cache.n_unexplained is not None and cache.n_unexplained.tolist() == [0, 1, 0]
    again = CupCache.load(tmp_path / "cache.npz")
    assert again.n_unexplained is not None and np.array_equal(again.n_unexplained, cache.n_unexplained)
    for i in range(3):
        assert cache.coins(i).n_objects == int(cache.n_objects[i] + cache.n_unexplained[i])
    joined = CupCache.concat([cache, cache])
    assert joined.n_unexplained is not None and joined.n_unexplained.tolist() == 2 * cache.n_unexplained.tolist()


def test_cutting_in_parallel_parts_gives_the_single_process_cache_and_resumes(tmp_path: Path) -> None:
    """Two processes cut a data set in parts; the joined cache is the one-process cache, and a done part is kept."""
    from models.detector import Detector
    from models.embedder import Embedder
    from models.train.cup_cache import cache_cups, cache_cups_parallel
    from tests.models.embed_helpers import write_tiny_checkpoint

    root = write_set(tmp_path / "cups", seed=9, n_cups=5)
    emb_file = write_tiny_checkpoint(tmp_path / "embedder.pt")
    embedder, detector = Embedder.load(emb_file, threads=1), Detector.load()
    serial = cache_cups(root, embedder, tmp_path / "serial.npz", instances="detector", detector=detector, seed=3)
    out = tmp_path / "cache" / "cups.npz"
    # a part already cut by an interrupted run (another noise seed, so its reuse shows in the diameters)
    done = out.parent / "cups.parts" / "cups-000000-000002.npz"
    early = cache_cups(root, embedder, done, instances="detector", detector=detector, seed=99, part=(0, 2))
    cache_cups_parallel(
        root, out, workers=2, embedder_file=emb_file, instances="detector", seed=3, progress=False, part_cups=2
    )
    assert not (out.parent / "cups.parts").exists()
    joined = CupCache.load(out)
    assert joined.n_cups == serial.n_cups == 5 and joined.cup_id.tolist() == serial.cup_id.tolist()
    n_early = int(early.offsets[-1])
    assert not np.array_equal(early.diameter_mm, serial.diameter_mm[:n_early], equal_nan=True)
    np.testing.assert_array_equal(joined.offsets, serial.offsets)
    np.testing.assert_array_equal(joined.diameter_mm[:n_early], early.diameter_mm)
    np.testing.assert_array_equal(joined.diameter_mm[n_early:], serial.diameter_mm[n_early:])
    np.testing.assert_allclose(joined.embeddings, serial.embeddings, atol=2e-3)  # both stored as float16
    for key in ("confidence", "partial", "visible", "focus", "true_type", "kind", "n_objects"):
        np.testing.assert_array_equal(getattr(joined, key), getattr(serial, key))
    with pytest.raises(ValueError, match="workers"):
        cache_cups_parallel(root, tmp_path / "x.npz", workers=0)
