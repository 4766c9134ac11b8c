"""Join the pieces of one coin that coins lying across it split apart.

The segmenter gives each YOLO box its own mask; a coin with another lying across its middle shows as two pieces,
often boxed apart. Two pieces are one coin when one circle runs along the rim of each and holds both
(:func:`joining_circle`) and what of that circle does not show lies under other instances (:func:`hidden_by_others`).
:func:`merge_fragments` applies this to a frame's instances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.masks import paste_mask
from models.outline import CupRegion, arc_coverage, circle_fit, hull_distance
from models.types import BoolArray, CoinInstance, FloatArray

FRAGMENT_RIM_SHARE = 0.5
"""Two pieces are one coin when this share of each one's rim points lies on the circle fitted to their union ..."""


FRAGMENT_RIM_TOLERANCE = 0.04
"""... within this fraction of the circle's radius ..."""


FRAGMENT_INSIDE_SHARE = 0.9
"""... and this share of each one's outline lies inside it (grown by the same tolerance) ..."""


FRAGMENT_UNEXPLAINED = 0.1
"""... and at most this share of its disc is bare (neither piece nor any other instance lies there)."""


FRAGMENT_SIZE_MARGIN = 0.15
"""A joined coin may be at most this much larger than the largest whole coin of its frame."""


WHOLE_COVERAGE = 0.8
"""A coin whose rim shows in this share of the ten-degree sectors around its centre gives the frame's coin size."""


@dataclass(frozen=True)
class Outline:
    """An instance's outline points, the part of them on its own rim, and its visible area in pixels."""

    rim: FloatArray
    outline: FloatArray
    area: int


def whole_radii(insts: list[CoinInstance], outlines: list[Outline]) -> list[float]:
    """The radii of the coins in a frame whose rim shows nearly all round, one per size (within 4 %)."""
    radii: list[float] = []
    for inst, o in zip(insts, outlines, strict=True):
        if not inst.is_coin or len(o.rim) < 20 or arc_coverage(o.rim, *inst.center) < WHOLE_COVERAGE:
            continue
        r = max(inst.axes) / 2.0
        if all(abs(r - q) > FRAGMENT_RIM_TOLERANCE * q for q in radii):
            radii.append(r)
    return radii


def joining_circle(
    a: CoinInstance, oa: Outline, b: CoinInstance, ob: Outline, sizes: Sequence[float] = ()
) -> tuple[float, float, float] | None:
    """The circle ``(cx, cy, r)`` of one coin whose visible parts are ``a`` and ``b``, or ``None``.

    A circle joins them when it runs along the rim of each part, holds both outlines, is no smaller than the
    smaller part's own circle and, in a frame with whole coins, not much larger than the largest of them (the rims
    of coins along the edge of a dense pile can line up on one large circle). The first tried is the one fitted to
    the rim of their union (the parts' rim points on the union's convex hull); then, for pieces whose arcs are too
    short to size a circle, one of each size in ``sizes`` (the frame's whole coins) fitted to the same points.
    """
    if not (a.is_coin and b.is_coin) or len(oa.rim) < 8 or len(ob.rim) < 8:
        return None
    # a coin lying across the split leaves a gap up to its size
    gap = max(max(a.axes) / 2.0, max(b.axes) / 2.0, 2.0 * max(sizes, default=0.0))
    ax0, ay0, ax1, ay1 = (float(v) for v in a.bbox)
    bx0, by0, bx1, by1 = (float(v) for v in b.bbox)
    if ax0 > bx1 + gap or bx0 > ax1 + gap or ay0 > by1 + gap or by0 > ay1 + gap:
        return None
    # a circle of radius r holds both only if they span at most its diameter (most pairs of a pile fail here)
    span = max(max(ax1, bx1) - min(ax0, bx0), max(ay1, by1) - min(ay0, by0)) / 2.0 / (1.0 + FRAGMENT_RIM_TOLERANCE)
    largest = max(sizes, default=math.inf) * (1.0 + FRAGMENT_SIZE_MARGIN)
    if span > largest + 1.0:
        return None
    pts = np.concatenate([oa.rim, ob.rim]).astype(np.float32)
    r_part = min(max(a.axes), max(b.axes)) / 2.0
    # where the two parts touch, their facing edges are not the coin's rim
    rim = pts[hull_distance(pts, cv2.convexHull(pts)) <= 1.5]
    cx, cy, r = circle_fit(rim)
    if not math.isfinite(r):
        return None
    if span <= r + 1.0 and r <= largest and _holds((cx, cy, r), r_part, oa, ob):
        return cx, cy, r
    for size in sizes:
        if span > size + 1.0 or size < r_part * (1.0 - FRAGMENT_RIM_TOLERANCE):
            continue
        centre = circle_fit_radius(rim, size, (cx, cy, r))
        if centre is not None and _holds((*centre, size), r_part, oa, ob):
            return (*centre, size)
    return None


