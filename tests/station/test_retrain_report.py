"""The retrain report's old-versus-new figure, including a holdout that holds no correct pair yet."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest

from models.bundle import Bundle, load_bundle
from models.gate import holdout_metrics, promotion_gate
from models.retrain import Candidate, Comparison
from station.retrain_report import plot_old_vs_new, write_retrain_report


def _candidate(y: np.ndarray, old: np.ndarray, new: np.ndarray) -> Candidate:
    decision = promotion_gate(holdout_metrics(old, y, 0.9), holdout_metrics(new, y, 0.9), target=0.9)
    return Candidate(cast(Bundle, None), Comparison(decision, old, new, y, 0.9, 0.9))


@pytest.mark.parametrize("correct", [[True, False, True, False], [False, False, False, False], []])
def test_old_vs_new_plot_is_drawn_whatever_the_holdout_holds(tmp_path: Path, correct: list[bool]) -> None:
    y = np.array(correct, bool)
    rng = np.random.default_rng(0)
    cand = _candidate(y, rng.uniform(size=y.size), rng.uniform(size=y.size))
    path = plot_old_vs_new(cand, tmp_path / "old_vs_new.png")
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (400, 1000, 3)


def test_a_holdout_precision_far_below_a_half_is_still_drawn(tmp_path: Path) -> None:
    y = np.zeros(15, bool)
    y[0] = True  # one correct pair of fifteen: precision 1/15 at every threshold, a curve of one point
    scores = np.full(15, 0.01)
    path = plot_old_vs_new(_candidate(y, scores, scores), tmp_path / "old_vs_new.png")
    image = np.asarray(cv2.imread(str(path)), np.int32)
    panel = image[:, 250:480][::-1]  # the precision panel right of its legend (lower left), rows from the bottom
    orange = np.abs(panel - np.array([14, 127, 255])).sum(axis=2) < 60  # tab:orange in BGR
    assert orange[60:120].any()  # the candidate's point, near the panel's foot


def test_a_threshold_under_the_floor_is_reported_as_the_floor_with_the_passes_made_there(tmp_path: Path) -> None:
    current = load_bundle()
    loose = current.with_threshold(current.rechoose(0.9))
    assert loose.threshold.floored
    rng = np.random.default_rng(2)
    y = rng.random(400) < 0.7
    scores = np.where(y, rng.uniform(0.2, 1.0, 400), rng.uniform(0.0, 0.45, 400))
    old = holdout_metrics(scores, y, current.threshold.threshold)
    new = holdout_metrics(scores, y, loose.threshold.threshold)
    decision = promotion_gate(old, new, target=0.9)
    cmp = Comparison(decision, scores, scores, y, current.threshold.threshold, loose.threshold.threshold)
    report = write_retrain_report(tmp_path, current, Candidate(loose, cmp)).read_text()
    (row,) = [line for line in report.splitlines() if line.startswith("| candidate")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"0.5000 (certified {loose.threshold.threshold:.4f}, under the floor)"
    station = loose.threshold.accepted(scores)
    assert (int(cells[4]), int(cells[5])) == (int(station.sum()), int((station & ~y).sum()))
    assert int(cells[4]) < int((scores >= loose.threshold.threshold).sum())  # the certified one would count more
    (in_force,) = [line for line in report.splitlines() if line.startswith("| in force")]
    assert f"| {current.threshold.threshold:.4f} |" in in_force and "certified" not in in_force
