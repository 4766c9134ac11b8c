"""The promotion gate: a retrained bundle replaces the one in force only when a frozen holdout says it is not worse.

Both models score the same holdout (cup, candidate type) pairs and decide with their own certified thresholds, as
the station applies them (never under :data:`~calibration.risk.PASS_FLOOR`). :func:`holdout_metrics` measures each;
:func:`promotion_gate` compares them:

* the candidate must be able to PASS at all (a certified, finite threshold);
* it must not be worse on PASS precision: its lower bound (one-sided Clopper-Pearson, both models at one ``delta``)
  at least the target precision, or at least the old model's with its precision on the holdout not under the old
  model's or the target, whichever is lower (a model that passes nothing ships no wrong coin: a candidate whose few
  holdout PASSes are wrong does not replace it on a tie of empty bounds);
* its auto-pass rate (share of truly correct holdout pairs that PASS) must be at least the old model's;
* the comparison must rest on something: a holdout with a correct pair, or the frozen calibration pairs;
* where the bundle keeps its frozen calibration pairs (thousands of cups, labelled offline), its auto-pass there
  must be at least the old model's too. A station's holdout holds what supervisors labelled, mostly FLAGs, so both
  models pass little of it; a refit that pushes correct cups below the certified threshold shows on the frozen
  pairs first;
* where the candidate brings other station references or another embedder output layer than the model in force,
  the share of the holdout's ruled coins whose nearest reference shows a design of their type (:class:`NearestDesign`,
  each model through its own gallery view) must be at least the old model's, on at least one coin. The frozen
  pairs hold features computed once, offline: references cannot change them, so a voter kept with new references
  ties there whatever the references are, and a holdout of FLAGs passes too little to tell. The references act on
  which design each coin lies nearest; that is where they are measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from calibration.risk import applied_threshold, clopper_pearson_lower, station_passes


@dataclass(frozen=True)
class HoldoutMetrics:
    """One model on the holdout pairs at its threshold.

    Attributes:
        n_pairs: holdout pairs scored.
        n_positive: truly correct pairs.
        n_accepted: pairs that PASS.
        n_errors: PASSed pairs that were wrong.
        precision: ``1 - n_errors / n_accepted`` (``nan`` when nothing passes).
        precision_lower_bound: one-sided ``1 - delta`` Clopper-Pearson bound (``0`` when nothing passes).
        auto_pass: PASSed correct pairs over correct pairs (``0`` without correct pairs).
        threshold: the model's certified threshold (``inf``: never PASS).
        can_pass: the threshold is finite.
        applied: the threshold the pairs were held to, as the station holds a cup: the certified one, or
            :data:`~calibration.risk.PASS_FLOOR` where that is higher.
    """

    n_pairs: int
    n_positive: int
    n_accepted: int
    n_errors: int
    precision: float
    precision_lower_bound: float
    auto_pass: float
    threshold: float
    can_pass: bool
    applied: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``nan`` and ``inf`` as ``None``)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def holdout_metrics(
    scores: npt.ArrayLike, correct: npt.ArrayLike, threshold: float, delta: float = 0.05
) -> HoldoutMetrics:
    """Measure PASS precision and auto-pass on holdout pairs, counting the PASSes the station would make: a pair
    passes at ``score >=`` the certified ``threshold`` and :data:`~calibration.risk.PASS_FLOOR`
    (:func:`calibration.risk.station_passes`; a pair the hard rules refuse, ``p = 0``, never does). Counted at a
    certified threshold under the floor, a loose target's model would be compared on PASSes that never happen.

    Args:
        scores: ``(n,)`` the model's ``p_correct`` per pair.
        correct: ``(n,)`` bool truth.
        threshold: the model's certified threshold (``inf``: never PASS).
        delta: failure probability of the lower bound.

    Raises:
        ValueError: mismatched lengths.
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(correct, bool)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and truth {y.shape} differ in shape")
    can_pass = math.isfinite(threshold)
    accepted = station_passes(s, threshold) if can_pass else np.zeros(s.shape, bool)
    n_acc = int(accepted.sum())
    n_err = int((accepted & ~y).sum())
    n_pos = int(y.sum())
    return HoldoutMetrics(
        n_pairs=int(s.size),
        n_positive=n_pos,
        n_accepted=n_acc,
        n_errors=n_err,
        precision=(n_acc - n_err) / n_acc if n_acc else math.nan,
        precision_lower_bound=clopper_pearson_lower(n_acc - n_err, n_acc, delta) if n_acc else 0.0,
        auto_pass=(n_acc - n_err) / n_pos if n_pos else 0.0,
        threshold=float(threshold),
        can_pass=can_pass,
        applied=applied_threshold(float(threshold)),
    )