def _holds(circle: tuple[float, float, float], r_part: float, oa: Outline, ob: Outline) -> bool:
    """Whether ``circle`` is no smaller than the smaller part's own, holds both outlines and runs along both rims."""
    cx, cy, r = circle
    if r < r_part * (1.0 - FRAGMENT_RIM_TOLERANCE):
        return False  # smaller than the smaller part's own circle: no circle of both
    for o in (oa, ob):
        d_out = np.hypot(o.outline[:, 0] - cx, o.outline[:, 1] - cy)
        if float(np.mean(d_out <= r * (1.0 + FRAGMENT_RIM_TOLERANCE))) < FRAGMENT_INSIDE_SHARE:
            return False
        on = np.abs(np.hypot(o.rim[:, 0] - cx, o.rim[:, 1] - cy) - r) <= FRAGMENT_RIM_TOLERANCE * r
        if float(np.mean(on)) < FRAGMENT_RIM_SHARE:
            return False
    return True


def circle_fit_radius(
    pts: FloatArray, radius: float, start: tuple[float, float, float], iterations: int = 20
) -> tuple[float, float] | None:
    """Centre of the circle of radius ``radius`` nearest ``pts`` in least squares (Gauss-Newton).

    It starts from the free fit ``start`` moved away from the points by the difference in radius, so the
    circle grows on the side where the arc opens.
    """
    if len(pts) < 3:
        return None
    sx, sy, sr = start
    mx, my = float(pts[:, 0].mean()), float(pts[:, 1].mean())
    ux, uy = sx - mx, sy - my
    norm = math.hypot(ux, uy)
    if norm > 1e-6:
        sx, sy = sx + ux / norm * (radius - sr), sy + uy / norm * (radius - sr)
    c = np.array([sx, sy], dtype=np.float64)
    p = pts.astype(np.float64)
    for _ in range(iterations):
        d = c[None, :] - p
        dist = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)
        jac = d / dist[:, None]
        step, *_ = np.linalg.lstsq(jac, radius - dist, rcond=None)
        c += step
        if float(np.hypot(*step)) < 1e-3:
            break
    return (float(c[0]), float(c[1])) if np.isfinite(c).all() else None


def hidden_by_others(circle: tuple[float, float, float], covered: BoolArray, roi: CupRegion | None = None) -> bool:
    """Whether what the circle's disc does not show of the joined pieces lies under other instances.

    A coin split by coins lying across it is hidden only where they (or the cup rim, or the image edge) are:
    at most :data:`FRAGMENT_UNEXPLAINED` of its disc may be bare tray.
    """
    cx, cy, r = circle
    h, w = covered.shape
    inner = r * (1.0 - FRAGMENT_RIM_TOLERANCE)
    x0, y0 = max(0, math.floor(cx - inner)), max(0, math.floor(cy - inner))
    x1, y1 = min(w, math.ceil(cx + inner) + 1), min(h, math.ceil(cy + inner) + 1)
    if x1 <= x0 or y1 <= y0:
        return False
    yy, xx = np.mgrid[y0:y1, x0:x1]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= inner * inner
    if roi is not None:
        disc &= np.asarray(roi.inset(xx, yy)) > 0.0  # under the cup's rim: hidden by it
    n = int(np.count_nonzero(disc))
    if n == 0:
        return False
    bare = int(np.count_nonzero(disc & ~covered[y0:y1, x0:x1]))
    return bare <= FRAGMENT_UNEXPLAINED * n


