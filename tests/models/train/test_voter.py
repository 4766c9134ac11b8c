"""The voter bundle certified again on cups cut today, and its calibration features kept beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.risk import choose_threshold
from models.train.cup_cache import CupCache
from models.train.galleries import ENROL_DIR, mint_of
from models.train.voter import load_calibration_features, save_calibration_features
from tests.models.train.synth_sets import write_set


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


def test_recalibrate_certifies_the_bundle_again_on_cups_cut_today(tmp_path: Path) -> None:
    from models.bundle import load_bundle
    from models.train.pairs import make_pairs
    from models.train.voter import recalibrate
    from models.voter import Voter
    from tests.models.embed_helpers import write_tiny_checkpoint
    from tests.models.verdict_world import write_bundle

    cal = write_set(tmp_path / "cal", seed=6, n_cups=10)
    write_set(cal / ENROL_DIR, seed=6, n_cups=12, first_index=1000)
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
    cal2 = write_set(tmp_path / "cal2", seed=7, n_cups=10)
    write_set(cal2 / ENROL_DIR, seed=7, n_cups=12, first_index=1000)
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

    cal = write_set(tmp_path / "cal", seed=6, n_cups=10)
    write_set(cal / ENROL_DIR, seed=6, n_cups=12, first_index=1000)
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


def test_a_data_set_named_like_another_is_embedded_again_not_served_the_others_cache(tmp_path: Path) -> None:
    """Two seeds' sets both called ``train`` share a cache folder: the second gets its own cups and gallery."""
    from dataclasses import replace

    from models.files import sha256_file
    from models.train.galleries import dataset_gallery
    from models.train.voter import TrainConfig, load_split
    from tests.models.embed_helpers import tiny_embedder

    a = write_set(tmp_path / "vA" / "train", seed=5, n_cups=4)
    b = write_set(tmp_path / "vB" / "train", seed=6, n_cups=4)
    embedder = tiny_embedder()
    cfg = TrainConfig(data=a, out=tmp_path / "out", cache=tmp_path / "cache")
    first, _, _ = load_split(a, embedder, cfg, None, progress=False)
    shared, _, mint = load_split(b, embedder, cfg, None, progress=False)
    fresh, _, _ = load_split(b, embedder, replace(cfg, cache=tmp_path / "fresh"), None, progress=False)
    assert mint == mint_of(b)
    np.testing.assert_array_equal(shared.offsets, fresh.offsets)
    np.testing.assert_array_equal(shared.embeddings, fresh.embeddings)
    assert not np.array_equal(first.offsets, shared.offsets) or not np.array_equal(first.embeddings, shared.embeddings)
    gallery, _ = dataset_gallery(b, embedder, cfg.cache, cfg.enrol_per_side, progress=False)
    own, _ = dataset_gallery(b, embedder, tmp_path / "fresh", cfg.enrol_per_side, progress=False)
    np.testing.assert_array_equal(gallery.vectors()[0], own.vectors()[0])
    sha_a, sha_b = sha256_file(a / "manifest.json"), sha256_file(b / "manifest.json")
    assert first.data_sha256 == sha_a and shared.data_sha256 == sha_b
    # a cache file renamed onto another set's name is checked against the set it was made from, and re-embedded
    cache_a = next(p for p in cfg.cache.glob("cups-train-*.npz") if CupCache.load(p).data_sha256 == sha_a)
    cache_b = next(p for p in cfg.cache.glob("cups-train-*.npz") if p != cache_a)
    cache_a.replace(cache_b)
    again, _, _ = load_split(b, embedder, cfg, None, progress=False)
    assert again.data_sha256 == sha_b
    np.testing.assert_array_equal(again.embeddings, fresh.embeddings)


