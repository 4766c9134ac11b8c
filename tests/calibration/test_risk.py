"""Threshold choice with a precision guarantee: exact binomial tails, LTT walk, simulation of the guarantee."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from calibration.risk import (
    PASS_FLOOR,
    ThresholdChoice,
    binom_cdf,
    choose_threshold,
    clopper_pearson_lower,
    confidence_text,
    highest_certified_target,
    ltt_p_value,
    min_accepted_for_rejection,
    passes,
    precision_coverage_curve,
    station_passes,
)


def _brute_cdf_exact(k: int, n: int, p: float) -> float:
    """Exact rational sum of the binomial terms."""
    pf = Fraction(p)
    return float(sum(math.comb(n, i) * pf**i * (1 - pf) ** (n - i) for i in range(k + 1)))


def _brute_cdf_log(k: int, n: int, p: float) -> float:
    """Big-integer binomial coefficients, terms summed in floating point (for large n)."""
    return sum(math.exp(math.log(math.comb(n, i)) + i * math.log(p) + (n - i) * math.log1p(-p)) for i in range(k + 1))


def _cases(seed: int, count: int, n_max: int) -> list[tuple[int, int, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(1, n_max))
        k = int(rng.integers(0, n + 1))
        p = float(rng.choice([0.001, 0.005, 0.05, 0.3, 0.5, 0.9, rng.uniform(0.0001, 0.9999)]))
        out.append((k, n, p))
    return out


@pytest.mark.parametrize(("k", "n", "p"), _cases(0, 60, 120))
def test_binom_cdf_matches_exact_rational_sum(k: int, n: int, p: float) -> None:
    assert binom_cdf(k, n, p) == pytest.approx(_brute_cdf_exact(k, n, p), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize(("k", "n", "p"), [*_cases(1, 25, 4000), (0, 600, 0.005), (70, 5000, 0.01)])
def test_binom_cdf_matches_big_int_sum_for_large_n(k: int, n: int, p: float) -> None:
    expected = _brute_cdf_log(k, n, p)
    assert binom_cdf(k, n, p) == pytest.approx(expected, rel=1e-9, abs=1e-280)


def test_binom_cdf_edges() -> None:
    assert binom_cdf(-1, 10, 0.3) == 0.0
    assert binom_cdf(10, 10, 0.3) == 1.0
    assert binom_cdf(0, 10, 0.0) == 1.0
    assert binom_cdf(9, 10, 1.0) == 0.0
    assert binom_cdf(0, 0, 0.5) == 1.0
    with pytest.raises(ValueError):
        binom_cdf(1, 10, 1.5)
    with pytest.raises(ValueError):
        binom_cdf(1, -1, 0.5)


def test_binom_cdf_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n, p in _cases(2, 40, 20000):
        assert binom_cdf(k, n, p) == pytest.approx(float(stats.binom.cdf(k, n, p)), rel=1e-8, abs=1e-250)


def test_p_value_direction_few_errors_is_evidence_of_precision() -> None:
    # 1000 accepted, target 0.995: expected errors under the boundary null are 5.
    p_values = [ltt_p_value(1000, k, 0.995) for k in range(12)]
    assert np.all(np.diff(p_values) > 0)  # more errors, less evidence
    assert p_values[0] == pytest.approx(0.995**1000)
    assert p_values[0] < 0.01
    assert p_values[10] > 0.9
    assert ltt_p_value(0, 0, 0.995) == 1.0


def test_clopper_pearson_inverts_the_binomial_tail() -> None:
    for n_success, n, delta in [(600, 600, 0.05), (990, 1000, 0.05), (3, 10, 0.1), (1, 1, 0.5)]:
        lb = clopper_pearson_lower(n_success, n, delta)
        assert 0.0 < lb < n_success / n + 1e-12
        assert binom_cdf(n - n_success, n, 1.0 - lb) == pytest.approx(delta, rel=1e-6)
    assert clopper_pearson_lower(600, 600, 0.05) == pytest.approx(0.05 ** (1 / 600), rel=1e-10)
    assert clopper_pearson_lower(0, 5, 0.05) == 0.0
    assert clopper_pearson_lower(0, 0, 0.05) == 0.0


def test_clopper_pearson_agrees_with_scipy_beta() -> None:
    stats = pytest.importorskip("scipy.stats")
    for x, n in [(990, 1000), (45, 50), (7, 9), (2999, 3000)]:
        expected = float(stats.beta.ppf(0.05, x, n - x + 1))
        assert clopper_pearson_lower(x, n, 0.05) == pytest.approx(expected, rel=1e-9)


def test_min_accepted_for_rejection() -> None:
    n = min_accepted_for_rejection(0.995, 0.05)
    assert n == 598
    assert ltt_p_value(n, 0, 0.995) <= 0.05 < ltt_p_value(n - 1, 0, 0.995)


@pytest.mark.parametrize(("n", "passes"), [(100, False), (597, False), (598, True), (600, True), (2000, True)])
def test_all_correct_calibration_needs_enough_cups(n: int, passes: bool) -> None:
    scores = np.linspace(0.1, 0.9, n)
    choice = choose_threshold(scores, np.ones(n, dtype=bool))
    assert choice.can_pass is passes
    if passes:
        # everything correct: the walk never stops, the loosest candidate (all cups) is chosen
        assert choice.threshold == pytest.approx(0.1)
        assert (choice.n_accepted, choice.n_errors, choice.coverage) == (n, 0, 1.0)
        assert choice.precision_lower_bound >= 0.995
    else:
        assert choice.threshold == math.inf
        assert not choice.accepts(1e9)
        assert choice.n_accepted == 0 and choice.precision is None


def test_walk_stops_at_first_non_rejection() -> None:
    # 1000 perfect high scores, then a block of errors, then more perfect cups: the walk must stop at the
    # block and not reach the looser perfect cups beyond it.
    scores = np.concatenate([np.linspace(0.99, 0.6, 1000), np.linspace(0.59, 0.5, 50), np.linspace(0.49, 0.0, 3000)])
    correct = np.concatenate([np.ones(1000, bool), np.zeros(50, bool), np.ones(3000, bool)])
    choice = choose_threshold(scores, correct)
    assert choice.can_pass
    assert choice.threshold >= 0.5
    assert choice.n_errors <= 3
    assert choice.p_value <= 0.05
    assert choice.precision_lower_bound >= 0.995  # rejection at delta <=> CP lower bound >= target
    # the next looser candidate was not rejected
    curve = precision_coverage_curve(scores, correct)
    i = int(np.flatnonzero(curve.thresholds == choice.threshold)[0])
    assert ltt_p_value(int(curve.n_accepted[i + 1]), int(curve.n_errors[i + 1]), 0.995) > 0.05


def test_precision_coverage_curve_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(size=300), 2)  # ties on purpose
    correct = rng.uniform(size=300) < 0.3 + 0.7 * scores
    curve = precision_coverage_curve(scores, correct)
    assert np.all(np.diff(curve.thresholds) < 0)
    for t, n_acc, n_err, prec, cov in zip(
        curve.thresholds, curve.n_accepted, curve.n_errors, curve.precision, curve.coverage, strict=True
    ):
        accepted = scores >= t
        assert n_acc == accepted.sum()
        assert n_err == (accepted & ~correct).sum()
        assert prec == pytest.approx(correct[accepted].mean())
        assert cov == pytest.approx((accepted & correct).sum() / correct.sum())
    grid_curve = precision_coverage_curve(scores, correct, grid=[0.95, 0.5, 2.0])
    assert grid_curve.n_accepted[0] == 0 and math.isnan(grid_curve.precision[0])
    assert grid_curve.n_accepted[2] == (scores >= 0.5).sum()


def _true_error_rate(lam: np.ndarray | float, w0: float) -> np.ndarray:
    """Score ~ U(0, 1), P(wrong | s) = w0 (1 - s)^3: error rate among s >= lam is w0 (1 - lam)^3 / 4."""
    return w0 * (1.0 - np.asarray(lam, dtype=np.float64)) ** 3 / 4.0


def _draw(rng: np.random.Generator, n: int, w0: float) -> tuple[np.ndarray, np.ndarray]:
    s = rng.uniform(size=n)
    wrong = rng.uniform(size=n) < w0 * (1.0 - s) ** 3
    return s, ~wrong


def test_score_model_true_error_rate_matches_a_huge_draw() -> None:
    s, correct = _draw(np.random.default_rng(4), 2_000_000, 0.8)
    for lam in (0.2, 0.37, 0.6):
        empirical = (~correct[s >= lam]).mean()
        assert empirical == pytest.approx(float(_true_error_rate(lam, 0.8)), rel=0.03)


@pytest.mark.parametrize(
    ("target", "delta", "n_cal", "w0", "procedure", "grid"),
    [
        (0.95, 0.1, 400, 0.8, "fixed_sequence", None),
        (0.995, 0.05, 3000, 0.2, "fixed_sequence", None),
        (0.95, 0.1, 400, 0.8, "fixed_sequence", np.linspace(0.0, 1.0, 101)),
        (0.95, 0.1, 400, 0.8, "bonferroni", np.linspace(0.0, 1.0, 21)),
    ],
)
def test_guarantee_holds_in_simulation(
    target: float, delta: float, n_cal: int, w0: float, procedure: str, grid: np.ndarray | None
) -> None:
    rng = np.random.default_rng(5)
    alpha = 1.0 - target
    n_sets = 200
    violations = naive_violations = passes = 0
    for _ in range(n_sets):
        s, correct = _draw(rng, n_cal, w0)
        choice = choose_threshold(s, correct, target, delta, grid, procedure)  # type: ignore[arg-type]
        if choice.can_pass:
            passes += 1
            violations += bool(_true_error_rate(choice.threshold, w0) > alpha)
        # naive rule: the loosest threshold whose empirical precision reaches the target
        curve = precision_coverage_curve(s, correct)
        ok = np.flatnonzero(curve.precision >= target)
        naive_violations += bool(_true_error_rate(curve.thresholds[ok[-1]], w0) > alpha)
    slack = 3.0 * math.sqrt(delta * (1 - delta) / n_sets)
    assert violations / n_sets <= delta + slack
    assert passes / n_sets >= 0.6  # the procedure is not vacuous
    assert naive_violations / n_sets > 0.3  # and the simulation can tell a bad rule apart


def test_round_trip_through_json() -> None:
    scores = np.linspace(0, 1, 1000)
    choice = choose_threshold(scores, scores > 0.05)
    restored = ThresholdChoice.from_dict(json.loads(json.dumps(choice.to_dict())))
    assert restored == choice
    never = choose_threshold(scores[:50], np.ones(50, bool))
    data = never.to_dict()
    assert data["threshold"] is None
    text = json.dumps(data, allow_nan=False)
    assert ThresholdChoice.from_dict(json.loads(text)) == never
    assert ThresholdChoice.from_dict({**data, "threshold": "inf"}).threshold == math.inf
    assert "never PASS" in never.summary()
    assert "threshold" in choice.summary()


@pytest.mark.parametrize(
    ("scores", "correct", "kwargs"),
    [
        ([0.1, 0.2], [True], {}),
        ([], [], {}),
        ([0.1, float("nan")], [True, True], {}),
        ([0.1, 0.2], [True, False], {"target": 1.0}),
        ([0.1, 0.2], [True, False], {"target": 0.0}),
        ([0.1, 0.2], [True, False], {"delta": 0.0}),
        ([0.1, 0.2], [True, False], {"delta": 1.5}),
        ([0.1, 0.2], [2, 0], {}),
        ([[0.1, 0.2]], [[True, False]], {}),
        ([0.1, 0.2], [True, False], {"procedure": "holm"}),
    ],
)
def test_bad_inputs_raise(scores: list, correct: list, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        choose_threshold(scores, correct, **kwargs)


def test_confidence_is_written_without_rounding_a_split_delta() -> None:
    assert [confidence_text(d) for d in (0.05, 0.025, 0.1, 0.001)] == ["95%", "97.5%", "90%", "99.9%"]
    cal = np.linspace(0.0, 1.0, 2000)
    choice = choose_threshold(cal, cal > 0.01, target=0.99, delta=0.025)
    assert "at 97.5%)" in choice.summary()


def test_a_candidate_among_several_is_certified_at_its_share_of_delta() -> None:
    """The nightly retrain keeps the best of several models certified on the same cups: each at delta / k, so the
    one kept holds at delta whichever it is."""
    rng = np.random.default_rng(3)
    s, correct = _draw(rng, 4000, 0.3)
    one = choose_threshold(s, correct, target=0.99, delta=0.05)
    shared = choose_threshold(s, correct, target=0.99, delta=0.05, candidates=4)
    alone = choose_threshold(s, correct, target=0.99, delta=0.0125)
    assert shared.delta == 0.05 and shared.candidates == 4 and shared.level == 0.0125
    assert (shared.threshold, shared.n_accepted, shared.p_value) == (alone.threshold, alone.n_accepted, alone.p_value)
    assert shared.precision_lower_bound == alone.precision_lower_bound
    assert shared.threshold >= one.threshold and shared.n_accepted <= one.n_accepted
    assert "at 98.75%)" in shared.summary() and "one of 4 candidates: 95% for it" in shared.summary()
    restored = ThresholdChoice.from_dict(json.loads(json.dumps(shared.to_dict())))
    assert restored == shared
    assert "candidates" not in one.to_dict()  # a bundle from before keeps its document
    with pytest.raises(ValueError, match="candidates must be >= 1"):
        choose_threshold(s, correct, candidates=0)


def test_a_loose_target_s_threshold_under_the_floor_gives_way_to_it() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random(1500) < 0.7
    scores = np.where(correct, rng.uniform(0.6, 1.0, 1500), rng.uniform(0.0, 0.55, 1500))
    loose = choose_threshold(scores, correct, target=0.6)
    # most calibration pairs are right: a 60 % target certifies nearly every score, down to almost 0
    assert loose.can_pass and loose.threshold < 0.01 and loose.floored
    assert loose.applied == PASS_FLOOR == 0.5
    # a cup the voter scores 0.06 (more likely wrong than right) passes that threshold, never the floor
    assert not loose.accepts(0.06) and not loose.accepts(0.4999) and loose.accepts(0.5) and loose.accepts(0.9)
    assert "under the floor 0.5" in loose.floor_note() and "60.00%" in loose.floor_note()
    assert loose.summary().endswith("; under the floor 0.5, which applies")
    # a strict target's threshold lies above it: the floor changes nothing
    strict = choose_threshold(scores, correct, target=0.995)
    assert strict.threshold > PASS_FLOOR and not strict.floored and strict.applied == strict.threshold
    assert strict.floor_note() == "" and "floor" not in strict.summary()
    assert strict.accepts(strict.threshold) and not strict.accepts(np.nextafter(strict.threshold, 0))
    never = choose_threshold(scores[:10], correct[:10])
    assert not never.can_pass and never.applied == math.inf and not never.floored and not never.accepts(1.0)


def test_the_passes_counted_for_a_choice_are_those_it_accepts_one_by_one() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random(1500) < 0.7
    scores = np.where(correct, rng.uniform(0.6, 1.0, 1500), rng.uniform(0.0, 0.55, 1500))
    for target in (0.6, 0.995):
        choice = choose_threshold(scores, correct, target=target)
        one_by_one = np.array([choice.accepts(float(v)) for v in scores])
        assert np.array_equal(choice.accepted(scores), one_by_one)
        assert np.array_equal(station_passes(scores, choice.threshold), one_by_one)
    loose = choose_threshold(scores, correct, target=0.6)
    # at the certified threshold, under the floor, hundreds more would be counted than the station passes
    assert passes(scores, loose.threshold).sum() > loose.accepted(scores).sum() + 300
    assert not loose.accepted(scores)[scores < PASS_FLOOR].any()
    never = choose_threshold(scores[:10], correct[:10])
    assert not never.accepted(scores).any() and not station_passes(scores, math.inf).any()


def _tied() -> tuple[np.ndarray, np.ndarray]:
    """350 pairs tied at 0.99 holding one error, 2000 right at 0.98, 500 wrong at 0.01."""
    scores = np.r_[np.full(350, 0.99), np.full(2000, 0.98), np.full(500, 0.01)]
    correct = np.r_[np.arange(350) > 0, np.ones(2000, bool), np.zeros(500, bool)]
    return scores, correct


def test_a_stricter_target_can_certify_past_a_tie_that_stops_a_looser_one() -> None:
    scores, correct = _tied()
    # 99 % can be tested on the 350 tied pairs, and their one error stops it; 99.5 % needs 598 and starts past them
    assert not choose_threshold(scores, correct, target=0.99).can_pass
    assert choose_threshold(scores, correct, target=0.995).threshold == 0.98
    top = highest_certified_target(scores, correct)
    assert top is not None and 0.9975 < top < 0.998
    assert choose_threshold(scores, correct, target=top).can_pass
    assert not choose_threshold(scores, correct, target=top + 1e-6).can_pass
    under = highest_certified_target(scores, correct, below=0.99)
    assert under is not None and 0.986 < under < 0.987  # the tie's own Clopper-Pearson bound
    assert choose_threshold(scores, correct, target=under).can_pass
    assert not choose_threshold(scores, correct, target=under + 1e-6).can_pass
    assert highest_certified_target(scores, correct, below=0.6, lowest=0.7) is None


def test_highest_certified_target_matches_a_scan_of_targets() -> None:
    rng = np.random.default_rng(5)
    grid = np.arange(0.8, 0.9995, 0.002)
    for _ in range(6):
        n = int(rng.integers(100, 600))
        scores = np.round(rng.random(n), int(rng.integers(1, 3)))  # ties on purpose
        correct = rng.random(n) < (0.2 + 0.8 * scores) ** 0.05
        delta = float(rng.choice([0.05, 0.2]))
        certified = [float(t) for t in grid if choose_threshold(scores, correct, target=float(t), delta=delta).can_pass]
        for below in (0.95, 1.0):
            found = highest_certified_target(scores, correct, delta, below=below)
            scanned = max((t for t in certified if t <= below), default=None)
            if scanned is None:
                assert found is None or found < 0.802
                continue
            assert found is not None and scanned - 1e-12 <= found < scanned + 0.002
            assert choose_threshold(scores, correct, target=found * (1 - 1e-12), delta=delta).can_pass
