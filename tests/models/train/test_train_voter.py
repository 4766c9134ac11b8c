"""The voter's training data: a data set's gallery comes from its enrolment photos when it has them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.risk import choose_threshold
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.mint import generate_mint
from models.synth.scene import SceneOptions
from models.train.voter import (
    ENROL_DIR,
    CupCache,
    dataset_gallery,
    enrolment_gallery,
    load_calibration_features,
    mint_of,
    save_calibration_features,
    virtual_cups,
)
from models.types import CupKind, Side
from tests.models.embed_helpers import tiny_embedder

SCENE = SceneOptions(image_size=256, max_coins=8, kind_weights={CupKind.PURE: 1.0})


def _write(out: Path, seed: int, n_cups: int, first_index: int = 0) -> Path:
    write_dataset(
        SynthConfig(n_types=4, n_cups=n_cups, seed=seed, scene=SCENE, crop_size=64, first_index=first_index),
        out,
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _write(tmp_path_factory.mktemp("voter_data"), seed=4, n_cups=2)
    _write(root / ENROL_DIR, seed=4, n_cups=12, first_index=1000)
    return root


def test_gallery_is_enrolled_from_the_data_sets_photos(data: Path, tmp_path: Path) -> None:
    embedder = tiny_embedder()
    gallery, diameters = dataset_gallery(data, embedder, tmp_path)
    mint = mint_of(data)
    assert set(diameters) == {t.id for t in mint.types}
    sources = [e.source for e in gallery.entries.values()]
    assert any(s.startswith("photo:") for s in sources)
    for coin in mint.types:  # every type and side is enrolled, from photos or (where none) from renders
        for side in (Side.OBVERSE, Side.REVERSE):
            refs = [e for e in gallery.entries.values() if e.type_id == coin.id and e.side == side]
            assert 1 <= len(refs) <= 5
            assert {e.design for e in refs} == {coin.design(side).id}
    again, _ = dataset_gallery(data, embedder, tmp_path)  # cached
    assert len(again) == len(gallery)


def _photo_refs(gallery: object) -> dict[tuple[str, Side], int]:
    refs: dict[tuple[str, Side], int] = {}
    for e in gallery.entries.values():  # type: ignore[attr-defined]
        if e.source.startswith("photo:"):
            refs[(e.type_id, e.side)] = refs.get((e.type_id, e.side), 0) + 1
    return refs


def test_gallery_cache_is_keyed_by_photos_per_side_and_by_the_enrolment_set(data: Path, tmp_path: Path) -> None:
    embedder = tiny_embedder()
    five, _ = dataset_gallery(data, embedder, tmp_path)
    two, _ = dataset_gallery(data, embedder, tmp_path, per_side=2)
    assert max(_photo_refs(five).values()) > 2  # the enrolment set has more photos than two of some face
    assert max(_photo_refs(two).values()) == 2 and set(_photo_refs(two)) == set(_photo_refs(five))
    assert len({p.name for p in tmp_path.glob("gallery-*")}) == 2
    # a re-drawn enrolment set (here: one type's photos gone) is enrolled again, not served from the cache
    enrol = tmp_path / "redrawn" / data.name  # same name, so only the enrolment set tells the two apart
    shutil.copytree(data, enrol)
    index = enrol / ENROL_DIR / "crops" / "index.csv"
    gone = mint_of(data).types[0].id
    lines = index.read_text().splitlines(keepends=True)
    index.write_text("".join(line for line in lines if f",{gone}," not in line))
    cache = tmp_path / "cache"
    dataset_gallery(data, embedder, cache)
    redrawn, _ = dataset_gallery(enrol, embedder, cache)
    assert not any(t == gone for t, _ in _photo_refs(redrawn)) and any(t == gone for t, _ in _photo_refs(five))
    with pytest.raises(ValueError, match="per_side"):
        dataset_gallery(data, embedder, tmp_path, per_side=0)


def test_enrolment_photos_of_another_mint_are_refused(data: Path, tmp_path: Path) -> None:
    other = _write(tmp_path / "other", seed=9, n_cups=1)
    with pytest.raises(ValueError, match="another mint"):
        enrolment_gallery(other, mint_of(data), tiny_embedder(), progress=False)


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


def test_calibration_features_round_trip_in_any_column_order(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    y = np.array([True, False, True, False])
    path = save_calibration_features(tmp_path / "calibration.npz", x, y, ["a", "b", "c"])
    got = load_calibration_features(path, ["c", "a"])
    assert got is not None
    np.testing.assert_array_equal(got[0], x[:, [2, 0]])
    np.testing.assert_array_equal(got[1], y)
    assert load_calibration_features(path, ["a", "zzz"]) is None  # a column the file lacks
    assert load_calibration_features(tmp_path / "missing.npz", ["a"]) is None


def test_detector_cut_cups_count_what_differs_from_the_empty_tray_as_objects(tmp_path: Path) -> None:
    """The shipped detector cuts cups rendered with empty-tray photos; one cup differs from its photo unexplained."""
    from models.detector import Detector
    from models.train.voter import cache_cups

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


def test_recalibrate_certifies_the_bundle_again_on_cups_cut_today(tmp_path: Path) -> None:
    from models.bundle import load_bundle
    from models.train.voter import make_pairs, recalibrate
    from models.voter import Voter
    from tests.models.embed_helpers import write_tiny_checkpoint
    from tests.models.verdict_world import write_bundle

    cal = _write(tmp_path / "cal", seed=6, n_cups=10)
    _write(cal / ENROL_DIR, seed=6, n_cups=12, first_index=1000)
    old_path, _ = write_bundle(tmp_path / "old", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    result = recalibrate(old_path, cal, tmp_path / "new", tmp_path / "cache", progress=False)
    old, new = load_bundle(old_path), load_bundle(result.bundle_path)
    assert result.bundle_path == tmp_path / "new" / "verdict.json"
    assert new.version != old.version and new.train["recalibrated_from"]["version"] == old.version
    assert (new.threshold.target, new.threshold.delta) == (old.threshold.target, old.threshold.delta)
    assert new.voter_sha256 == old.voter_sha256 and new.features == old.features  # nothing refit
    cache = CupCache.load(next((tmp_path / "cache").glob("cups-cal-*.npz")))
    pairs = make_pairs(cache, mint_of(cal), seed=2)
    assert new.cal_scores.size == len(pairs) == result.summary["cal_pairs"]
    assert new.cal_correct.tolist() == [p.correct for p in pairs]
    # the scores are the bundle's own voter on the new pairs' features, kept beside it
    stored = load_calibration_features(tmp_path / "new" / "calibration.npz", new.features)
    assert stored is not None
    voter = Voter.load(tmp_path / "new" / "voter.txt")
    np.testing.assert_allclose(voter.predict(stored[0]), new.cal_scores, atol=1e-5)
    emb = new.path(new.embedder_file)
    assert emb is not None and emb.is_file()
    # the bundle names no enrolment size (trained before the setting): its galleries hold five photos a side
    assert old.enrol_per_side == new.enrol_per_side == 5
    assert [p.name.split("-")[2] for p in (tmp_path / "cache").glob("gallery-cal-*")] == ["enrol5"]
    # a second mint's cups, each judged with its own mint's gallery: the pairs of both are pooled
    cal2 = _write(tmp_path / "cal2", seed=7, n_cups=10)
    _write(cal2 / ENROL_DIR, seed=7, n_cups=12, first_index=1000)
    both = recalibrate(old_path, [cal, cal2], tmp_path / "both", tmp_path / "cache", progress=False)
    pooled = load_bundle(both.bundle_path)
    n2 = len(make_pairs(CupCache.load(next((tmp_path / "cache").glob("cups-cal2-*.npz"))), mint_of(cal2), seed=2))
    assert pooled.cal_scores.size == len(pairs) + n2 == both.summary["cal_pairs"] and n2 > 0
    np.testing.assert_allclose(pooled.cal_scores[: len(pairs)], new.cal_scores, atol=1e-6)
    assert both.summary["data_cal"] == [str(cal), str(cal2)]


def test_recalibrate_certifies_the_voter_under_a_stricter_fewest_coins_rule(tmp_path: Path) -> None:
    from models.bundle import load_bundle
    from models.train.voter import recalibrate
    from tests.models.embed_helpers import write_tiny_checkpoint
    from tests.models.verdict_world import write_bundle

    cal = _write(tmp_path / "cal", seed=6, n_cups=10)
    _write(cal / ENROL_DIR, seed=6, n_cups=12, first_index=1000)
    old_path, _ = write_bundle(tmp_path / "old", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    cache = tmp_path / "cache"
    any_cup = load_bundle(recalibrate(old_path, cal, tmp_path / "one", cache, progress=False).bundle_path)
    result = recalibrate(old_path, cal, tmp_path / "three", cache, progress=False, min_coins=3)
    three = load_bundle(result.bundle_path)
    assert any_cup.pass_min_coins == 1 and three.pass_min_coins == 3
    assert three.preprocess.min_coins == 3  # a cup of fewer is told "too few coins visible"
    assert result.summary["recalibrated_from"]["min_coins"] == 1
    stored = load_calibration_features(tmp_path / "three" / "calibration.npz", three.features)
    assert stored is not None
    few = stored[0][:, list(three.features).index("n_coins")] < 3
    assert few.any() and (~few).any()
    assert np.all(three.cal_scores[few] == 0.0)  # cups of one or two coins can no longer pass
    np.testing.assert_allclose(three.cal_scores[~few], any_cup.cal_scores[~few])  # the rest score as before
    with pytest.raises(ValueError, match="min_coins must be >= 1"):
        recalibrate(old_path, cal, tmp_path / "zero", cache, progress=False, min_coins=0)
    # a smaller delta (the rule chosen by comparing rules on these cups): a threshold as strict or stricter
    half = recalibrate(old_path, cal, tmp_path / "half", cache, progress=False, min_coins=3, delta=0.025)
    strict = load_bundle(half.bundle_path).threshold
    assert strict.delta == 0.025 and half.summary["recalibrated_from"]["delta"] == three.threshold.delta == 0.05
    assert strict.n_accepted <= three.threshold.n_accepted
    assert strict == choose_threshold(three.cal_scores, three.cal_correct, target=strict.target, delta=0.025)
    with pytest.raises(ValueError, match="delta must be in"):
        recalibrate(old_path, cal, tmp_path / "bad", cache, progress=False, delta=1.0)


def test_cutting_in_parallel_parts_gives_the_single_process_cache_and_resumes(tmp_path: Path) -> None:
    """Two processes cut a data set in parts; the joined cache is the one-process cache, and a done part is kept."""
    from models.detector import Detector
    from models.embedder import Embedder
    from models.train.voter import cache_cups, cache_cups_parallel
    from tests.models.embed_helpers import write_tiny_checkpoint

    root = _write(tmp_path / "cups", seed=9, n_cups=5)
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
