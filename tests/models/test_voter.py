"""The voter: trained on toy cups it separates pure from contaminated cups, and it works for types enrolled later."""

from __future__ import annotations

import numpy as np
import pytest

from models.features import EMBEDDING_FEATURES, FEATURES, feature_vector, pair_evidence
from models.gallery import Gallery
from models.gallery_view import GalleryView
from models.train.voter import auc
from models.voter import (
    WEAKEST_COIN_FALLS,
    WEAKEST_COIN_RISES,
    Voter,
    monotone_constraints,
    passable,
    train_voter,
)
from tests.models.verdict_world import DIM, labelled_cups, table, trained


def test_voter_separates_pure_from_contaminated_on_new_cups() -> None:
    world, gallery, pooler, voter = trained()
    view = GalleryView.from_gallery(gallery)
    x, _, y = table(view, world, labelled_cups(world, range(20), per_type=2), pooler)
    p = voter.predict(x)
    ok = passable(x, EMBEDDING_FEATURES)
    assert ok[y].mean() > 0.3  # pure cups whose every coin shows its reverse
    assert np.all(p[~ok] == 0.0)  # the others never pass, whatever the booster thinks
    assert auc(p[ok], y[ok]) > 0.95
    assert p[y & ok].mean() > 0.8
    assert p[~y].mean() < 0.2


def test_type_enrolled_after_training_is_verified_without_retraining() -> None:
    world, _, pooler, voter = trained()
    gallery = Gallery(DIM, "toy")
    world.enrol(gallery, range(20))
    new_types = range(20, 40)
    world.enrol(gallery, new_types)  # enrolled after the voter was trained
    view = GalleryView.from_gallery(gallery)
    items = labelled_cups(world, new_types, per_type=2)
    x, _, y = table(view, world, items, pooler)
    p = voter.predict(x)
    ok = passable(x, EMBEDDING_FEATURES)
    assert auc(p[ok], y[ok]) > 0.95
    pure = world.cup(33, 8, reverse_share=1.0)
    mixed = world.cup(33, 8, intruders=[25], reverse_share=1.0)
    cand = view.type_index[world.type_id(33)]
    p_pure, p_mixed = voter.predict(
        np.stack(
            [feature_vector(pair_evidence(view, c, cand, pooler).features, EMBEDDING_FEATURES) for c in (pure, mixed)]
        )
    )
    assert p_pure > 0.5 > p_mixed


def test_obverse_only_cup_is_not_trusted() -> None:
    world, gallery, pooler, voter = trained()
    view = GalleryView.from_gallery(gallery)
    cand = view.type_index[world.type_id(4)]
    reverses = pair_evidence(view, world.cup(4, 8, reverse_share=1.0), cand, pooler)
    obverse = pair_evidence(view, world.cup(4, 8, obverse_only=True), cand, pooler)
    assert obverse.features["n_informative"] == 0
    assert voter.predict(feature_vector(obverse.features, EMBEDDING_FEATURES))[0] == 0.0
    assert voter.predict(feature_vector(reverses.features, EMBEDDING_FEATURES))[0] > 0.5


