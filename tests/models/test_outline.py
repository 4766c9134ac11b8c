"""A coin's own rim among its mask's outline, and the circle or ellipse fitted to it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.outline import fit_outline, hull_distance, segment_distance


def test_fit_outline_ignores_an_occluded_bite() -> None:
    """A disc with a bite taken out by a neighbour still fits its own centre and diameter."""
    yy, xx = np.mgrid[0:200, 0:200]
    disc = (xx - 100.3) ** 2 + (yy - 90.7) ** 2 <= 60**2
    bite = (xx - 165) ** 2 + (yy - 90) ** 2 <= 45**2
    fit = fit_outline(disc & ~bite, (0, 0), 400, 400)
    assert fit is not None
    (cx, cy), (major, _), _ = fit
    assert abs(cx - 100.3) < 1.0 and abs(cy - 90.7) < 1.0
    assert abs(major - 120) / 120 < 0.02


@pytest.mark.parametrize("seed", range(5))
def test_hull_distance_matches_the_distance_to_every_segment(seed: int) -> None:

    rng = np.random.default_rng(seed)
    # a coin's outline pixels: a noisy circle with a bite taken out, on integer coordinates like a contour's
    ang = np.sort(rng.uniform(0, 2 * np.pi, 400))
    r = 40 + rng.normal(0, 1.5, 400) - 15 * (np.abs(ang - 2.0) < 0.5)
    pts = np.round(np.stack([100 + r * np.cos(ang), 80 + r * np.sin(ang)], axis=1)).astype(np.float32)
    hull = cv2.convexHull(pts)
    got = hull_distance(pts, hull)
    want = segment_distance(pts, hull.reshape(-1, 2).astype(np.float64))
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert (got <= 1.5).sum() > 50 and (got > 1.5).sum() > 20  # both sides of the rim test are exercised


def test_hull_distance_of_a_degenerate_hull() -> None:

    line = np.array([[0, 0], [5, 0], [10, 0]], np.float32)
    np.testing.assert_allclose(hull_distance(line, cv2.convexHull(line)), [0, 0, 0], atol=1e-6)
    point = np.array([[3, 4]], np.float32)
    np.testing.assert_allclose(hull_distance(point, cv2.convexHull(point)), [0], atol=1e-6)