def test_recalibrate_refuses_a_retrained_bundle_with_a_station_layer_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """A retrained bundle's fine-tuned embedder layer and station references were certified on the station's own
    cups: synthetic cups cut without them would certify another pipeline, and the copy would not even load."""
    from dataclasses import replace

    from models.adapter import ADAPTER_FILE, EmbeddingAdapter
    from models.bundle import load_bundle
    from models.files import sha256_file
    from models.train.voter import recalibrate
    from tests.models.embed_helpers import write_tiny_checkpoint
    from tests.models.verdict_world import write_bundle

    cal = write_set(tmp_path / "cal", seed=6, n_cups=4)
    base_path, embedder = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    d = embedder.embed_dim
    layer = EmbeddingAdapter.identity(d, embedder.version).then(np.eye(d, dtype=np.float32) * 0.5)
    layer.save(tmp_path / "b" / ADAPTER_FILE)
    retrained = replace(
        load_bundle(base_path),
        adapter_file=ADAPTER_FILE,
        adapter_sha256=sha256_file(tmp_path / "b" / ADAPTER_FILE),
        adapter_version=layer.version,
        train={"retrained_from": "verdict-0123abcd"},
        version="",
    )
    path = retrained.save(tmp_path / "b" / "retrained.json")
    before = sorted(p.name for p in (tmp_path / "b").iterdir())
    for out in (tmp_path / "elsewhere", tmp_path / "b"):
        with pytest.raises(
            ValueError, match=r"recalibrate the bundle this one was retrained from \(verdict-0123abcd\)"
        ):
            recalibrate(path, cal, out, tmp_path / "cache", progress=False)
    assert not (tmp_path / "elsewhere").exists() and sorted(p.name for p in (tmp_path / "b").iterdir()) == before
    assert load_bundle(path).adapter_file == ADAPTER_FILE


def test_recalibrate_refuses_calibration_cups_of_a_mint_the_voter_learnt(tmp_path: Path) -> None:
    from dataclasses import replace

    from models.bundle import DATA_MINTS, load_bundle
    from models.train.voter import mint_identity, recalibrate
    from tests.models.embed_helpers import write_tiny_checkpoint
    from tests.models.verdict_world import write_bundle

    train = write_set(tmp_path / "train", seed=6, n_cups=2)
    cal = write_set(tmp_path / "cal", seed=6, n_cups=2, first_index=100)
    old_path, _ = write_bundle(tmp_path / "old", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    old = load_bundle(old_path)
    learnt = replace(old, train={**old.train, DATA_MINTS: [mint_identity(train)]}, version="")
    path = learnt.save(tmp_path / "old" / "learnt.json")
    with pytest.raises(ValueError, match=f"the calibration data {cal} was rendered from the same mint"):
        recalibrate(path, cal, tmp_path / "new", tmp_path / "cache", progress=False)
    assert not (tmp_path / "new").exists()


def test_recalibrate_cuts_the_calibration_cups_with_the_detector_when_told(tmp_path: Path) -> None:
    """A bundle trained on true masks (``--instances gt``) is certified for a station's detector only on that
    detector's cuts: ``instances="detector"`` makes them, and the bundle then names the detector."""
    from dataclasses import replace

    from models.bundle import load_bundle
    from models.detector import Detector
    from models.pipeline import detector_mismatch
    from models.train.voter import recalibrate
    from tests.models.embed_helpers import write_tiny_checkpoint
    from tests.models.verdict_world import write_bundle

    cal = write_set(tmp_path / "cal", seed=6, n_cups=4)
    old_path, _ = write_bundle(tmp_path / "old", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    old = load_bundle(old_path)
    gt_path = replace(old, train={**old.train, "instances": "gt"}, version="").save(tmp_path / "old" / "gt.json")
    detector = Detector.load(None)
    assert "true masks" in detector_mismatch(load_bundle(gt_path), detector)
    again = load_bundle(recalibrate(gt_path, cal, tmp_path / "gt", tmp_path / "cache", progress=False).bundle_path)
    assert again.train["calibration_instances"] == "gt" and "true masks" in detector_mismatch(again, detector)
    result = recalibrate(gt_path, cal, tmp_path / "det", tmp_path / "cache", progress=False, instances="detector")
    cut = load_bundle(result.bundle_path)
    assert cut.calibration_detector == detector.version and cut.train["calibration_instances"] == "detector"
    assert detector_mismatch(cut, detector) == "" and list(
        (tmp_path / "cache").glob(f"cups-cal-*-detector-{detector.version}-*")
    )
    # recalibrating that bundle again keeps cutting with the detector
    later = recalibrate(result.bundle_path, cal, tmp_path / "later", tmp_path / "cache", progress=False)
    assert load_bundle(later.bundle_path).calibration_detector == detector.version
