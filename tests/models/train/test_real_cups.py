"""Cups of labelled real coins: names, folds, draws and pairs on known coins; the real detector and embedder on a
few real crops (skipped without ``../shared``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.features import FEATURES, CupCoins
from models.gallery_view import GalleryView
from models.train.real_cups import (
    MAX_COINS,
    RealCoins,
    RealParts,
    concat_coins,
    crop_files,
    crop_photo,
    draw_cups,
    fold_rows,
    lookalike_types,
    real_gallery,
    real_pairs,
    real_test_table,
    real_training_tables,
    relaid_scenes,
    scene_groups,
)
from tests.models.train.real_helpers import write_tiny_real_root


def _coins(types: list[str], per_type: int, photos_per_type: int, seed: int = 0, prefix: str = "p") -> RealCoins:
    """Coins whose embedding is their type's direction plus noise (types along the first axes)."""
    rng = np.random.default_rng(seed)
    dim = 16
    rows, tids, photos = [], [], []
    for k, t in enumerate(types):
        for i in range(per_type):
            v = np.zeros(dim, np.float32)
            v[k % dim] = 1.0
            v += rng.normal(0, 0.15, dim).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
            tids.append(t)
            photos.append(f"{prefix}{t}-{i % photos_per_type}")
    n = len(rows)
    coins = CupCoins(
        embeddings=np.stack(rows).astype(np.float32),
        confidence=np.full(n, 0.9, np.float32),
        partial=np.zeros(n, bool),
        visible=np.ones(n, np.float32),
        diameter_mm=np.full(n, np.nan, np.float32),
        focus=np.full(n, 6.0, np.float32),
    )
    return RealCoins(coins, np.array(tids), np.array(photos), tuple(f"{p}_{i}.jpg" for i, p in enumerate(photos)))


def test_crop_photo_names_the_photo_of_euro_and_won_crop_names() -> None:
    assert crop_photo("crops/train/10c/IMG_4187_3.jpg") == "IMG_4187"
    assert crop_photo("train_12_40.jpg") == "train_12"
    assert crop_photo("20201011_153140.jpg-151.jpg") == "20201011_153140"
    assert crop_photo("lonely.jpg") == "lonely"


def test_folds_keep_every_crop_of_a_photo_together() -> None:
    coins = _coins(["a", "b", "c"], per_type=30, photos_per_type=6)
    fold = coins.fold(2)
    assert set(fold.tolist()) == {0, 1}
    for photo in set(coins.photo.tolist()):
        assert len(set(fold[coins.photo == photo].tolist())) == 1


def _named(photos: list[tuple[str, str, int]]) -> RealCoins:
    """Coins of the given ``(photo, type, count)`` crops (embeddings of :func:`_coins`, renamed)."""
    rows = [(p, t) for p, t, k in photos for _ in range(k)]
    base = _coins(["x"], per_type=len(rows), photos_per_type=1)
    names = np.array([p for p, _ in rows])
    return RealCoins(
        base.coins, np.array([t for _, t in rows]), names, tuple(f"{p}_{i}.jpg" for i, p in enumerate(names))
    )


WON_PHOTOS = [f"20201011_{t}" for t in ("153140", "153147", "153156", "185644", "185649", "185655")] + [
    f"20201011_{t}" for t in ("190613", "190618", "190626")
]


def test_won_reshots_of_one_pile_taken_seconds_apart_land_in_one_fold() -> None:
    coins = _named([(p, t, 6) for p in WON_PHOTOS for t in ("10won", "100won")])
    fold = coins.fold(2)
    assert set(fold.tolist()) == {0, 1}
    for minute in ("1531", "1856", "1906"):
        in_pile = np.char.startswith(coins.photo.astype(str), f"20201011_{minute}")
        assert len(set(fold[in_pile].tolist())) == 1, minute
    assert len(set(coins.scene.tolist())) == 3


def test_euro_reshots_numbered_in_a_row_with_the_same_coins_are_one_scene() -> None:
    pile_a = [(f"train_{i}", t, k + (i == 3)) for i in range(1, 8) for t, k in (("1e", 6), ("5c", 9), ("10c", 4))]
    pile_b = [(f"train_{i}", t, k) for i in range(8, 12) for t, k in (("10c", 24), ("20c", 23))]
    coins = _named(pile_a + pile_b + [("IMG_4187", "10c", 50), ("lonely", "1e", 3)])
    scene = scene_groups(coins.photo, coins.type_id)
    assert set(scene.tolist()) == {"train_1", "train_8", "IMG_4187", "lonely"}
    fold = coins.fold(2)
    for s in set(scene.tolist()):
        assert len(set(fold[scene == s].tolist())) == 1
    # a photo numbered far from the last one is another scene, whatever its coins
    far = _named([("train_1", "1e", 6), ("train_9", "1e", 6)])
    assert len(set(far.scene.tolist())) == 2


