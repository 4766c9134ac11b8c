"""The retrain report's old-versus-new figure, including a holdout that holds no correct pair yet."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest

from models.bundle import Bundle
from models.gate import holdout_metrics, promotion_gate
from models.retrain import Candidate, Comparison
from station.retrain_report import plot_old_vs_new


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
