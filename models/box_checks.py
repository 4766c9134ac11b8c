"""Checks that drop the doubtful coin boxes YOLO draws on what is not a coin.

A patch of towel weave or carpet boxed as a coin shows a whole disc without a coin's rim edge
(:func:`drop_faint_rims`); the gap between coins boxed as a small coin is the colour of the bare tray
(:func:`drop_bare_tray`). Both compare a doubtful box with the confident coins of the same frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from models.masks import mask_window, paste_mask
from models.outline import CupRegion, rim_points
from models.types import CoinInstance, FloatArray, UInt8Array

FAINT_RIM_CONF = 0.75
"""Only coin boxes below this confidence are checked for a rim (:func:`drop_faint_rims`)."""


RIM_REFERENCE_CONF = 0.8
"""The frame's coin boxes at or above this confidence set the rim edge a coin of that frame shows."""


RIM_EDGE_REACH = 5
"""Side in pixels of the neighbourhood in which a rim point takes its strongest gradient (the outline of a mask
lies within a pixel or two of the edge it follows)."""


def edge_strength(image: UInt8Array) -> FloatArray:
    """``(H, W)`` float32 grey-level gradient magnitude (Sobel after a 1 px Gaussian), each pixel the strongest
    within :data:`RIM_EDGE_REACH` of it."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    g = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
    return np.asarray(cv2.dilate(mag, np.ones((RIM_EDGE_REACH, RIM_EDGE_REACH), np.uint8)), np.float32)


WHOLE_SHARE = 0.7
"""A box counts as showing a whole disc when its mask covers this share of its fitted ellipse (coins half hidden
under others, whose rims may be faint where they border them, cover far less)."""


MIN_RIM_POINTS = 8
"""Fewest rim points that measure a rim; with fewer the box is kept."""


def rim_edge(edges: FloatArray, rim: FloatArray) -> float:
    """Median edge strength at an instance's own rim points (:func:`rim_points`; ``nan`` under
    :data:`MIN_RIM_POINTS` of them).

    Args:
        edges: :func:`edge_strength` of the frame.
        rim: ``(k, 2)`` the instance's rim points in frame pixels.
    """
    if len(rim) < MIN_RIM_POINTS:
        return math.nan
    h, w = edges.shape
    xs = np.clip(np.round(rim[:, 0]).astype(np.int64), 0, w - 1)
    ys = np.clip(np.round(rim[:, 1]).astype(np.int64), 0, h - 1)
    return float(np.median(edges[ys, xs]))


def shows_whole(inst: CoinInstance) -> bool:
    """Whether the instance's mask covers at least :data:`WHOLE_SHARE` of its fitted ellipse (nothing lies on it)."""
    ellipse = math.pi * inst.axes[0] * inst.axes[1] / 4.0
    return ellipse > 0 and float(np.count_nonzero(inst.mask)) >= WHOLE_SHARE * ellipse


def drop_faint_rims(
    insts: list[CoinInstance],
    image: UInt8Array,
    share: float,
    roi: CupRegion | None = None,
    *,
    rims: Sequence[FloatArray] | None = None,
) -> list[CoinInstance]:
    """Drop the doubtful coin boxes that show a whole disc but no coin's rim around it.

    A coin's rim is an edge between metal and whatever lies around it, about as strong as the rims of the other
    coins in the same frame. A patch of towel weave, carpet or a reflection that YOLO boxes as a coin has no such
    edge along its outline: the outline runs through the texture, and nothing lies on the patch, so its mask is
    a whole disc. A coin box under :data:`FAINT_RIM_CONF` whose mask is a whole disc (:func:`shows_whole`) is
    dropped when the median edge strength along its own rim (:func:`rim_edge`) is under ``share`` times the median
    of the frame's coins at or above :data:`RIM_REFERENCE_CONF`. A coin partly hidden under others is never
    dropped: where its rim borders coins of the same metal the edge can be faint. Objects, confident boxes, and
    every box of a frame without a confident coin are kept too.

    Args:
        insts: the frame's instances.
        image: the frame, ``(H, W, 3)`` uint8 BGR.
        share: the fraction of the frame's typical rim edge a doubtful box must show (``0``: keep every box).
        roi: cup region whose boundary is not a coin's rim, or ``None``.
        rims: each instance's rim points when the caller has them (the detector does); else found here
            (:func:`rim_points`).
    """
    doubtful = [k for k, i in enumerate(insts) if i.is_coin and i.confidence < FAINT_RIM_CONF and shows_whole(i)]
    sure = [k for k, i in enumerate(insts) if i.is_coin and i.confidence >= RIM_REFERENCE_CONF]
    if share <= 0.0 or not doubtful or not sure:
        return insts
    h, w = image.shape[:2]

    def rim(k: int) -> FloatArray:
        return rims[k] if rims is not None else rim_points(insts[k].mask, insts[k].mask_origin, w, h, roi)[0]

    edges = edge_strength(image)
    ref = np.array([rim_edge(edges, rim(k)) for k in sure])
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return insts
    floor = share * float(np.median(ref))
    drop = {k for k in doubtful if rim_edge(edges, rim(k)) < floor}
    return [i for k, i in enumerate(insts) if k not in drop]