def test_one_coin_on_the_shared_obverse_keeps_the_cup_from_passing() -> None:
    """That coin may be any member of the family: the other coins' reverses cannot vouch for it."""
    world, gallery, pooler, voter = trained()
    view = GalleryView.from_gallery(gallery)
    cand = view.type_index[world.type_id(6)]
    cup = world.cup(6, 8, reverse_share=1.0)
    one_obverse = world.cup(6, 1, obverse_only=True)
    mixed = type(cup)(
        embeddings=np.concatenate([cup.embeddings, one_obverse.embeddings]),
        confidence=np.ones(9, np.float32),
        partial=np.zeros(9, bool),
        visible=np.ones(9, np.float32),
        diameter_mm=np.full(9, np.nan, np.float32),
        focus=np.full(9, 6.0, np.float32),
    )
    ev = pair_evidence(view, mixed, cand, pooler)
    assert ev.features["n_informative"] == 8
    assert voter.predict(feature_vector(ev.features, EMBEDDING_FEATURES))[0] == 0.0


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"n_coins": 5, "n_objects": 0, "n_informative": 5}, True),
        ({"n_coins": 5, "n_objects": 0, "n_informative": 4}, False),
        ({"n_coins": 5, "n_objects": 1, "n_informative": 5}, False),
        ({"n_coins": 0, "n_objects": 0, "n_informative": 0}, False),
    ],
)
def test_hard_rules(row: dict[str, float], expected: bool) -> None:
    names = ["n_coins", "n_objects", "n_informative"]
    assert passable(np.array([[row[k] for k in names]]), names).tolist() == [expected]
    # a declared lookalike refuses the pair too; a voter without that column keeps the three rules
    for declared in (0.0, 1.0):
        full = [*names, "cand_declared_lookalike"]
        x = np.array([[*(row[k] for k in names), declared]])
        assert passable(x, full).tolist() == [expected and not declared]


def test_the_fewest_coins_rule() -> None:
    names = ["n_coins", "n_objects", "n_informative"]
    x = np.array([[n, 0, n] for n in range(5)], np.float64)
    assert passable(x, names).tolist() == [False, True, True, True, True]
    assert passable(x, names, min_coins=3).tolist() == [False, False, False, True, True]
    with pytest.raises(ValueError, match="min_coins must be >= 1"):
        passable(x, names, min_coins=0)
    # a voter trained under the rule never learns from, and scores 0, the smaller cups
    rng = np.random.default_rng(1)
    n = rng.integers(1, 8, 400).astype(np.float64)
    y = rng.random(400) < 0.5
    feats = np.stack([n, np.zeros(400), n, y + rng.normal(0, 0.3, 400)], axis=1)
    cols = [*names, "s"]
    voter = train_voter(feats, y, cols, rounds=20, min_coins=3)
    assert voter.min_coins == 3 and voter.info["rows"] == int((n >= 3).sum())
    p = voter.predict(feats)
    assert np.all(p[n < 3] == 0.0) and np.all(p[n >= 3] > 0.0)
    with pytest.raises(ValueError, match="min_coins must be >= 1"):
        train_voter(feats, y, cols, min_coins=0)


def test_voter_round_trips_through_text(tmp_path) -> None:
    _, _, _, voter = trained()
    path = voter.save(tmp_path / "voter.txt")
    again = Voter.load(path)
    x = np.random.default_rng(0).normal(size=(5, len(EMBEDDING_FEATURES)))
    assert again.feature_names == EMBEDDING_FEATURES
    np.testing.assert_allclose(again.predict(x), voter.predict(x))
    assert again.min_coins == 1 and Voter.load(path, min_coins=4).min_coins == 4
    with pytest.raises(ValueError, match="min_coins must be >= 1"):
        Voter.load(path, min_coins=0)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [(np.zeros((4, 3)), np.ones(4, bool), "both"), (np.zeros((0, 3)), np.zeros(0, bool), "non-empty")],
)
def test_train_voter_rejects_degenerate_labels(x, y, message) -> None:
    with pytest.raises(ValueError, match=message):
        train_voter(x, y, ["a", "b", "c"])


