"""The outline of a coin's visible mask, and the circle or ellipse of the coin it belongs to.

A coin partly hidden under others, or cut by the image edge or the cup's rim, shows only part of its own rim: the
outline points of its mask that lie on the mask's convex hull, away from the image edge and the cup's boundary
(:func:`rim_points`). An ellipse or a circle fitted to those points (:func:`fit_points`) gives the whole coin's
centre and diameter.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from models.types import BoolArray, FloatArray

EDGE_MARGIN_PX = 1.0
"""A mask reaching this close to the image border is cut by the edge."""


RUN_TRIM = 40
"""Rim runs lose ``1 / RUN_TRIM`` of the outline's points at each end, where an occluder's edge meets the rim."""


PIXEL_CENTRE_BIAS = 1.0
"""Outline points are pixel centres, half a pixel inside the true edge on each side: added to fitted axes."""


ELLIPSE_COVERAGE = 0.4
"""An ellipse is fitted when the rim points cover this fraction of the circumference; a circle otherwise."""


class CupRegion(Protocol):
    """The cup's region in the image (``calibration.camera.CupRoi``: a circle or a rounded-square tray)."""

    def inset(self, x: npt.ArrayLike, y: npt.ArrayLike) -> npt.NDArray[Any]:
        """Distance in pixels from each point to the boundary: positive inside."""
        ...

    def cuts(self, x: float, y: float, radius: float, tolerance: float = 0.0) -> bool:
        """Whether a disc reaches past the boundary by more than ``tolerance * radius``."""
        ...


