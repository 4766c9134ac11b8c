"""The promotion gate: pure comparisons, and a real LightGBM voter trained on shuffled labels is never promoted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration.risk import choose_threshold
from models.gate import NearestDesign, holdout_metrics, promotion_gate
from models.voter import train_voter


def _m(n_acc: int, n_err: int, n_pos: int, threshold: float = 0.5, n: int | None = None):
    """A model on ``n`` pairs (default ``n_acc + 200``): ``n_acc`` PASS, ``n_err`` of them wrong, ``n_pos`` correct."""
    n = n_acc + 200 if n is None else n
    scores = np.r_[np.ones(n_acc), np.zeros(n - n_acc)]
    correct = np.zeros(n, bool)
    correct[: n_acc - n_err] = True
    correct[n_acc : n_acc + max(n_pos - (n_acc - n_err), 0)] = True
    return holdout_metrics(scores, correct, threshold)


def test_holdout_metrics_count_what_passes() -> None:
    m = holdout_metrics([0.9, 0.8, 0.7, 0.2, 0.95], [True, True, False, True, False], threshold=0.75)
    assert (m.n_accepted, m.n_errors, m.n_positive) == (3, 1, 3)
    assert m.precision == pytest.approx(2 / 3)
    assert m.auto_pass == pytest.approx(2 / 3)
    assert 0 < m.precision_lower_bound < 2 / 3
    never = holdout_metrics([0.9, 0.1], [True, False], threshold=math.inf)
    assert not never.can_pass and never.n_accepted == 0 and never.precision_lower_bound == 0.0
    assert never.to_dict()["threshold"] is None


@pytest.mark.parametrize(
    "old, new, promote",
    [
        (_m(100, 0, 150), _m(120, 0, 150), True),  # more auto-pass, same precision: promote
        (_m(100, 0, 150), _m(100, 0, 150), True),  # equal on both: not worse, promote
        (_m(100, 0, 150), _m(90, 0, 150), False),  # less auto-pass
        (_m(100, 0, 150), _m(130, 4, 150), False),  # more auto-pass bought with wrong PASSes
        (_m(100, 0, 150), _m(0, 0, 150, threshold=math.inf), False),  # passes nothing
    ],
)
def test_gate_table(old, new, promote: bool) -> None:
    decision = promotion_gate(old, new, target=0.995)
    assert decision.promote is promote
    assert any(r.startswith("fails") for r in decision.reasons) is not promote


def test_lower_bound_at_target_is_enough_even_below_the_old_one() -> None:
    old = _m(5000, 0, 5000)
    new = _m(4990, 0, 5000)
    assert new.precision_lower_bound < old.precision_lower_bound
    assert promotion_gate(old, new, target=0.99).new.precision_lower_bound >= 0.99
    assert not promotion_gate(old, new, target=0.99).promote  # ... but its auto-pass is lower
    assert promotion_gate(_m(4990, 0, 5000), _m(5000, 1, 5000), target=0.99).promote


def _world(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three features; the truth depends on the first two, the third is noise."""
    x = rng.standard_normal((n, 3))
    y = (1.6 * x[:, 0] + x[:, 1] + 0.3 * rng.standard_normal(n)) > 0.4
    return x, y


def test_a_voter_trained_on_shuffled_labels_is_rejected() -> None:
    rng = np.random.default_rng(0)
    names = ("a", "b", "noise")
    (x_tr, y_tr), (x_cal, y_cal), (x_ho, y_ho) = (_world(n, rng) for n in (1500, 3000, 2000))
    good = train_voter(x_tr, y_tr, names, rounds=80)
    bad = train_voter(x_tr, rng.permutation(y_tr), names, rounds=80)

    good_t = choose_threshold(good.predict(x_cal), y_cal, target=0.99, delta=0.05)
    bad_t = choose_threshold(bad.predict(x_cal), y_cal, target=0.99, delta=0.05)
    good_m = holdout_metrics(good.predict(x_ho), y_ho, good_t.threshold, 0.05)
    bad_m = holdout_metrics(bad.predict(x_ho), y_ho, bad_t.threshold, 0.05)
    assert good_m.can_pass and good_m.auto_pass > 0.3

    decision = promotion_gate(good_m, bad_m, target=0.99)
    assert not decision.promote, decision.reasons
    # and the other way round, the good voter replaces the degraded one
    assert promotion_gate(bad_m, good_m, target=0.99).promote


