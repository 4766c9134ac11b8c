"""The review score's parts: uncertainty measured against the room on each side of the threshold, disagreement
between the pooled score and the coins, rarity of the type's rulings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from db.repository import VerdictRepository
from db.review import ReviewWeights, informativeness
from models.types import Decision
from tests.db.factories import make_record

W = ReviewWeights()


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.97, 0.995])
def test_a_cup_at_the_threshold_is_most_uncertain_and_a_sure_one_is_not(threshold: float) -> None:
    assert informativeness(threshold, threshold, 0.0, 0, W).uncertainty == pytest.approx(1.0)
    assert informativeness(1.0, threshold, 0.0, 0, W).uncertainty == pytest.approx(0.0)
    # a coin toss is uncertain whatever the threshold
    assert informativeness(0.5, threshold, 0.0, 0, W).uncertainty == pytest.approx(1.0)


def test_with_a_strict_threshold_a_sure_pass_is_not_taken_for_a_close_call() -> None:
    # 0.999 lies 0.004 above 0.995, most of the room above the threshold: not a close call (1 - |p - t| would
    # have scored it 0.996)
    assert informativeness(0.999, 0.995, 0.0, 0, W).uncertainty == pytest.approx(0.2)


def test_uncertainty_falls_away_from_the_threshold_on_both_sides() -> None:
    above = [informativeness(p, 0.9, 0.0, 0, W).uncertainty for p in np.linspace(0.9, 1.0, 11)]
    below = [informativeness(p, 0.9, 0.0, 0, W).uncertainty for p in np.linspace(0.9, 0.5, 11)]
    assert all(a >= b for a, b in itertools.pairwise(above))
    # below the threshold it falls until the coin-toss term takes over near 0.5
    assert below[0] == pytest.approx(1.0) and min(below) > 0.5 and below[-1] == pytest.approx(1.0)
    assert all(0.0 <= u <= 1.0 for u in above + below)


def test_disagreement_is_the_gap_between_the_coins_and_the_pooled_score() -> None:
    # the voter is sure (p = 1) but half the coins look like another type
    assert informativeness(1.0, 0.9, 0.5, 0, W).disagreement == pytest.approx(0.5)
    # the voter says 0.3 and 70 % of the coins disagree: they agree with each other
    assert informativeness(0.3, 0.9, 0.7, 0, W).disagreement == pytest.approx(0.0)


def test_rarity_and_the_weighted_sum() -> None:
    assert [informativeness(0.9, 0.9, 0.0, n, W).rarity for n in (0, 1, 3)] == pytest.approx([1.0, 0.5, 0.25])
    info = informativeness(0.95, 0.9, 0.4, 1, ReviewWeights(uncertainty=2.0, disagreement=3.0, rarity=5.0))
    assert info.score == pytest.approx(2.0 * info.uncertainty + 3.0 * info.disagreement + 5.0 * info.rarity)
    assert (info.uncertainty, info.disagreement, info.rarity) == pytest.approx((0.5, 0.35, 0.5))


def test_an_object_in_a_cup_is_counted_as_neither_a_coin_nor_a_mismatch(repo: VerdictRepository) -> None:
    # two coins, one of another type, and an object (logged as a coin row with no match)
    record = make_record(5, top_types=("eur_1", "eur_2", None), decision=Decision.FLAG, p_correct=0.2)
    repo.log_verdict(record)
    (item,) = repo.review_queue(limit=5)
    assert (item.n_coins, item.mismatch_share) == (2, 0.5)
    assert item.n_instances == 3  # the photograph numbers the object 3: a ruling must be able to reach it
