"""The review score's parts: uncertainty measured against the room on each side of the threshold, disagreement
between the pooled score and the coins, rarity of the type's rulings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from db.repository import VerdictRepository
from db.review import ReviewWeights, informativeness
from db.schema import LabelKind
from models.types import Decision
from tests.db.factories import SUPERVISOR, make_record

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
    # the voter is sure (p = 1) but half the coins look like another type: one such coin makes the cup wrong
    assert informativeness(1.0, 0.9, 0.5, 0, W).disagreement == pytest.approx(1.0)
    # the voter says 0.3 and 70 % of the coins look like another type: both say wrong, the voter less surely
    assert informativeness(0.3, 0.9, 0.7, 0, W).disagreement == pytest.approx(0.3)
    # every coin matches the expected type and the voter is sure the cup is right: they agree
    assert informativeness(1.0, 0.9, 0.0, 0, W).disagreement == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("p", "share", "decision", "disagreement"),
    [
        (0.02, 0.1, "FLAG", 0.02),  # 1 coin in 10 of another type, the voter sure it is wrong: they agree (was 0.88)
        (0.02, 0.0, "FLAG", 0.98),  # every coin of its type, the voter sure it is wrong: they disagree
        (0.996, 0.1, "PASS", 0.996),  # a PASS with a coin of another type: they disagree (was 0.096)
        (0.50, 0.5, "FLAG", 0.5),  # half the coins of another type, the voter tossing a coin (was 0.0)
    ],
)
def test_one_coin_of_another_type_makes_the_coins_call_the_cup_wrong(
    p: float, share: float, decision: str, disagreement: float
) -> None:
    """The share of mismatched coins was set against the voter's chance that the cup is wrong, so a voter and coins
    that both said "wrong" scored as disagreeing, and a PASS despite a wrong-looking coin scored as agreeing."""
    assert informativeness(p, 0.995, share, 0, W).disagreement == pytest.approx(disagreement)


def test_the_queue_puts_a_pass_with_a_coin_of_another_type_above_a_flag_everything_agrees_on(
    repo: VerdictRepository,
) -> None:
    agree = repo.log_verdict(
        make_record(31, top_types=("eur_1",) * 9 + ("eur_2",), decision=Decision.FLAG, p_correct=0.02, threshold=0.995)
    )
    odd_pass = repo.log_verdict(
        make_record(32, top_types=("eur_1",) * 9 + ("eur_2",), decision=Decision.PASS, p_correct=0.996, threshold=0.995)
    )
    by_cup = {it.cup_id: it for it in repo.review_queue(limit=5)}
    first, second = repo.cup_of_verdict(odd_pass), repo.cup_of_verdict(agree)
    assert list(by_cup) == [first, second]
    assert by_cup[first].disagreement == pytest.approx(0.996) and by_cup[second].disagreement == pytest.approx(0.02)


def test_rarity_and_the_weighted_sum() -> None:
    assert [informativeness(0.9, 0.9, 0.0, n, W).rarity for n in (0, 1, 3)] == pytest.approx([1.0, 0.5, 0.25])
    info = informativeness(0.95, 0.9, 0.4, 1, ReviewWeights(uncertainty=2.0, disagreement=3.0, rarity=5.0))
    assert info.score == pytest.approx(2.0 * info.uncertainty + 3.0 * info.disagreement + 5.0 * info.rarity)
    assert (info.uncertainty, info.disagreement, info.rarity) == pytest.approx((0.5, 0.95, 0.5))


def test_an_object_in_a_cup_is_counted_as_neither_a_coin_nor_a_mismatch(repo: VerdictRepository) -> None:
    # two coins, one of another type, and an object (logged as a coin row with no match)
    record = make_record(5, top_types=("eur_1", "eur_2", None), decision=Decision.FLAG, p_correct=0.2)
    repo.log_verdict(record)
    (item,) = repo.review_queue(limit=5)
    assert (item.n_coins, item.mismatch_share) == (2, 0.5)
    assert item.n_instances == 3  # the photograph numbers the object 3: a ruling must be able to reach it


def test_a_cup_whose_coins_alone_were_ruled_on_stays_unlabelled(repo: VerdictRepository) -> None:
    """A ruling on one coin made its cup "labelled": it dropped to the end of the queue, the window ticked it and
    skipped it as the next cup to rule on, while the retrain (which learns from cups) never used it."""
    cups = [
        repo.cup_of_verdict(
            repo.log_verdict(make_record(40 + k, top_types=("eur_1", "eur_2"), decision=Decision.FLAG, p_correct=0.5))
        )
        for k in range(3)
    ]
    coin_only, whole, untouched = cups
    repo.relabel(SUPERVISOR, coin_only, LabelKind.NOT_A_COIN, coin_index=1)
    repo.relabel(SUPERVISOR, whole, LabelKind.CONFIRMED)

    queue = repo.review_queue(limit=10)
    assert {it.cup_id: it.labelled for it in queue} == {coin_only: False, whole: True, untouched: False}
    assert queue[-1].cup_id == whole  # only the cup ruled on as a whole goes to the end
    assert {it.cup_id: it.rarity for it in queue}[coin_only] == pytest.approx(0.5)  # one eur_1 cup labelled, not two
    assert [c.cup_id for c in repo.training_export().cups] == [whole]  # what the retrain learns from
    assert [(a.target.split(":")[0], a.new_value) for a in repo.audit_trail(coin_only)] == [("coin", "not_a_coin")]

    repo.relabel(SUPERVISOR, coin_only, LabelKind.CONFIRMED)  # now the whole cup
    assert {it.cup_id: it.labelled for it in repo.review_queue(limit=10)}[coin_only]