def _frozen(n_acc: int, n_err: int):
    """A model on 18,284 frozen calibration pairs, 4,829 of them correct (what `verdict-14f53e9f` held)."""
    return _m(n_acc, n_err, 4829, n=18284)


def test_a_candidate_that_certifies_fewer_frozen_calibration_pairs_is_rejected() -> None:
    station_old, station_new = _m(3, 0, 10), _m(3, 0, 10)  # a station holdout of FLAGs: both pass as little
    assert promotion_gate(station_old, station_new, target=0.995).promote
    frozen_old, frozen_new = _frozen(1163, 1), _frozen(931, 0)  # the refit pushed correct pairs under the line
    assert frozen_new.precision_lower_bound > frozen_old.precision_lower_bound
    decision = promotion_gate(station_old, station_new, 0.995, frozen_old=frozen_old, frozen_new=frozen_new)
    assert not decision.promote
    assert decision.reasons[0] == (
        "fails: auto-pass on the 18284 frozen calibration pairs 19.3% (931 of 4829) vs 24.1% (1162 of 4829)"
    )
    # a refusal by a pair or two reads as one, not as a tie of rounded shares
    near = promotion_gate(
        station_old, station_new, 0.995, frozen_old=_frozen(1163, 1), frozen_new=_frozen(1161, 1)
    ).reasons[0]
    assert near == "fails: auto-pass on the 18284 frozen calibration pairs 24.0% (1160 of 4829) vs 24.1% (1162 of 4829)"
    assert decision.to_dict()["frozen_new"]["n_accepted"] == 931
    kept = promotion_gate(station_old, station_new, 0.995, frozen_old=frozen_old, frozen_new=_frozen(1170, 1))
    assert kept.promote and kept.frozen_old is frozen_old
    with pytest.raises(ValueError, match="both models or of neither"):
        promotion_gate(station_old, station_new, 0.995, frozen_old=frozen_old)


@pytest.mark.parametrize(
    "old, new, promote",
    [
        (_m(0, 0, 150), _m(3, 3, 150), False),  # its only PASSes are wrong: both bounds 0, it is still worse
        (_m(0, 0, 150), _m(3, 0, 150), True),  # right where the old model passed nothing
        (_m(0, 0, 500), _m(444, 1, 500), True),  # one wrong in 444: above the target, better than nothing
        (_m(10, 0, 500), _m(445, 1, 500), True),  # a stronger bound, one wrong PASS in 445
        (_m(3, 0, 150), _m(6, 1, 150), False),  # a stronger bound from one wrong PASS in six
        (_m(100, 2, 500), _m(200, 3, 500), True),  # no worse than the old model's own 98 %
    ],
)
def test_precision_is_compared_by_bound_and_by_what_passed(old, new, promote: bool) -> None:
    assert promotion_gate(old, new, target=0.995).promote is promote


def test_a_holdout_with_no_correct_pair_proves_nothing_without_frozen_pairs() -> None:
    empty_old, empty_new = _m(0, 0, 0, n=0), _m(0, 0, 0, n=0)
    decision = promotion_gate(empty_old, empty_new, target=0.995)
    assert not decision.promote
    assert decision.reasons[0] == (
        "fails: the holdout holds no correct pair and there are no frozen calibration pairs: nothing to compare"
    )
    frozen_old, frozen_new = _frozen(1163, 1), _frozen(1170, 1)
    assert promotion_gate(empty_old, empty_new, 0.995, frozen_old=frozen_old, frozen_new=frozen_new).promote


def test_a_pair_the_hard_rules_refuse_never_passes_even_at_a_zero_threshold() -> None:
    m = holdout_metrics([0.0, 0.0, 0.5], [False, False, True], threshold=0.0)
    assert (m.n_accepted, m.n_errors) == (1, 0)