TRAY_MARGIN_PX = 7
"""Pixels every instance's mask is grown by before the rest of the frame counts as bare tray (the mask's soft edge,
a coin's shadow)."""


MIN_TRAY_SHARE = 0.05
"""The bare tray must show over this share of the frame (of the cup region, when known) to give its colour."""


MIN_TRAY_CONTRAST = 10.0
"""Below this median Lab distance between the frame's confident coins and the tray, coins and tray look alike and
no box is judged by its colour."""


TRAY_STEP = 4
"""The bare tray's colour is taken from every this-many-th pixel of each row and column (a median needs no more)."""


def tray_colour(image: UInt8Array, insts: Sequence[CoinInstance], roi: CupRegion | None = None) -> FloatArray | None:
    """Median Lab colour (OpenCV's 8-bit scale) of the bare tray: the frame's pixels farther than
    :data:`TRAY_MARGIN_PX` from every instance's mask, inside ``roi`` when given, on a grid of :data:`TRAY_STEP`;
    ``None`` when they cover under :data:`MIN_TRAY_SHARE` of it."""
    h, w = image.shape[:2]
    covered = np.zeros((h, w), bool)
    for inst in insts:
        paste_mask(covered, inst)
    grid = covered[::TRAY_STEP, ::TRAY_STEP].astype(np.uint8)
    side = 2 * math.ceil(TRAY_MARGIN_PX / TRAY_STEP) + 1
    bare = cv2.dilate(grid, np.ones((side, side), np.uint8)) == 0
    area = bare.size
    if roi is not None:
        yy, xx = np.mgrid[0:h:TRAY_STEP, 0:w:TRAY_STEP]
        inside = roi.inset(xx, yy) > 0.0
        bare &= inside
        area = int(np.count_nonzero(inside))
    if np.count_nonzero(bare) < max(1.0, MIN_TRAY_SHARE * area):
        return None
    return _median_lab(image[::TRAY_STEP, ::TRAY_STEP][bare])


def _median_lab(pixels: UInt8Array) -> FloatArray:
    """Median Lab colour of ``(n, 3)`` BGR (or ``(n,)`` grey) pixels."""
    rows = np.ascontiguousarray(pixels, np.uint8).reshape(-1, 1, pixels.shape[-1] if pixels.ndim == 2 else 1)
    bgr = cv2.cvtColor(rows, cv2.COLOR_GRAY2BGR) if rows.shape[2] == 1 else rows
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB).reshape(-1, 3)
    return np.asarray(np.median(lab, axis=0), np.float32)


def _mask_colour(image: UInt8Array, inst: CoinInstance) -> FloatArray | None:
    """Median Lab colour under the instance's mask (the part inside the frame, every other pixel of each row and
    column); ``None`` for an empty one."""
    window = mask_window(inst, image.shape[1], image.shape[0])
    if window is None:
        return None
    (rows, cols), mask = window
    pixels = image[rows, cols][::2, ::2][mask[::2, ::2]]
    return None if len(pixels) == 0 else _median_lab(pixels)


def drop_bare_tray(
    insts: list[CoinInstance], image: UInt8Array, share: float, roi: CupRegion | None = None
) -> list[CoinInstance]:
    """Drop the doubtful coin boxes whose inside is the colour of the bare tray.

    YOLO boxes the gap between three coins, or a patch of towel beside them, as a small coin: its mask then holds
    what lies around the coins, whole or cut by the coins next to it, so the rim test of :func:`drop_faint_rims`
    (whole discs only) does not see it. A coin shows metal: its colour differs from the tray's about as much as the
    other coins' do, even when it lies mostly hidden in a heap (on the synthetic test mints, no coin box came within
    0.3 of the frame's typical distance). A coin box under :data:`RIM_REFERENCE_CONF` is dropped when the median
    Lab distance between its pixels and the bare tray (:func:`tray_colour`) is under ``share`` times the median of
    the frame's coins at or above that confidence. Objects, confident boxes, and every box of a frame without a
    confident coin, without enough bare tray, or whose coins look like the tray (:data:`MIN_TRAY_CONTRAST`) are
    kept.

    Args:
        insts: the frame's instances.
        image: the frame, ``(H, W, 3)`` uint8 BGR.
        share: the fraction of the frame's typical coin-to-tray distance a doubtful box must show (``0``: keep
            every box).
        roi: the cup region, whose inside alone is the tray; ``None``: the whole frame.
    """
    doubtful = [k for k, i in enumerate(insts) if i.is_coin and i.confidence < RIM_REFERENCE_CONF]
    sure = [i for i in insts if i.is_coin and i.confidence >= RIM_REFERENCE_CONF]
    if share <= 0.0 or not doubtful or not sure:
        return insts
    tray = tray_colour(image, insts, roi)
    if tray is None:
        return insts

    def distance(inst: CoinInstance) -> float:
        colour = _mask_colour(image, inst)
        return math.nan if colour is None else float(np.linalg.norm(colour - tray))

    typical = float(np.nanmedian([distance(i) for i in sure]))
    if not typical >= MIN_TRAY_CONTRAST:
        return insts
    drop = {k for k in doubtful if distance(insts[k]) < share * typical}
    return [i for k, i in enumerate(insts) if k not in drop]