def test_heavier_negatives_lower_the_scores_of_wrong_pairs_that_look_right() -> None:
    # one feature; wrong pairs overlap the correct ones in its upper range
    rng = np.random.default_rng(4)
    good = rng.normal(1.0, 0.5, 3000)
    bad = rng.normal(0.0, 0.5, 3000)
    x = np.concatenate([good, bad])[:, None]
    y = np.concatenate([np.ones(3000, bool), np.zeros(3000, bool)])
    plain = train_voter(x, y, ["s"], rounds=60)
    heavy = train_voter(x, y, ["s"], rounds=60, negative_weight=5.0)
    assert heavy.info["negative_weight"] == 5.0 and "negative_weight" not in plain.info
    grid = np.linspace(-0.5, 1.5, 9)[:, None]
    assert np.all(heavy.predict(grid) <= plain.predict(grid) + 1e-9)
    assert heavy.predict(np.array([[0.5]]))[0] < plain.predict(np.array([[0.5]]))[0] - 0.2  # where they overlap
    with pytest.raises(ValueError, match="negative weight"):
        train_voter(x, y, ["s"], negative_weight=0.0)


def test_pair_weights_count_a_group_of_pairs_more_or_less() -> None:
    # two groups whose wrong pairs overlap the correct ones differently; weighting a group moves the voter its way
    rng = np.random.default_rng(5)
    good = rng.normal(1.0, 0.5, 2000)
    bad = rng.normal(0.0, 0.5, 2000)
    x = np.concatenate([good, bad])[:, None]
    y = np.concatenate([np.ones(2000, bool), np.zeros(2000, bool)])
    twice_bad = np.where(y, 1.0, 2.0)
    by_weight = train_voter(x, y, ["s"], rounds=40, weights=twice_bad)
    by_negative = train_voter(x, y, ["s"], rounds=40, negative_weight=2.0)
    assert by_weight.model_text() == by_negative.model_text()  # per-pair weights as the negative weight does it
    both = train_voter(x, y, ["s"], rounds=40, weights=twice_bad, negative_weight=2.0)
    four = train_voter(x, y, ["s"], rounds=40, negative_weight=4.0)
    assert both.model_text() == four.model_text()  # the two multiply
    assert train_voter(x, y, ["s"], rounds=40, weights=np.ones(4000)).model_text() == (
        train_voter(x, y, ["s"], rounds=40).model_text()
    )
    for bad_weights in (np.ones(3), np.zeros(4000), np.full(4000, np.nan)):
        with pytest.raises(ValueError, match="one finite weight > 0 per pair"):
            train_voter(x, y, ["s"], weights=bad_weights)


def test_a_monotone_voter_never_trusts_a_cup_more_because_a_coin_looks_less_like_the_candidate(tmp_path) -> None:
    """Training data where a very dissimilar weakest coin happens to come with correct pairs (as a washer boxed
    as a coin can): the free voter rewards it, the monotone one cannot, and a continued boosting stays monotone."""
    rng = np.random.default_rng(7)
    n = 4000
    sim_min = rng.uniform(0.0, 1.0, n)
    other = rng.normal(0.0, 1.0, n)
    y = rng.random(n) < np.where(sim_min < 0.2, 0.9, np.clip(sim_min, 0.0, 1.0))  # the low end misleads
    x = np.stack([sim_min, other], axis=1)
    names = ["sim_min", "other"]
    assert monotone_constraints([*names, "n_not_top"]) == [1, 0, -1]
    assert set(FEATURES) >= WEAKEST_COIN_RISES | WEAKEST_COIN_FALLS  # a misspelt name would go unconstrained
    free = train_voter(x, y, names, rounds=80)
    mono = train_voter(x, y, names, rounds=80, monotone=True)
    grid = np.stack([np.linspace(0.0, 1.0, 41), np.zeros(41)], axis=1)
    assert np.any(np.diff(free.predict(grid)) < -0.05)  # the free voter learnt the misleading low end
    assert np.all(np.diff(mono.predict(grid)) >= 0.0)
    assert mono.monotone and mono.info["monotone"] and not free.monotone and "monotone" not in free.info
    again = Voter.load(mono.save(tmp_path / "voter.txt"))
    assert again.monotone
    refit = train_voter(x[:500], y[:500], names, rounds=20, init_model=again)  # as the nightly refit does
    assert refit.monotone and np.all(np.diff(refit.predict(grid)) >= 0.0)
