"""Plots of the decision policy: precision against coverage with the chosen operating point, reliability.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch, no GUI)
and written as PNG. Only the DejaVu fonts bundled with matplotlib are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from calibration.risk import PrecisionCoverageCurve, ThresholdChoice, clopper_pearson_lower, confidence_text

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BOUND_POINTS = 60
"""Candidate thresholds at which the precision lower-bound band is evaluated (it needs a bisection each)."""


@dataclass(frozen=True)
class ReliabilityBins:
    """Predicted probability against observed frequency in equal-width bins.

    Attributes:
        edges: ``(n_bins + 1,)`` bin edges on ``[0, 1]``.
        mean_predicted: ``(n_bins,)`` mean predicted probability per bin (``nan`` for empty bins).
        observed: ``(n_bins,)`` share of positives per bin (``nan`` for empty bins).
        counts: ``(n_bins,)`` samples per bin.
    """

    edges: FloatArray
    mean_predicted: FloatArray
    observed: FloatArray
    counts: IntArray

    @property
    def expected_calibration_error(self) -> float:
        """Count-weighted mean ``|observed - predicted|`` over non-empty bins."""
        used = self.counts > 0
        total = int(self.counts.sum())
        if total == 0:
            return math.nan
        gap = np.abs(self.observed[used] - self.mean_predicted[used])
        return float((gap * self.counts[used]).sum() / total)


def reliability_bins(probabilities: npt.ArrayLike, outcomes: npt.ArrayLike, n_bins: int = 10) -> ReliabilityBins:
    """Bin predicted probabilities and compare with outcomes.

    Args:
        probabilities: ``(n,)`` predicted probabilities in ``[0, 1]``.
        outcomes: ``(n,)`` bool, what happened.
        n_bins: number of equal-width bins; ``1.0`` falls in the last bin.

    Returns:
        The bins.

    Raises:
        ValueError: mismatched or empty inputs, probabilities outside ``[0, 1]``, ``n_bins < 1``.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(outcomes).astype(bool)
    if p.ndim != 1 or p.shape != y.shape or p.size == 0:
        raise ValueError(f"need equal-length non-empty 1-D inputs, got {p.shape} and {y.shape}")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins).astype(np.int64)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(counts > 0, sum_p / np.maximum(counts, 1), np.nan)
        observed = np.where(counts > 0, sum_y / np.maximum(counts, 1), np.nan)
    return ReliabilityBins(edges, mean_p, observed, counts)


def plot_precision_coverage(
    curve: PrecisionCoverageCurve,
    choice: ThresholdChoice | None,
    path: str | Path,
    title: str = "PASS precision against coverage",
    mark: tuple[float, float, str] | None = None,
) -> Path:
    """Draw precision against coverage, the precision lower bound, the target and the chosen point.

    Args:
        curve: from :func:`calibration.risk.precision_coverage_curve`.
        choice: the chosen threshold (its target, delta and bound are drawn), or ``None``.
        path: PNG to write; parent folders are created.
        title: figure title.
        mark: ``(coverage, precision, label)`` of a threshold chosen elsewhere, drawn on these pairs' curve.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    used = curve.n_accepted > 0
    ax.plot(curve.coverage[used], curve.precision[used], color="tab:blue", lw=1.5, label="empirical precision")
    delta = choice.delta if choice is not None else 0.05
    picks = np.unique(np.linspace(0, int(used.sum()) - 1, min(BOUND_POINTS, int(used.sum()))).astype(int))
    if picks.size:
        n_acc = curve.n_accepted[used][picks]
        n_err = curve.n_errors[used][picks]
        lower = [clopper_pearson_lower(int(a - e), int(a), delta) for a, e in zip(n_acc, n_err, strict=True)]
        ax.plot(
            curve.coverage[used][picks],
            lower,
            color="tab:blue",
            ls="--",
            lw=1.0,
            label=f"{confidence_text(delta)} lower bound (Clopper-Pearson)",
        )
    if choice is not None:
        ax.axhline(choice.target, color="tab:red", lw=1.0, ls=":", label=f"target {choice.target:.3g}")
        if choice.can_pass and choice.precision is not None:
            ax.errorbar(
                [choice.coverage],
                [choice.precision],
                yerr=[[choice.precision - choice.precision_lower_bound], [0.0]],
                fmt="o",
                color="tab:red",
                capsize=4,
                label=f"chosen: threshold {choice.threshold:.3g}, coverage {choice.coverage:.1%}",
            )
        else:
            ax.text(0.5, 0.05, "no threshold certified: never PASS", transform=ax.transAxes, ha="center")
    if mark is not None:
        ax.plot([mark[0]], [mark[1]], "D", color="tab:red", label=mark[2])
    ax.set_xlabel("coverage (share of correct cups that PASS)")
    ax.set_ylabel("precision of PASS")
    ax.set_xlim(0.0, 1.0)
    lows = [float(np.nanmin(curve.precision[used]))] if used.any() else [0.0]
    if choice is not None:
        lows.append(choice.target - 0.01)
    ax.set_ylim(max(0.0, min(lows) - 0.01), 1.002)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_reliability(
    probabilities: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    path: str | Path,
    n_bins: int = 10,
    title: str = "Reliability",
    note: str = "",
) -> Path:
    """Draw a reliability diagram (observed frequency against predicted probability) with bin counts.

    Args:
        probabilities: ``(n,)`` predicted probabilities in ``[0, 1]``.
        outcomes: ``(n,)`` bool.
        path: PNG to write; parent folders are created.
        n_bins: equal-width bins.
        title: figure title; the expected calibration error is appended.
        note: a line under the counts saying what the diagram leaves out (empty: none).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    bins = reliability_bins(probabilities, outcomes, n_bins)
    path = Path(path)
    fig = Figure(figsize=(5.6, 6.0), dpi=100)
    FigureCanvasAgg(fig)
    ax, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    centres = 0.5 * (bins.edges[:-1] + bins.edges[1:])
    width = bins.edges[1] - bins.edges[0]
    used = bins.counts > 0
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1.0, label="perfectly calibrated")
    ax.bar(centres[used], bins.observed[used], width=width * 0.9, color="tab:blue", alpha=0.5, label="observed")
    ax.plot(bins.mean_predicted[used], bins.observed[used], "o-", color="tab:blue", lw=1.0)
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_title(f"{title} (ECE {bins.expected_calibration_error:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, alpha=0.3)
    ax_count.bar(centres, bins.counts, width=width * 0.9, color="tab:gray")
    ax_count.set_yscale("log" if bins.counts.max() > 50 * max(1, bins.counts[used].min()) else "linear")
    ax_count.set_xlabel("predicted probability")
    ax_count.set_ylabel("count")
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.03 if note else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
