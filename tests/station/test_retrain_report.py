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
