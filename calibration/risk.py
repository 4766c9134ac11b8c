"""Acceptance threshold with a precision guarantee (Learn then Test).

The voter gives every cup a score in which higher means "more surely the expected coin type". A cup is
PASSed when ``score >= threshold``. On held-out calibration cups with known truth we choose the loosest
threshold for which

    P( precision of PASS >= target ) >= 1 - delta,

where precision is the population probability that a PASSed cup truly is the expected type.

Recipe (Angelopoulos et al., "Learn then Test", 2021), for every candidate threshold ``lam``:

* ``n(lam)``: calibration cups with ``score >= lam`` (accepted), ``k(lam)``: accepted cups that are wrong.
* Null hypothesis ``H(lam)``: the error rate among accepted cups is ``>= alpha = 1 - target`` (precision is too
  low). Given ``n`` accepted cups, their errors are ``Binomial(n, e)``; under the null ``e >= alpha``, so the
  probability of seeing ``k`` or *fewer* errors is at most ``P[Binomial(n, alpha) <= k]``. That lower tail is the
  p-value: small means "this few errors would be unlikely if precision were too low". (The upper tail would test
  the opposite question.)
* Fixed-sequence testing: walk the candidates from strict to loose, reject ``H(lam)`` while ``p <= delta`` and
  stop at the first ``p > delta``. The chosen threshold is the loosest rejected one; if none is rejected the
  threshold is ``+inf`` (never PASS).

Thresholds whose accepted set is too small to ever be rejected (``n < min_accepted_for_rejection``: even zero
errors give ``(1 - alpha) ** n > delta``) are skipped rather than ending the walk; they form a prefix of the
strict end, because ``n`` only grows as the threshold loosens. Otherwise the walk would always stop at the very
first, almost empty, accepted set. The family-wise guarantee of the walk holds when precision does not improve as
the threshold loosens (a score in which higher means more likely correct); ``procedure="bonferroni"`` tests every
candidate at ``delta / m`` and needs no such assumption, at the cost of a larger calibration set.

The skipped prefix depends on the target: a stricter target needs more accepted cups before it can reject at all,
so its walk starts at a looser threshold. Where scores tie or leave a gap, a looser target can therefore stop on a
set a stricter one skips (350 tied cups holding one error stop 99 %, while 99.5 % starts past them and certifies):
the targets that certify are not always every one under some bound. :func:`highest_certified_target` finds the
highest exactly rather than assuming they are.

All binomial probabilities are computed exactly (a log-space sum of the binomial terms, no normal
approximation); the Clopper-Pearson bound is found by bisection on the same exact tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Procedure = Literal["fixed_sequence", "bonferroni"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_TARGET = 0.995
DEFAULT_DELTA = 0.05
PASS_FLOOR = 0.5
"""No cup scoring under this passes, whatever threshold a target certifies (:meth:`ThresholdChoice.accepts`): the
voter itself then scores the cup more likely wrong than right. A loose target (90 %) certifies thresholds near 0 on
calibration pairs that are mostly right, and would pass a cup the voter scores 0.001 whose coins all match another
type. The shipped threshold (0.97 at 99.5 %) lies far above it."""


def confidence_text(delta: float) -> str:
    """``1 - delta`` as a percentage with no spurious digits: ``"95%"`` for 0.05, ``"97.5%"`` for 0.025."""
    return f"{(1 - delta) * 100:.4g}%"


def binom_cdf(k: int, n: int, p: float) -> float:
    """Exact lower tail ``P[Binomial(n, p) <= k]``.

    Sums the terms ``C(n, i) p^i (1-p)^(n-i)`` for ``i = 0..k`` in log space (log-sum-exp), which stays exact to
    floating-point rounding for any ``n``.

    Args:
        k: number of successes (any integer; ``k < 0`` gives 0, ``k >= n`` gives 1).
        n: number of trials, ``>= 0``.
        p: success probability in ``[0, 1]``.

    Returns:
        The probability, in ``[0, 1]``.

    Raises:
        ValueError: when ``n < 0`` or ``p`` is outside ``[0, 1]``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    if k < 64:  # short sums: plain Python is faster than numpy's per-call overhead
        log_n1 = math.lgamma(n + 1)
        terms = [
            log_n1 - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_p + (n - j) * log_q for j in range(k + 1)
        ]
        top_s = max(terms)
        return min(1.0, math.exp(top_s + math.log(math.fsum(math.exp(t - top_s) for t in terms))))
    i = np.arange(k + 1, dtype=np.float64)
    # log C(n, i) + i log p + (n - i) log(1 - p), with log C(n, i) from a cumulative sum of log ratios.
    log_ratio = np.log(n - i[:-1]) - np.log(i[:-1] + 1.0)
    log_comb = np.concatenate(([0.0], np.cumsum(log_ratio)))
    log_terms = log_comb + i * log_p + (n - i) * log_q
    top = float(log_terms.max())
    total = top + math.log(float(np.exp(log_terms - top).sum()))
    return min(1.0, math.exp(total))