def test_val_coins_come_from_scenes_no_training_cup_or_gallery_holds() -> None:
    piles = [(3 * k + i, 4 + 4 * k, 10 - 2 * k) for k in range(4) for i in (1, 2, 3)]
    coins = _named([(f"train_{n}", t, c) for n, e, f in piles for t, c in (("1e", e), ("5c", f))])
    assert sorted(set(coins.scene.tolist())) == ["train_1", "train_10", "train_4", "train_7"]  # four piles
    folds = fold_rows(coins)
    scene = coins.scene
    assert sum(fr.val.size > 0 for fr in folds) == 2
    for fr in folds:
        train, val, refs = (set(scene[r].tolist()) for r in (fr.train, fr.val, fr.refs))
        assert train and not val & train and not val & refs and not train & refs
    every_val = set(scene[np.concatenate([fr.val for fr in folds])].tolist())
    assert not every_val & set(scene[np.concatenate([fr.refs for fr in folds])].tolist())
    assert sorted(np.concatenate([np.concatenate([fr.train, fr.val]) for fr in folds]).tolist()) == list(range(coins.n))


def test_the_real_won_photos_are_one_set_of_coins_laid_out_three_times_and_never_validate(real_data: Path) -> None:
    files = crop_files(real_data / "won_cho0h5" / "crops" / "train")
    photo = np.array([crop_photo(f) for f in files])
    coins = _named([(p, f.parent.name, 1) for p, f in zip(photo.tolist(), files, strict=True)])
    scenes = ["20201011_153140", "20201011_185644", "20201011_190613"]
    assert sorted(set(coins.scene.tolist())) == scenes  # three shots of each layout are one scene
    # the three layouts hold the same coins (36/24/41/10 of the four types, give or take one): a validation
    # scene among them would be validated on coins the training cups hold
    assert relaid_scenes(coins) == set(scenes)
    folds = fold_rows(coins)
    assert all(fr.val.size == 0 for fr in folds)
    assert set(coins.photo[np.concatenate([fr.train for fr in folds])].tolist()) == set(photo.tolist())


def test_drawn_cups_are_pure_or_hold_one_or_two_intruders() -> None:
    coins = _coins(["a", "b", "c", "d"], per_type=20, photos_per_type=4)
    strangers = _coins(["x", "y"], per_type=10, photos_per_type=2, seed=1, prefix="s")
    rows = np.arange(coins.n)
    lookalikes = {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]}
    cache = draw_cups(coins, rows, lookalikes, 400, strangers=strangers, seed=3, max_coins=12)
    sizes = np.diff(cache.offsets)
    assert sizes.min() >= 2 and sizes.max() <= 12
    relations = set()
    for i in range(cache.n_cups):
        a, b = int(cache.offsets[i]), int(cache.offsets[i + 1])
        types = cache.true_type[a:b]
        intruders = types[types != cache.expected[i]]
        if cache.kind[i] == "pure":
            assert intruders.size == 0 and cache.contaminant[i] == ""
            continue
        relations.add(str(cache.contaminant[i]))
        assert 1 <= intruders.size <= 2
        if cache.contaminant[i] == "stranger":
            assert set(intruders.tolist()) <= {"x", "y"}
            # the stranger's observations are the stranger's own
            k = a + int(np.flatnonzero(types != cache.expected[i])[0])
            assert np.isclose(np.abs(strangers.coins.embeddings @ cache.embeddings[k]).max(), 1.0, atol=1e-5)
        elif cache.contaminant[i] == "lookalike":
            assert set(intruders.tolist()) <= set(lookalikes[str(cache.expected[i])])
        else:
            assert not set(intruders.tolist()) & set(lookalikes[str(cache.expected[i])] + ["x", "y"])
    assert relations == {"lookalike", "other", "stranger"}
    assert 0.35 < float(np.mean(cache.kind == "pure")) < 0.65
    # without strangers no intruder comes from elsewhere
    plain = draw_cups(coins, rows, lookalikes, 200, seed=3)
    assert set(plain.true_type.tolist()) <= {"a", "b", "c", "d"} and "stranger" not in set(plain.contaminant.tolist())
    assert np.diff(plain.offsets).max() <= MAX_COINS


