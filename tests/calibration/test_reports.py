"""Policy plots: valid PNG files, and the reliability numbers behind them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.reports import plot_precision_coverage, plot_reliability, reliability_bins
from calibration.risk import choose_threshold, precision_coverage_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 10  # something was drawn


def _calibration_set(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = rng.uniform(size=n)
    return s, rng.uniform(size=n) >= 0.2 * (1 - s) ** 3


@pytest.mark.parametrize("n", [3000, 80])  # a certified threshold, and none (never PASS)
def test_precision_coverage_plot_is_png(n: int, tmp_path: Path) -> None:
    scores, correct = _calibration_set(n)
    choice = choose_threshold(scores, correct)
    assert choice.can_pass is (n == 3000)
    path = plot_precision_coverage(precision_coverage_curve(scores, correct), choice, tmp_path / "sub" / "pc.png")
    _assert_png(path)


def test_a_threshold_chosen_elsewhere_is_marked_on_the_curve(tmp_path: Path) -> None:
    scores, correct = _calibration_set(3000)
    curve = precision_coverage_curve(scores, correct)
    plain = plot_precision_coverage(curve, None, tmp_path / "plain.png")
    marked = plot_precision_coverage(curve, None, tmp_path / "marked.png", mark=(0.4, 0.97, "there"))
    _assert_png(marked)
    a, b = cv2.imread(str(plain)), cv2.imread(str(marked))
    assert a is not None and b is not None
    red = (b[:, :, 2] > 180) & (b[:, :, 1] < 80) & (b[:, :, 0] < 80)  # tab:red, BGR
    assert not ((a[:, :, 2] > 180) & (a[:, :, 1] < 80) & (a[:, :, 0] < 80)).any() and red.sum() > 30


def test_reliability_plot_is_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=2000)
    path = plot_reliability(p, rng.uniform(size=2000) < p, tmp_path / "rel.png")
    _assert_png(path)


def test_reliability_bins_match_brute_force() -> None:
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(size=500), [0.0, 1.0, 0.5]])
    y = rng.uniform(size=p.size) < p**2  # over-confident on purpose
    bins = reliability_bins(p, y, n_bins=5)
    for i in range(5):
        lo, hi = bins.edges[i], bins.edges[i + 1]
        sel = (p >= lo) & ((p < hi) if i < 4 else (p <= hi))
        assert bins.counts[i] == sel.sum()
        assert bins.mean_predicted[i] == pytest.approx(p[sel].mean())
        assert bins.observed[i] == pytest.approx(y[sel].mean())
    assert bins.counts.sum() == p.size
    assert bins.expected_calibration_error > 0.1
    calibrated = reliability_bins(p, rng.uniform(size=p.size) < p, n_bins=5)
    assert calibrated.expected_calibration_error < 0.08


@pytest.mark.parametrize(("p", "y"), [([0.1, 1.2], [1, 0]), ([0.1], [1, 0]), ([], [])])
def test_reliability_bad_inputs(p: list, y: list) -> None:
    with pytest.raises(ValueError):
        reliability_bins(p, y)