def ltt_p_value(n_accepted: int, n_errors: int, target: float) -> float:
    """P-value of the null "precision < target" after ``n_errors`` wrong cups among ``n_accepted``.

    ``P[Binomial(n_accepted, 1 - target) <= n_errors]``; ``1.0`` when nothing is accepted (no evidence).
    """
    _check_open_unit("target", target)
    if n_accepted == 0:
        return 1.0
    return binom_cdf(n_errors, n_accepted, 1.0 - target)


def clopper_pearson_lower(n_success: int, n: int, delta: float) -> float:
    """One-sided ``1 - delta`` Clopper-Pearson lower confidence bound on a success probability.

    The bound is ``1 - e_hi`` where ``e_hi`` is the failure rate at which seeing ``n - n_success`` or fewer
    failures has probability exactly ``delta`` (found by bisection on the exact binomial tail). It is ``0`` when
    ``n == 0`` or ``n_success == 0``.

    Args:
        n_success: observed successes, ``0 <= n_success <= n``.
        n: trials.
        delta: one-sided miscoverage in ``(0, 1)``.

    Returns:
        The lower bound in ``[0, 1]``.
    """
    _check_open_unit("delta", delta)
    if not 0 <= n_success <= n:
        raise ValueError(f"need 0 <= n_success <= n, got {n_success}, {n}")
    if n == 0 or n_success == 0:
        return 0.0
    failures = n - n_success
    lo, hi = failures / n, 1.0  # P[Bin(n, e) <= failures] decreases in e; it is >= delta at lo, 0 at hi=1.
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if binom_cdf(failures, n, mid) > delta:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13:
            break
    return 1.0 - hi


def min_accepted_for_rejection(target: float, delta: float) -> int:
    """Smallest ``n`` at which zero errors among ``n`` accepted cups reject "precision < target" at ``delta``.

    ``ceil(log(delta) / log(target))``, checked against the exact tail (598 for 0.995 / 0.05).
    """
    _check_open_unit("target", target)
    _check_open_unit("delta", delta)
    n = max(1, math.ceil(math.log(delta) / math.log(target)))
    while n > 1 and ltt_p_value(n - 1, 0, target) <= delta:
        n -= 1
    while ltt_p_value(n, 0, target) > delta:
        n += 1
    return n


def passes(scores: npt.ArrayLike, threshold: float) -> npt.NDArray[np.bool_]:
    """``(n,)`` bool: PASS at ``threshold``; a pair the hard rules refuse (``p = 0``) never passes."""
    s = np.asarray(scores, np.float64)
    return np.asarray((s >= threshold) & (s > 0), bool)


def applied_threshold(threshold: float) -> float:
    """The threshold a cup's score is held to for a certified ``threshold``: the higher of it and
    :data:`PASS_FLOOR` (``math.inf`` stays: never PASS)."""
    return max(threshold, PASS_FLOOR)