def test_drawing_needs_two_types() -> None:
    coins = _coins(["a"], per_type=5, photos_per_type=2)
    with pytest.raises(ValueError, match="at least two types"):
        draw_cups(coins, np.arange(coins.n), {}, 3)


def test_pairs_are_correct_only_for_a_pure_cup_and_its_own_type() -> None:
    coins = _coins(["a", "b", "c", "d", "e"], per_type=10, photos_per_type=2)
    look = {t: [u] for t, u in zip("abcde", "bcdea", strict=True)}
    cache = draw_cups(coins, np.arange(coins.n), look, 100, seed=1)
    pairs = real_pairs(cache, list("abcde"), look, seed=2, negatives=2)
    for p in pairs:
        assert p.correct == (p.kind == "pure" and p.relation == "true")
        if p.relation == "lookalike":
            assert p.candidate in look[str(cache.expected[p.cup])]
        if p.relation != "true":
            assert p.kind == "pure" and p.candidate != cache.expected[p.cup]
    per_pure = [sum(1 for p in pairs if p.cup == i) for i in range(cache.n_cups) if cache.kind[i] == "pure"]
    assert set(per_pure) == {4}  # itself, one lookalike, two others


def test_gallery_and_lookalikes_come_from_the_given_rows_only() -> None:
    coins = _coins(["a", "b", "c"], per_type=12, photos_per_type=3)
    refs = np.flatnonzero(coins.fold(2) == 0)
    gallery = real_gallery(coins, refs, "v")
    assert sorted(e.source for e in gallery.entries.values()) == sorted(coins.source[int(i)] for i in refs)
    view = GalleryView.from_gallery(gallery)
    look = lookalike_types(coins, np.flatnonzero(coins.fold(2) == 1), view, k=1)
    assert all(len(v) == 1 and v[0] != t for t, v in look.items())
    joined = concat_coins([coins, coins])
    assert joined.n == 2 * coins.n and joined.source[: coins.n] == coins.source


@pytest.fixture(scope="module")
def parts() -> RealParts:
    from models.bundle import load_bundle
    from models.detector import Detector
    from models.embedder import Embedder
    from models.pooling import SetPooler

    bundle = load_bundle()
    return RealParts(
        Embedder.load(bundle.path(bundle.embedder_file), threads=1),
        Detector.load(bundle.path(bundle.detector_dir)),
        SetPooler.load(bundle.path(bundle.pooler_file)),  # type: ignore[arg-type]
        bundle.preprocess.crop_size,
        bundle.preprocess.gem_p,
    )


@pytest.fixture(scope="module")
def tiny_real(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_real_root(real_data, tmp_path_factory.mktemp("real"))


def test_real_training_cups_never_match_a_coin_against_a_crop_of_its_own_photo(
    tiny_real: Path, parts: RealParts
) -> None:
    train, val, info = real_training_tables(tiny_real, parts, 40, progress=False)
    assert info["real_coins"] > 0.9 * sum(1 for _ in tiny_real.rglob("train/*/*.jpg"))
    assert len(train.pairs) > 40 and len(val.pairs) > 0
    # the won photos are one set of coins laid out anew (relaid_scenes): only euro piles validate
    assert info["real_val_photos"] >= 1 and 0 < info["real_val_coins"] < info["real_coins"] / 2
    assert set(train.y.tolist()) == {False, True}
    # a coin judged against its own crop would score a similarity of 1
    sim_max = train.x[:, FEATURES.index("sim_max")]
    assert np.nanmax(sim_max) < 0.995
    assert {p.contaminant for p in train.pairs if p.kind == "contaminated"} <= {"lookalike", "other", "stranger"}


def test_real_test_cups_leave_out_a_currency_whose_test_crops_share_photos_with_its_train_crops(
    tiny_real: Path, parts: RealParts
) -> None:
    test = real_test_table(tiny_real, parts, 30, progress=False)
    assert test.currencies == ("euro",)
    assert "won" in test.skipped and "photos also gave train crops" in test.skipped["won"]
    assert len(test.table.pairs) >= 30
    # won test coins still come into euro cups as strangers
    assert any(p.contaminant == "stranger" for p in test.table.pairs)