def rim_points(
    mask: BoolArray, origin: tuple[int, int], width: int, height: int, roi: CupRegion | None = None
) -> tuple[FloatArray, FloatArray]:
    """Outline points of ``mask`` that lie on the coin's own rim.

    Args:
        mask: ``(h, w)`` bool visible mask.
        origin: ``(x, y)`` of ``mask[0, 0]`` in the frame.
        width: frame width.
        height: frame height.
        roi: cup region whose boundary is not the coin's rim, or ``None``.

    Returns:
        ``(k, 2)`` float32 rim points and ``(m, 2)`` float32 all outline points, frame pixels.
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        empty = np.zeros((0, 2), dtype=np.float32)
        return empty, empty
    shift = np.array([origin[0] - 1, origin[1] - 1], dtype=np.float32)
    loops = [c.reshape(-1, 2).astype(np.float32) + shift for c in contours]
    pts = np.concatenate(loops)
    hull = cv2.convexHull(pts)
    rims: list[FloatArray] = []
    for loop in loops:
        keep = hull_distance(loop, hull) <= 1.5
        keep &= (loop[:, 0] > EDGE_MARGIN_PX) & (loop[:, 1] > EDGE_MARGIN_PX)
        keep &= (loop[:, 0] < width - 1 - EDGE_MARGIN_PX) & (loop[:, 1] < height - 1 - EDGE_MARGIN_PX)
        if roi is not None:
            keep &= roi.inset(loop[:, 0], loop[:, 1]) > 2.0
        rims.append(loop[_erode_runs(keep, max(2, len(loop) // RUN_TRIM))])
    return np.concatenate(rims), pts


def hull_distance(pts: FloatArray, hull: np.ndarray) -> FloatArray:
    """Distance of each of ``(n, 2)`` points inside the convex polygon ``hull`` (``(k, 1, 2)``, from
    ``cv2.convexHull`` of a set holding them) to its boundary: ``(n,)`` float32.

    Inside a convex polygon the distance to the boundary is the smallest distance to the lines of its edges,
    one matrix product instead of a clipped distance to every segment.
    """
    a = hull.reshape(-1, 2).astype(np.float64)
    ab = np.roll(a, -1, axis=0) - a
    length = np.hypot(ab[:, 0], ab[:, 1])
    edge = length > 1e-9
    if np.count_nonzero(edge) < 3:  # a point or a segment: the distance to its vertices and edge
        return segment_distance(pts, a)
    a, ab, length = a[edge], ab[edge], length[edge]
    p = pts.astype(np.float64)
    cross = p[:, :1] * ab[None, :, 1] - p[:, 1:] * ab[None, :, 0] - (a[:, 0] * ab[:, 1] - a[:, 1] * ab[:, 0])
    return np.asarray((np.abs(cross) / length).min(axis=1), dtype=np.float32)


def segment_distance(pts: FloatArray, a: np.ndarray) -> FloatArray:
    """Distance of each of ``(n, 2)`` points to the closed polyline through the ``(k, 2)`` vertices ``a``."""
    if len(a) < 2:
        return np.asarray(np.hypot(pts[:, 0] - a[0, 0], pts[:, 1] - a[0, 1]), dtype=np.float32)
    ab = np.roll(a, -1, axis=0) - a
    ap = pts[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9)[None], 0.0, 1.0)
    d = ap - t[..., None] * ab[None]
    return np.asarray(np.sqrt((d * d).sum(-1)).min(axis=1), dtype=np.float32)


def _erode_runs(keep: BoolArray, k: int) -> BoolArray:
    """Drop ``k`` points at each end of every run of kept points along a closed outline (junction points)."""
    if keep.all() or not keep.any():
        return keep
    out = keep.copy()
    for step in range(1, k + 1):
        out &= np.roll(keep, step) & np.roll(keep, -step)
    return out


def circle_fit(pts: FloatArray) -> tuple[float, float, float]:
    """Algebraic (Kasa) least-squares circle ``cx, cy, r``."""
    x, y = pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64)
    a = np.stack([x, y, np.ones_like(x)], axis=1)
    b = x * x + y * y
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = sol[0] / 2.0, sol[1] / 2.0
    r = math.sqrt(max(sol[2] + cx * cx + cy * cy, 0.0))
    return float(cx), float(cy), float(r)


def arc_coverage(pts: FloatArray, cx: float, cy: float) -> float:
    """Fraction of the 36 ten-degree sectors around ``(cx, cy)`` that hold a point."""
    ang = np.degrees(np.arctan2(pts[:, 1] - cy, pts[:, 0] - cx)) % 360.0
    return len(np.unique((ang // 10).astype(int))) / 36.0


def fit_outline(
    mask: BoolArray, origin: tuple[int, int], width: int, height: int, roi: CupRegion | None = None
) -> tuple[tuple[float, float], tuple[float, float], float] | None:
    """Fit the coin's outline to the rim part of its visible mask.

    An ellipse (``cv2.fitEllipse``) when the rim covers most of the circumference and the fit is nearly round,
    else a least-squares circle; falls back to the mask's enclosing circle when too little rim is visible.

    Args:
        mask: ``(h, w)`` bool visible mask.
        origin: ``(x, y)`` of ``mask[0, 0]`` in the frame.
        width: frame width.
        height: frame height.
        roi: cup region whose boundary is not the coin's rim, or ``None``.

    Returns:
        ``((cx, cy), (major, minor), angle)`` in frame pixels and degrees, or ``None`` for an empty mask.
    """
    return fit_points(*rim_points(mask, origin, width, height, roi))


def fit_points(rim: FloatArray, outline: FloatArray) -> tuple[tuple[float, float], tuple[float, float], float] | None:
    """:func:`fit_outline` on the points :func:`rim_points` gave: the coin's rim part and the whole outline."""
    if len(outline) == 0:
        return None
    (ex, ey), er = cv2.minEnclosingCircle(outline)
    d_enc = 2.0 * float(er) + PIXEL_CENTRE_BIAS
    fallback = ((float(ex), float(ey)), (d_enc, d_enc), 0.0)
    if len(rim) < 12:
        return fallback
    cx, cy, r = circle_fit(rim)
    if not (math.isfinite(r) and 0.3 * er < r < 3.0 * er):
        return fallback
    if arc_coverage(rim, cx, cy) >= ELLIPSE_COVERAGE and len(rim) >= 20:
        (ex2, ey2), (a, b), angle = cv2.fitEllipse(rim)
        major, minor = max(a, b), min(a, b)
        if minor > 0.8 * major and abs(major - 2 * r) < 0.1 * r:
            if a < b:
                angle = (angle + 90.0) % 180.0
            axes = (float(major) + PIXEL_CENTRE_BIAS, float(minor) + PIXEL_CENTRE_BIAS)
            return (float(ex2), float(ey2)), axes, float(angle)
    d = 2.0 * r + PIXEL_CENTRE_BIAS
    return (cx, cy), (d, d), 0.0