def union_mask(a: CoinInstance, b: CoinInstance) -> tuple[BoolArray, tuple[int, int]]:
    """The union of two instances' masks, cropped to its extent, with its origin."""
    x0, y0 = min(a.mask_origin[0], b.mask_origin[0]), min(a.mask_origin[1], b.mask_origin[1])
    x1 = max(a.mask_origin[0] + a.mask.shape[1], b.mask_origin[0] + b.mask.shape[1])
    y1 = max(a.mask_origin[1] + a.mask.shape[0], b.mask_origin[1] + b.mask.shape[0])
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for inst in (a, b):
        ox, oy = inst.mask_origin[0] - x0, inst.mask_origin[1] - y0
        out[oy : oy + inst.mask.shape[0], ox : ox + inst.mask.shape[1]] |= inst.mask
    return out, (int(x0), int(y0))


Remake = Callable[[tuple[BoolArray, tuple[int, int]], float, int, int, int], tuple[CoinInstance, Outline] | None]
"""Builds an instance and its outline from ``(mask, origin)``, confidence, class, frame width and height (the
detector's own instance maker), or ``None`` when the mask fits no coin."""


def merge_fragments(
    parts: list[tuple[CoinInstance, Outline, int]],
    width: int,
    height: int,
    roi: CupRegion | None,
    remake: Remake,
) -> list[tuple[CoinInstance, Outline]]:
    """Join the pieces of one coin that coins lying across it split apart; every instance comes with its
    outline, by decreasing confidence.

    Two nearby pieces are one coin when a circle runs along the rim of each and holds both
    (:func:`joining_circle`), and what of that circle is not visible lies under other instances
    (:func:`hidden_by_others`): they become one instance (``remake`` of their union: outline refitted, the higher
    confidence kept). The circle is fitted to the rim of their union, or, where the pieces show too little rim to
    size it, drawn at the size of a whole coin in the same frame. A small coin lying on a larger one has its rim on
    its own circle, two coins side by side share no circle, and a circle through two coins' rims that shows the
    tray between them, or is far larger than any whole coin of the frame, is no coin; none of them is joined.

    Args:
        parts: each instance with its outline and class index.
        width: frame width.
        height: frame height.
        roi: the cup region (its rim hides coins too), or ``None``.
        remake: builds the joined instance from the union of two masks.
    """
    insts = [p[0] for p in parts]
    outlines = [p[1] for p in parts]
    classes = [p[2] for p in parts]
    covered = np.zeros((height, width), dtype=bool)
    for inst in insts:
        paste_mask(covered, inst)
    sizes = whole_radii(insts, outlines)
    alive = sorted(range(len(insts)), key=lambda k: -outlines[k].area)
    i = 0
    while i < len(alive):
        a = alive[i]
        for b in alive[i + 1 :]:
            circle = joining_circle(insts[a], outlines[a], insts[b], outlines[b], sizes)
            if circle is None or not hidden_by_others(circle, covered, roi):
                continue
            conf = max(insts[a].confidence, insts[b].confidence)
            joined = remake(union_mask(insts[a], insts[b]), conf, classes[a], width, height)
            if joined is not None:
                insts[a], outlines[a] = joined
                alive.remove(b)
                break  # try the grown piece against the others again
        else:
            i += 1
    return sorted(((insts[k], outlines[k]) for k in alive), key=lambda pair: -pair[0].confidence)