def station_passes(scores: npt.ArrayLike, threshold: float) -> npt.NDArray[np.bool_]:
    """``(n,)`` bool: the PASSes the station makes with the certified ``threshold``: at or above it and
    :data:`PASS_FLOOR` (:func:`applied_threshold`), never a pair the hard rules refuse.

    Count PASSes with this wherever the count stands for what the station does (a gate, a report, the model panel):
    :func:`passes` at a certified threshold under the floor counts cups the station never passes.
    """
    return passes(scores, applied_threshold(threshold))


@dataclass(frozen=True)
class ThresholdChoice:
    """The acceptance threshold chosen on calibration cups, with the evidence behind it.

    Attributes:
        threshold: the certified threshold; a cup PASSes when ``score >= threshold`` and ``score >=``
            :data:`PASS_FLOOR` (:attr:`applied`); ``math.inf`` means never PASS.
        target: required precision of PASS, e.g. ``0.995``.
        delta: allowed probability that the guarantee fails, e.g. ``0.05``.
        n_calibration: calibration cups used.
        n_accepted: calibration cups at or above the threshold.
        n_errors: accepted calibration cups that were not truly the expected type.
        precision: ``(n_accepted - n_errors) / n_accepted``; ``None`` when nothing is accepted.
        precision_lower_bound: one-sided ``1 - delta`` Clopper-Pearson lower bound on precision at the threshold
            (``0`` when nothing is accepted).
        coverage: share of truly-correct calibration cups that are accepted.
        p_value: the binomial p-value at the threshold (``1`` when nothing is accepted).
        procedure: ``"fixed_sequence"`` or ``"bonferroni"``.
        candidates: how many models were certified on the same calibration cups for one of them to be kept (the
            nightly retrain's refit and fine-tuned candidates): each was certified at ``delta / candidates``, so
            that the one kept holds at ``delta`` whichever it is (Bonferroni); ``precision_lower_bound`` and
            ``p_value`` are at that level.
    """

    threshold: float
    target: float
    delta: float
    n_calibration: int
    n_accepted: int
    n_errors: int
    precision: float | None
    precision_lower_bound: float
    coverage: float
    p_value: float
    procedure: str = "fixed_sequence"
    candidates: int = 1

    @property
    def level(self) -> float:
        """The failure probability each candidate's certificate was tested at: ``delta / candidates``."""
        return self.delta / self.candidates

    @property
    def can_pass(self) -> bool:
        """Whether any score can PASS (the threshold is finite)."""
        return math.isfinite(self.threshold)

    @property
    def applied(self) -> float:
        """The threshold a cup's score is held to: the certified one, or :data:`PASS_FLOOR` where that is higher
        (``math.inf``: never PASS)."""
        return applied_threshold(self.threshold)

    @property
    def floored(self) -> bool:
        """Whether the certified threshold lies under :data:`PASS_FLOOR`, so the floor is what applies."""
        return self.can_pass and self.threshold < PASS_FLOOR

    def floor_note(self) -> str:
        """Why the threshold applied is not the one certified (``""``: it is), for a warning."""
        if not self.floored:
            return ""
        return (
            f"the threshold certified for precision {self.target:.2%} is {self.threshold:.4g}, under the floor "
            f"{PASS_FLOOR}: a cup the voter scores under {PASS_FLOOR} is more likely wrong than right and never "
            f"passes, so {PASS_FLOOR} applies"
        )

    def accepts(self, score: float) -> bool:
        """Whether a cup with ``score`` is PASSed: at or above the certified threshold and :data:`PASS_FLOOR`."""
        return self.can_pass and score >= self.applied

    def accepted(self, scores: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """``(n,)`` bool: which of ``scores`` PASS, as :meth:`accepts` decides each (:func:`station_passes` at the
        certified threshold): the counts to show for what the station does, not those at :attr:`threshold`."""
        return station_passes(scores, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; an infinite threshold is stored as ``None``."""
        return {
            "threshold": self.threshold if self.can_pass else None,
            "target": self.target,
            "delta": self.delta,
            "n_calibration": self.n_calibration,
            "n_accepted": self.n_accepted,
            "n_errors": self.n_errors,
            "precision": self.precision,
            "precision_lower_bound": self.precision_lower_bound,
            "coverage": self.coverage,
            "p_value": self.p_value,
            "procedure": self.procedure,
            # written only where several were compared, so a bundle from before keeps its document and version
            **({"candidates": self.candidates} if self.candidates != 1 else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdChoice:
        """Inverse of :meth:`to_dict` (``None`` or ``"inf"`` threshold means never PASS)."""
        raw = data["threshold"]
        threshold = math.inf if raw is None or raw == "inf" else float(raw)
        precision = data.get("precision")
        return cls(
            threshold=threshold,
            target=float(data["target"]),
            delta=float(data["delta"]),
            n_calibration=int(data["n_calibration"]),
            n_accepted=int(data["n_accepted"]),
            n_errors=int(data["n_errors"]),
            precision=None if precision is None else float(precision),
            precision_lower_bound=float(data["precision_lower_bound"]),
            coverage=float(data["coverage"]),
            p_value=float(data["p_value"]),
            procedure=str(data.get("procedure", "fixed_sequence")),
            candidates=int(data.get("candidates", 1)),
        )

    def summary(self) -> str:
        """One line for logs and the command line."""
        if not self.can_pass:
            return (
                f"no threshold reaches precision {self.target:.2%} with confidence {confidence_text(self.delta)} "
                f"on {self.n_calibration} calibration pairs: never PASS"
            )
        return (
            f"threshold {self.threshold:.4f}: {self.n_accepted}/{self.n_calibration} accepted, "
            f"{self.n_errors} wrong, precision {self.precision:.4f} (>= {self.precision_lower_bound:.4f} "
            f"at {confidence_text(self.level)}), coverage {self.coverage:.1%}"
            + (
                f"; one of {self.candidates} candidates: {confidence_text(self.delta)} for it"
                if self.candidates > 1
                else ""
            )
            + (f"; under the floor {PASS_FLOOR}, which applies" if self.floored else "")
        )


RiskControl = ThresholdChoice
"""Alternative name for :class:`ThresholdChoice`."""


@dataclass(frozen=True)
class PrecisionCoverageCurve:
    """Empirical precision and coverage at each candidate threshold, strict to loose.

    Attributes:
        thresholds: ``(m,)`` distinct scores, descending.
        n_accepted: ``(m,)`` cups with ``score >= threshold``.
        n_errors: ``(m,)`` accepted cups that are wrong.
        precision: ``(m,)`` ``1 - n_errors / n_accepted``.
        coverage: ``(m,)`` accepted correct cups over all correct cups (``0`` when no cup is correct).
    """

    thresholds: FloatArray
    n_accepted: IntArray
    n_errors: IntArray
    precision: FloatArray
    coverage: FloatArray

    def passing(self) -> PrecisionCoverageCurve:
        """The points a PASS can reach: a pair the hard rules refuse scores 0 and never passes (:func:`passes`), so
        the thresholds at 0, which would count those pairs as accepted, are left out."""
        keep = self.thresholds > 0
        return PrecisionCoverageCurve(
            self.thresholds[keep], self.n_accepted[keep], self.n_errors[keep], self.precision[keep], self.coverage[keep]
        )


def precision_coverage_curve(
    scores: npt.ArrayLike, correct: npt.ArrayLike, grid: npt.ArrayLike | None = None
) -> PrecisionCoverageCurve:
    """Precision and coverage of ``score >= threshold`` for every candidate threshold.

    Args:
        scores: ``(n,)`` finite cup scores, higher means more surely the expected type.
        correct: ``(n,)`` bool, the cup truly is the expected type.
        grid: optional ``(m,)`` fixed candidate thresholds; by default the distinct ``scores``.

    Returns:
        The curve, candidates sorted strict (high) to loose (low). Candidates that accept nothing have
        precision ``nan``.

    Raises:
        ValueError: empty or mismatched inputs, non-finite scores.
    """
    s, c = _check_scores(scores, correct)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    errors_cum = np.cumsum(~c[order])
    if grid is None:
        thresholds = np.unique(s)[::-1]
    else:
        thresholds = np.unique(np.asarray(grid, dtype=np.float64))[::-1]
        if thresholds.size == 0 or not np.all(np.isfinite(thresholds)):
            raise ValueError("grid must be non-empty and finite")
    # Number of scores >= t in the descending array: searchsorted on the ascending negatives.
    n_acc = np.searchsorted(-s_sorted, -thresholds, side="right").astype(np.int64)
    n_err = np.where(n_acc > 0, errors_cum[np.maximum(n_acc - 1, 0)], 0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_acc > 0, 1.0 - n_err / np.maximum(n_acc, 1), np.nan)
    n_correct = int(c.sum())
    coverage = (n_acc - n_err) / n_correct if n_correct else np.zeros(len(thresholds))
    return PrecisionCoverageCurve(
        thresholds=thresholds.astype(np.float64),
        n_accepted=n_acc,
        n_errors=n_err,
        precision=precision.astype(np.float64),
        coverage=np.asarray(coverage, dtype=np.float64),
    )


def choose_threshold(
    scores: npt.ArrayLike,
    correct: npt.ArrayLike,
    target: float = DEFAULT_TARGET,
    delta: float = DEFAULT_DELTA,
    grid: npt.ArrayLike | None = None,
    procedure: Procedure = "fixed_sequence",
    candidates: int = 1,
) -> ThresholdChoice:
    """Choose the loosest threshold whose PASS precision is ``>= target`` with probability ``>= 1 - delta``.

    Args:
        scores: ``(n,)`` finite calibration cup scores (higher = more surely the expected type).
        correct: ``(n,)`` bool, the cup truly is the expected type.
        target: required precision in ``(0, 1)``.
        delta: allowed failure probability in ``(0, 1)``.
        grid: optional ``(m,)`` fixed candidate thresholds (data-independent); default the distinct scores.
        procedure: ``"fixed_sequence"`` (strict to loose, stop at the first non-rejection) or
            ``"bonferroni"`` (every candidate at ``delta / m``, take the loosest rejected).
        candidates: models certified on these same cups, one of which will be kept (by what the caller compares
            next): this one is certified at ``delta / candidates``, so that the one kept holds at ``delta``.

    Returns:
        The choice; its ``threshold`` is ``math.inf`` when no candidate can be certified.

    Raises:
        ValueError: empty or mismatched inputs, non-finite scores, ``target`` or ``delta`` outside ``(0, 1)``,
            ``candidates < 1``.
    """
    _check_open_unit("target", target)
    _check_open_unit("delta", delta)
    if procedure not in ("fixed_sequence", "bonferroni"):
        raise ValueError(f"unknown procedure {procedure!r}")
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    family, delta = delta, delta / candidates
    curve = precision_coverage_curve(scores, correct, grid)
    n_cal = int(np.asarray(scores).shape[0])
    alpha = 1.0 - target
    chosen: int | None = None
    chosen_p = 1.0
    if procedure == "fixed_sequence":
        n_min = min_accepted_for_rejection(target, delta)
        for i, (n_acc, n_err) in enumerate(zip(curve.n_accepted, curve.n_errors, strict=True)):
            if n_acc < n_min:
                continue  # cannot be rejected even with zero errors: skip, do not stop
            p = binom_cdf(int(n_err), int(n_acc), alpha)
            if p > delta:
                break
            chosen, chosen_p = i, p
    else:
        level = delta / len(curve.thresholds)
        for i, (n_acc, n_err) in enumerate(zip(curve.n_accepted, curve.n_errors, strict=True)):
            p = ltt_p_value(int(n_acc), int(n_err), target)
            if p <= level:
                chosen, chosen_p = i, p
    n_correct = int(np.asarray(correct, dtype=bool).sum())
    if chosen is None:
        return ThresholdChoice(
            threshold=math.inf,
            target=target,
            delta=family,
            n_calibration=n_cal,
            n_accepted=0,
            n_errors=0,
            precision=None,
            precision_lower_bound=0.0,
            coverage=0.0,
            p_value=1.0,
            procedure=procedure,
            candidates=candidates,
        )
    n_acc = int(curve.n_accepted[chosen])
    n_err = int(curve.n_errors[chosen])
    return ThresholdChoice(
        threshold=float(curve.thresholds[chosen]),
        target=target,
        delta=family,
        n_calibration=n_cal,
        n_accepted=n_acc,
        n_errors=n_err,
        precision=(n_acc - n_err) / n_acc,
        precision_lower_bound=clopper_pearson_lower(n_acc - n_err, n_acc, delta),
        coverage=(n_acc - n_err) / n_correct if n_correct else 0.0,
        p_value=chosen_p,
        procedure=procedure,
        candidates=candidates,
    )


def highest_certified_target(
    scores: npt.ArrayLike,
    correct: npt.ArrayLike,
    delta: float = DEFAULT_DELTA,
    *,
    candidates: int = 1,
    below: float = 1.0,
    lowest: float = 0.5,
) -> float | None:
    """The highest target precision, at most ``below``, for which :func:`choose_threshold` (fixed sequence, the
    default grid) certifies a threshold on these cups; ``None`` when none over ``lowest`` does.

    Found exactly, not by bisection, which would assume every target under a certified one certifies too (see the
    module's note: with tied scores it need not). The walk for a target ``t`` certifies something exactly when the
    first candidate it tests is rejected. That first candidate is the strictest accepting at least
    :func:`min_accepted_for_rejection` cups, and ``n`` cups suffice for every ``t <= level ** (1 / n)``, so candidate
    ``i`` is the first tested for the targets in ``(u[i-1], u[i]]``. It is rejected there up to its Clopper-Pearson
    lower bound (rejection at the level is the bound reaching the target). The answer is the highest of those
    intervals under ``below``, to floating-point rounding at its ends.

    Args:
        scores: ``(n,)`` finite calibration cup scores.
        correct: ``(n,)`` bool truth.
        delta: the failure probability, shared among ``candidates`` as :func:`choose_threshold` shares it.
        candidates: models certified on these cups (:attr:`ThresholdChoice.candidates`).
        below: the highest target to look at.
        lowest: the lowest target worth naming.

    Raises:
        ValueError: as :func:`choose_threshold`.
    """
    _check_open_unit("delta", delta)
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    level = delta / candidates
    curve = precision_coverage_curve(scores, correct)
    n = curve.n_accepted.astype(np.float64)
    k = curve.n_errors
    u = level ** (1.0 / n)  # the highest target n accepted cups can be tested at
    u_before = np.concatenate(([0.0], u[:-1]))
    start = np.maximum(u_before, lowest)
    # the bound never exceeds the precision seen: candidates seen at or under their interval's start are out at once
    hopeful = (start < below) & (curve.precision > start)
    for i in np.flatnonzero(hopeful)[::-1]:
        n_i, k_i = int(curve.n_accepted[i]), int(k[i])
        top = min(clopper_pearson_lower(n_i - k_i, n_i, level), float(u[i]))
        if top > start[i]:
            return min(top, below)
    return None


def _check_open_unit(name: str, value: float) -> None:
    try:
        ok = 0.0 < float(value) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")


def _check_scores(scores: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    s = np.asarray(scores, dtype=np.float64)
    c_raw = np.asarray(correct)
    if s.ndim != 1 or c_raw.ndim != 1:
        raise ValueError(f"scores and correct must be 1-D, got shapes {s.shape} and {c_raw.shape}")
    if s.shape != c_raw.shape:
        raise ValueError(f"scores and correct differ in length: {s.shape[0]} vs {c_raw.shape[0]}")
    if s.size == 0:
        raise ValueError("no calibration cups")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if c_raw.dtype != np.bool_ and not np.all(np.isin(c_raw, (0, 1))):
        raise ValueError("correct must be boolean (or 0/1)")
    return s, c_raw.astype(bool)