@dataclass(frozen=True)
class NearestDesign:
    """The holdout's ruled coins (of enrolled types) whose nearest reference shows a design of their type, no
    reference of another design lying as near (:func:`models.retrain.design_hits`), for the model in force and for a
    candidate, each through its own gallery view (its station references, its embedder output layer).

    Attributes:
        n_coins: ruled holdout coins measured (the same coins for both models).
        old_right: those the model in force puts nearest a design of their type.
        new_right: those the candidate does.
    """

    n_coins: int
    old_right: int
    new_right: int

    def __post_init__(self) -> None:
        if self.n_coins < 0 or not (0 <= self.old_right <= self.n_coins and 0 <= self.new_right <= self.n_coins):
            raise ValueError(
                f"nearest design right on {self.old_right} and {self.new_right} of {self.n_coins} coins: each count "
                "must lie between 0 and the coins measured"
            )

    @property
    def old_share(self) -> float:
        """The model in force's share (``nan`` without coins)."""
        return self.old_right / self.n_coins if self.n_coins else math.nan

    @property
    def new_share(self) -> float:
        """The candidate's share (``nan`` without coins)."""
        return self.new_right / self.n_coins if self.n_coins else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict, with both shares (``None`` without coins)."""
        shares = {"old_share": self.old_share, "new_share": self.new_share}
        return {**asdict(self), **{k: (v if math.isfinite(v) else None) for k, v in shares.items()}}


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer.

    Attributes:
        promote: the candidate may replace the model in force.
        reasons: why (one line per criterion, failed ones first).
        old: the model in force on the holdout.
        new: the candidate on the holdout.
        frozen_old: the model in force on the frozen calibration pairs (``None`` where there are none).
        frozen_new: the candidate on them.
        nearest_design: both models' nearest designs on the holdout coins, where the candidate's station references
            or embedder output layer differ from the model in force's (``None``: they do not).
    """

    promote: bool
    reasons: tuple[str, ...]
    old: HoldoutMetrics
    new: HoldoutMetrics
    frozen_old: HoldoutMetrics | None = None
    frozen_new: HoldoutMetrics | None = None
    nearest_design: NearestDesign | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "promote": self.promote,
            "reasons": list(self.reasons),
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "frozen_old": None if self.frozen_old is None else self.frozen_old.to_dict(),
            "frozen_new": None if self.frozen_new is None else self.frozen_new.to_dict(),
            "nearest_design": None if self.nearest_design is None else self.nearest_design.to_dict(),
        }


def promotion_gate(
    old: HoldoutMetrics,
    new: HoldoutMetrics,
    target: float,
    *,
    frozen_old: HoldoutMetrics | None = None,
    frozen_new: HoldoutMetrics | None = None,
    nearest_design: NearestDesign | None = None,
) -> GateDecision:
    """Decide whether the candidate ``new`` may replace ``old``.

    Args:
        old: the model in force, measured on the frozen holdout.
        new: the candidate, measured on the same pairs.
        target: the precision target; a lower bound at or above it is good enough even if below the old one's.
        frozen_old: the model in force on the bundle's frozen calibration pairs, at its threshold.
        frozen_new: the candidate on the same pairs at its threshold (both or neither).
        nearest_design: both models' nearest designs on the holdout coins; give it whenever the candidate's station
            references or embedder output layer differ from the model in force's (``None``: they do not).

    Raises:
        ValueError: only one of ``frozen_old`` and ``frozen_new`` is given.

    Returns:
        The decision with one reason per criterion.
    """
    failed: list[str] = []
    passed: list[str] = []
    if not new.can_pass:
        failed.append("the candidate has no certified threshold: it would PASS nothing")
    lb_ok = new.precision_lower_bound >= target or (
        new.precision_lower_bound >= old.precision_lower_bound and _precision(new) >= min(_precision(old), target)
    )
    lb_text = (
        f"PASS precision {_precision_text(new)} vs {_precision_text(old)}, lower bound "
        f"{new.precision_lower_bound:.4f} vs {old.precision_lower_bound:.4f} (target {target:.4f})"
    )
    (passed if lb_ok else failed).append(lb_text)
    ap_ok = new.auto_pass >= old.auto_pass
    ap_text = f"auto-pass {_auto_pass_text(new)} vs {_auto_pass_text(old)}"
    (passed if ap_ok else failed).append(ap_text)
    if (frozen_old is None) != (frozen_new is None):
        raise ValueError("give the frozen calibration metrics of both models or of neither")
    if frozen_new is None and new.n_positive == 0:
        failed.append("the holdout holds no correct pair and there are no frozen calibration pairs: nothing to compare")
    if frozen_old is not None and frozen_new is not None:
        fz_ok = frozen_new.auto_pass >= frozen_old.auto_pass
        fz_text = (
            f"auto-pass on the {frozen_new.n_pairs} frozen calibration pairs {_auto_pass_text(frozen_new)} vs "
            f"{_auto_pass_text(frozen_old)}"
        )
        (passed if fz_ok else failed).append(fz_text)
    if nearest_design is not None:
        nd = nearest_design
        if nd.n_coins == 0:
            failed.append("no holdout coin to measure the new station references on")
        else:
            nd_text = (
                f"nearest design on {nd.n_coins} holdout coins: {nd.new_share:.1%} ({nd.new_right}) vs "
                f"{nd.old_share:.1%} ({nd.old_right})"
            )
            (passed if nd.new_right >= nd.old_right else failed).append(nd_text)
    reasons = tuple(f"fails: {r}" for r in failed) + tuple(f"ok: {r}" for r in passed)
    return GateDecision(
        promote=not failed,
        reasons=reasons,
        old=old,
        new=new,
        frozen_old=frozen_old,
        frozen_new=frozen_new,
        nearest_design=nearest_design,
    )


def _precision(m: HoldoutMetrics) -> float:
    """PASS precision on the holdout; ``1`` for a model that passes nothing (it ships no wrong coin)."""
    return 1.0 if m.n_accepted == 0 else m.precision


def _auto_pass_text(m: HoldoutMetrics) -> str:
    """Auto-pass with its counts (right PASSes of the correct pairs): two that round alike still read apart."""
    return f"{m.auto_pass:.1%} ({m.n_accepted - m.n_errors} of {m.n_positive})"


def _precision_text(m: HoldoutMetrics) -> str:
    return f"{m.n_accepted - m.n_errors}/{m.n_accepted}"