@pytest.mark.parametrize(
    "nearest, promote, line",
    [
        (NearestDesign(48, 40, 40), True, "ok: nearest design on 48 holdout coins: 83.3% (40) vs 83.3% (40)"),
        (NearestDesign(48, 40, 46), True, "ok: nearest design on 48 holdout coins: 95.8% (46) vs 83.3% (40)"),
        (NearestDesign(48, 40, 39), False, "fails: nearest design on 48 holdout coins: 81.2% (39) vs 83.3% (40)"),
        (NearestDesign(0, 0, 0), False, "fails: no holdout coin to measure the new station references on"),
    ],
)
def test_new_station_references_must_put_as_many_holdout_coins_nearest_their_design(
    nearest: NearestDesign, promote: bool, line: str
) -> None:
    """The voter in force kept with new references: its frozen figures are the old model's to the pair, and a
    station holdout of FLAGs passes nothing for either. Only the references' own effect can tell them apart."""
    station, frozen = _m(0, 0, 1), _frozen(3450, 0)
    tie = promotion_gate(station, station, 0.995, frozen_old=frozen, frozen_new=frozen)
    assert tie.promote and tie.nearest_design is None and tie.to_dict()["nearest_design"] is None
    decision = promotion_gate(station, station, 0.995, frozen_old=frozen, frozen_new=frozen, nearest_design=nearest)
    assert decision.promote is promote
    assert line in decision.reasons and (decision.reasons[0] == line) is not promote
    assert decision.nearest_design is nearest
    shares = decision.to_dict()["nearest_design"]
    assert (shares["n_coins"], shares["old_right"], shares["new_right"]) == (
        nearest.n_coins,
        nearest.old_right,
        nearest.new_right,
    )
    assert shares["new_share"] == (nearest.new_right / nearest.n_coins if nearest.n_coins else None)


def test_nearest_design_counts_must_fit_the_coins_measured() -> None:
    with pytest.raises(ValueError, match="right on 5 and 3 of 4 coins"):
        NearestDesign(4, 5, 3)


def test_holdout_metrics_count_only_the_passes_the_station_makes() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random(3000) < 0.7
    scores = np.where(correct, rng.uniform(0.3, 1.0, 3000), rng.uniform(0.0, 0.55, 3000))
    cal, hold = slice(0, 1500), slice(1500, 3000)
    loose = choose_threshold(scores[cal], correct[cal], target=0.8)
    assert loose.floored  # certified far under 0.5: the station holds cups to the floor
    m = holdout_metrics(scores[hold], correct[hold], loose.threshold)
    station = np.array([loose.accepts(float(v)) for v in scores[hold]])
    assert m.n_accepted == int(station.sum()) and m.n_errors == int((station & ~correct[hold]).sum())
    assert m.auto_pass == pytest.approx((station & correct[hold]).sum() / correct[hold].sum())
    assert (m.threshold, m.applied) == (loose.threshold, 0.5)
    strict = choose_threshold(scores[cal], correct[cal], target=0.99)
    assert holdout_metrics(scores[hold], correct[hold], strict.threshold).applied == strict.threshold > 0.5


def test_a_candidate_is_not_promoted_on_passes_under_the_floor() -> None:
    # the candidate puts 900 of 1000 good pairs at 0.1-0.5: over its certified 0.08, under the floor the station
    # holds cups to; the model in force passes 600 of them at 0.6 or more
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(1000, bool), np.zeros(50, bool)]
    old = np.r_[rng.uniform(0.6, 1.0, 600), rng.uniform(0.1, 0.5, 400), rng.uniform(0.0, 0.05, 50)]
    new = np.r_[rng.uniform(0.6, 1.0, 100), rng.uniform(0.1, 0.5, 900), rng.uniform(0.0, 0.05, 50)]
    decision = promotion_gate(holdout_metrics(old, y, 0.6), holdout_metrics(new, y, 0.08), target=0.9)
    assert (decision.old.n_accepted, decision.new.n_accepted) == (600, 100)
    assert not decision.promote
    assert "fails: auto-pass 10.0% (100 of 1000) vs 60.0% (600 of 1000)" in decision.reasons
