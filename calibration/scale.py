"""Pixels per millimetre from one image of a reference lying where the coins will lie.

* a coin of known diameter (:func:`estimate_from_coin`): Hough circles propose candidates, each candidate's edge is
  found to sub-pixel precision along radial rays, followed out to the coin's outline when it lay on the coin's face
  (a raised rim's inner edge or a bead ring, often stronger than the outline), and fitted with an ellipse; px/mm is
  the ellipse's major axis over the coin's diameter, as the detector measures a coin (a tilted coin's major axis
  is its diameter). Given what the station's detector found in the photo, the scale is the detector's own fitted
  circle of the reference coin instead (the measure ``detect`` applies to every coin later), and the edge fit is its
  cross-check: a circle the detector finds no coin at (a coin's centre dot, a relief ring) is never measured;
* a printed checkerboard (:func:`estimate_from_checkerboard`): OpenCV corners refined with ``cornerSubPix``; px/mm
  is the mean spacing of neighbouring corners over the square size;
* a printed ArUco marker (:func:`estimate_from_aruco`): px/mm is the mean marker side over its printed size.

:func:`find_circles` also finds the cup's rim (:func:`calibration.camera.detect_cup_roi`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from models.outline import PIXEL_CENTRE_BIAS, rim_points

if TYPE_CHECKING:
    from calibration.camera import CupRoi
    from models.types import CoinInstance

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]

HOUGH_MAX_SIDE = 1000
"""Hough runs on a copy whose longer side is at most this many pixels; refinement uses full resolution."""
MIN_EDGE_CONTRAST = 1.5
"""A circle's edge gradient must exceed the image's 90th-percentile gradient by this factor."""
RIM_RATIO = 0.6
"""A circle enclosing a smaller one of less than this radius ratio is a rim; of more, the smaller is relief."""
CUP_OUTLINE_TOLERANCE = 0.15
"""A circle centred within this share of the cup's radius of its centre, and as large within it, is the cup's own
outline (its floor's edge or its rim), never a reference coin."""
MAX_COIN_SPAN = 0.5
"""A reference coin spans at most this share of the image's shorter side. A circle wider than that is a cup's or
tray's rim (the rim finder looks for circles from half the shorter side up), or a coin photographed far closer than
the station's camera sees coins: measured as the coin, it would put every diameter several times off."""
CONCENTRIC = 0.03
"""Two circles whose centres lie within this share of the larger one's radius (and at least 1.5 px) are one coin's
outline and its relief (a raised rim, a bead ring, a bimetallic coin's core: minted round one centre, and fitted to
a fraction of a pixel); further apart, the smaller is another thing lying inside the larger."""


class CalibrationError(ValueError):
    """The calibration image does not show what was asked for (no coin, no board, unreadable file)."""


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in image pixels (OpenCV ``RotatedRect`` convention).

    Attributes:
        cx: centre column.
        cy: centre row.
        major: full length of the long axis.
        minor: full length of the short axis.
        angle: rotation in degrees.
    """

    cx: float
    cy: float
    major: float
    minor: float
    angle: float


@dataclass(frozen=True, eq=False)
class ScaleEstimate:
    """Pixels per millimetre measured on one image, with what it was measured on.

    Attributes:
        px_per_mm: the scale.
        method: ``"coin"``, ``"checkerboard"`` or ``"aruco"``.
        reference_mm: coin diameter, square size or marker side, in mm.
        residual_px: RMS distance of edge points from the fitted ellipse (coin: of the detector's rim points of
            the coin from its circle, when measured by the detector) or standard deviation of the measured spacings
            (board, marker), in pixels.
        ellipse: the fitted coin outline (coin only).
        points: ``(n, 2)`` float64 ``x, y`` of the edge points or corners used.
        warning: ``""``, or what makes the measure doubtful (coins of other sizes beside the one measured, an edge
            larger than the detector's outline, a reference the detector takes for an object).
    """

    px_per_mm: float
    method: str
    reference_mm: float
    residual_px: float
    ellipse: Ellipse | None = None
    points: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    warning: str = ""


# ------------------------------------------------------------------------------------------------------- circles


@dataclass(frozen=True)
class CircleFit:
    ellipse: Ellipse
    points: FloatArray  # (n, 2) inlier edge points
    support: float  # inlier rays / all rays
    rms: float  # RMS radial residual of the inliers, px
    strength: float  # median edge gradient of the inliers

    @property
    def radius(self) -> float:
        return 0.25 * (self.ellipse.major + self.ellipse.minor)

    def encloses(self, other: CircleFit) -> bool:
        d = math.hypot(self.ellipse.cx - other.ellipse.cx, self.ellipse.cy - other.ellipse.cy)
        return d + other.radius < self.radius


def to_gray(image: npt.NDArray[Any]) -> UInt8Array:
    if image.ndim == 2:
        return np.asarray(image, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    raise CalibrationError(f"expected a (H, W) or (H, W, 3) image, got shape {image.shape}")


def _hough_candidates(
    gray: UInt8Array, min_radius: float, max_radius: float, max_candidates: int
) -> list[tuple[float, float, float]]:
    """Circle proposals ``(x, y, r)`` in full-resolution pixels.

    OpenCV's ``HOUGH_GRADIENT_ALT`` is run per radius octave (it misses circles when the range is wide) at a
    strict and a loose circularity; the strict proposals come first.
    """
    h, w = gray.shape
    scale = min(1.0, HOUGH_MAX_SIDE / max(h, w))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    r_lo, r_hi = max(4.0, min_radius * scale), max(6.0, max_radius * scale)
    bands = []
    lo = r_lo
    while lo < r_hi:
        bands.append((int(lo), math.ceil(min(2.0 * lo, r_hi))))
        lo *= 2.0
    found: list[tuple[float, float, float]] = []
    for param2 in (0.9, 0.75):
        for band_lo, band_hi in bands:
            circles = cv2.HoughCircles(
                small,
                cv2.HOUGH_GRADIENT_ALT,
                dp=1.5,
                minDist=max(4.0, float(band_lo)),
                param1=100,
                param2=param2,
                minRadius=band_lo,
                maxRadius=band_hi,
            )
            if circles is not None:
                found.extend((float(x) / scale, float(y) / scale, float(r) / scale) for x, y, r in circles[0][:8])
    unique: list[tuple[float, float, float]] = []
    for c in found:
        if all(math.hypot(c[0] - u[0], c[1] - u[1]) > 0.2 * u[2] or abs(c[2] - u[2]) > 0.2 * u[2] for u in unique):
            unique.append(c)
    return unique[:max_candidates]


def _radial_edges(
    smooth: npt.NDArray[np.float32], cx: float, cy: float, r_lo: float, r_hi: float, n_rays: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Strongest radial edge on each of ``n_rays`` rays between radii ``r_lo`` and ``r_hi``.

    Returns:
        ``(n_rays, 2)`` edge points ``x, y``, ``(n_rays,)`` edge radii and ``(n_rays,)`` gradient magnitudes
        (``nan`` radius where the peak sits on the window's border).
    """
    step = 0.25
    radii = np.arange(r_lo, r_hi + step, step, dtype=np.float64)
    theta = np.linspace(0.0, 2.0 * math.pi, n_rays, endpoint=False)
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    map_x = (cx + radii[None, :] * cos).astype(np.float32)
    map_y = (cy + radii[None, :] * sin).astype(np.float32)
    profiles = cv2.remap(smooth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    deriv = np.abs(np.gradient(profiles.astype(np.float64), step, axis=1))
    idx = np.argmax(deriv, axis=1)
    rows = np.arange(n_rays)
    strength = deriv[rows, idx]
    inside = (idx > 0) & (idx < len(radii) - 1)
    i_c = np.clip(idx, 1, len(radii) - 2)
    left, mid, right = deriv[rows, i_c - 1], deriv[rows, i_c], deriv[rows, i_c + 1]
    denom = left - 2.0 * mid + right
    offset = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1.0, denom), 0.0)
    edge_r = radii[i_c] + np.clip(offset, -1.0, 1.0) * step
    edge_r = np.where(inside, edge_r, np.nan)
    pts = np.column_stack([cx + edge_r * cos[:, 0], cy + edge_r * sin[:, 0]])
    return pts, edge_r, strength


def _kasa_circle(pts: FloatArray) -> tuple[float, float, float]:
    """Algebraic least-squares circle through ``(n, 2)`` points."""
    x, y = pts[:, 0], pts[:, 1]
    a = np.column_stack([x, y, np.ones_like(x)])
    b = x**2 + y**2
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = sol[0] / 2.0, sol[1] / 2.0
    r = math.sqrt(max(sol[2] + cx**2 + cy**2, 0.0))
    return float(cx), float(cy), r


def _trimmed_circle(pts: FloatArray, min_points: float) -> tuple[float, float, float] | None:
    """Circle ``(cx, cy, r)`` through ``(n, 2)`` edge points, refitted four times without the points far off it
    (beyond four robust standard deviations, and at least 0.75 px), or ``None`` when fewer than ``min_points``
    stay: the edge found on most rays wins over a neighbour's edge or a scratch found on a few."""
    keep = np.ones(len(pts), dtype=bool)
    cx, cy, r = 0.0, 0.0, 0.0
    for _ in range(4):
        if keep.sum() < max(min_points, 3):
            return None
        cx, cy, r = _kasa_circle(pts[keep])
        res = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) - r
        mad = float(np.median(np.abs(res[keep] - np.median(res[keep]))))
        keep = np.abs(res) <= max(0.75, 4.0 * 1.4826 * mad)
    if keep.sum() < max(min_points, 3):
        return None
    return cx, cy, r


def _refine_circle(
    smooth: npt.NDArray[np.float32], cx: float, cy: float, r: float, n_rays: int = 240
) -> CircleFit | None:
    """Sub-pixel outline of the circle near ``(cx, cy, r)``, or ``None`` when the edge support is weak.

    The circle is refitted on radial edge points in windows that shrink around the current fit; the result is
    then verified in a wide window, where a true outline still gives the strongest edge on most rays and a
    chance arrangement of texture does not.
    """
    for window in (0.3, 0.12, 0.06):
        half = max(window * r, 2.0)
        pts, edge_r, strength = _radial_edges(smooth, cx, cy, r - half, r + half, n_rays)
        ok = np.isfinite(edge_r) & (strength >= 0.35 * np.median(strength))
        if ok.sum() < 0.5 * n_rays:
            return None
        circle = _trimmed_circle(pts[ok], 0.5 * n_rays)
        if circle is None:
            return None
        cx, cy, r = circle
    half = max(0.2 * r, 4.0)
    pts, edge_r, strength = _radial_edges(smooth, cx, cy, r - half, r + half, n_rays)
    inlier = np.isfinite(edge_r) & (np.abs(edge_r - r) <= max(1.0, 0.02 * r))
    support = float(inlier.sum()) / n_rays
    if support < 0.6:
        return None
    pts = pts[inlier]
    res = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) - r
    rms = float(np.sqrt(np.mean(res**2)))
    if rms > max(0.35, 0.02 * r):
        return None  # a ragged outline: texture, not a machined edge
    (ex, ey), (a1, a2), angle = cv2.fitEllipse(pts.astype(np.float32))
    ellipse = Ellipse(float(ex), float(ey), float(max(a1, a2)), float(min(a1, a2)), float(angle))
    if ellipse.minor < 0.8 * ellipse.major:
        return None  # not a coin lying flat under a top-down camera
    return CircleFit(ellipse, pts, support, rms, float(np.median(strength[inlier])))


def find_circles(gray: UInt8Array, min_radius: float, max_radius: float, max_candidates: int) -> list[CircleFit]:
    """Well-supported circles: continuous outline, small residual, edge clearly stronger than the texture."""
    smooth = np.asarray(cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.0), dtype=np.float32)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    texture = float(np.percentile(np.hypot(gx, gy), 90))
    fits = []
    for x, y, r in _hough_candidates(gray, min_radius, max_radius, max_candidates):
        fit = _refine_circle(smooth, x, y, r)
        if (
            fit is not None
            and min_radius * 0.9 <= fit.radius <= max_radius * 1.1
            and fit.strength >= MIN_EDGE_CONTRAST * max(texture, 1.0)
        ):
            fits.append(fit)
    # drop duplicates (two proposals converging on the same edge), keeping the better supported one
    fits.sort(key=lambda f: f.support * f.strength, reverse=True)
    unique: list[CircleFit] = []
    for f in fits:
        if all(
            math.hypot(f.ellipse.cx - u.ellipse.cx, f.ellipse.cy - u.ellipse.cy) > 0.1 * u.radius
            or abs(f.radius - u.radius) > 0.05 * u.radius
            for u in unique
        ):
            unique.append(f)
    return unique


def inner_edge(gray: UInt8Array, fit: CircleFit, low: float, n_rays: int = 240) -> CircleFit | None:
    """The clean circle just inside ``fit`` and round its centre, from ``low`` times its radius up to a few pixels
    short of it (a cup's floor edge inside its rim's outer edge), or ``None`` when there is none.

    On each ray the strongest edge in that band is taken; the circle through them must hold most rays, be centred on
    ``fit`` (:data:`CONCENTRIC`) and have a small residual, as :func:`_refine_circle` asks of any circle (checked
    in a narrow window: its wide one would reach the stronger rim outside), and the band between the two circles
    must be another surface than what lies inside (its median grey level apart from that of the floor by more
    than the floor's own spread): a shadow or a shading ring on the floor is no rim.
    """
    smooth = np.asarray(cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.0), dtype=np.float32)
    cx, cy, r = fit.ellipse.cx, fit.ellipse.cy, fit.radius
    pts, edge_r, strength = _radial_edges(smooth, cx, cy, low * r, r - max(3.0, 0.02 * r), n_rays)
    median = float(np.median(strength))
    ok = np.isfinite(edge_r) & (strength >= 0.35 * median)
    circle = _trimmed_circle(pts[ok], 0.5 * n_rays)
    if circle is None:
        return None
    ix, iy, ir = circle
    if math.hypot(ix - cx, iy - cy) > max(1.5, CONCENTRIC * r):
        return None
    half = max(2.0, 0.02 * ir)
    pts, edge_r, strength = _radial_edges(smooth, ix, iy, ir - half, min(ir + half, r - 2.0), n_rays)
    inlier = np.isfinite(edge_r) & (np.abs(edge_r - ir) <= max(1.0, 0.02 * ir)) & (strength >= 0.35 * median)
    if inlier.sum() < 0.6 * n_rays or not low * r <= ir < r:
        return None
    res = np.hypot(pts[inlier, 0] - ix, pts[inlier, 1] - iy) - ir
    rms = float(np.sqrt(np.mean(res**2)))
    if rms > max(0.35, 0.02 * ir):
        return None
    band = _ring_levels(smooth, ix, iy, ir + 2.0, r - 2.0, n_rays)
    floor = _ring_levels(smooth, ix, iy, max(ir - 2.0 - (r - ir), 0.0), ir - 2.0, n_rays)
    if abs(float(np.median(band)) - float(np.median(floor))) <= float(np.std(floor)):
        return None
    (ex, ey), (a1, a2), angle = cv2.fitEllipse(pts[inlier].astype(np.float32))
    ellipse = Ellipse(float(ex), float(ey), float(max(a1, a2)), float(min(a1, a2)), float(angle))
    return CircleFit(ellipse, pts[inlier], float(inlier.sum()) / n_rays, rms, float(np.median(strength[inlier])))


def _ring_levels(
    smooth: npt.NDArray[np.float32], cx: float, cy: float, r_lo: float, r_hi: float, n_rays: int
) -> FloatArray:
    """The grey levels of the ring between radii ``r_lo`` and ``r_hi`` round ``(cx, cy)``, sampled along ``n_rays``
    rays a pixel apart: ``(n_rays * k,)``."""
    radii = np.arange(r_lo, max(r_hi, r_lo + 1.0), 1.0, dtype=np.float64)
    theta = np.linspace(0.0, 2.0 * math.pi, n_rays, endpoint=False)
    map_x = (cx + radii[None, :] * np.cos(theta)[:, None]).astype(np.float32)
    map_y = (cy + radii[None, :] * np.sin(theta)[:, None]).astype(np.float32)
    return np.asarray(
        cv2.remap(smooth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.float64
    ).ravel()


# ------------------------------------------------------------------------------------------ a coin's outer edge

OUTER_EDGE_REACH = 1.35
"""How far out a coin's outline is looked for, as a factor of the radius of the circle found on it. The strongest
circular edge of a minted coin is often on its face (the inner edge of its raised rim, a bead ring: 0.75 to 0.95 of
the radius), where the detector measures the whole disc: a scale taken from it reads every coin up to 10 % large."""
OUTER_EDGE_STRENGTH = 0.15
"""An edge outside the circle counts when its colour gradient reaches this share of the circle's own edge..."""
OUTER_EDGE_CONTRAST = 3.0
"""...and this many times the median gradient of what lies around the coin..."""
OUTER_EDGE_SHARPNESS = 0.7
"""...and when the gradient 1.5 px to one side of it is at most this share of its own (a shadow's edge is soft)."""
OUTER_EDGE_SUPPORT = 0.5
"""...and when it lies on one circle around the same centre on this share of the rays: a neighbouring coin, a
shadow or the table's grain is not concentric with the coin."""


def colour_smooth(image: npt.NDArray[Any]) -> tuple[npt.NDArray[np.float32], float]:
    """The image as :func:`find_circles` smooths it, but in colour, and its texture level.

    A gold coin on a beige tray can differ in hue more than in grey level: its outline is looked for in colour.

    Returns:
        ``(H, W, C)`` float32 smoothed image (``C`` is 1 for a grey one) and the 90th percentile of its colour
        gradient magnitude per pixel.
    """
    data = np.asarray(image, dtype=np.float32)
    smooth = cv2.GaussianBlur(data, (0, 0), 1.0).reshape(data.shape[0], data.shape[1], -1)
    step = max(1, round(max(smooth.shape[:2]) / HOUGH_MAX_SIDE))  # the level of texture needs no full resolution
    sub = smooth[::step, ::step]
    gx = cv2.Sobel(sub, cv2.CV_32F, 1, 0, ksize=3).reshape(sub.shape) / 8.0
    gy = cv2.Sobel(sub, cv2.CV_32F, 0, 1, ksize=3).reshape(sub.shape) / 8.0
    magnitude = np.sqrt((gx**2 + gy**2).sum(axis=2))
    return np.ascontiguousarray(smooth, dtype=np.float32), float(np.percentile(magnitude, 90)) / step


def _radial_gradient(
    smooth: npt.NDArray[np.float32], cx: float, cy: float, radii: FloatArray, n_rays: int
) -> tuple[FloatArray, FloatArray]:
    """Colour gradient magnitude along ``n_rays`` rays from ``(cx, cy)`` sampled at ``radii``.

    Returns:
        ``(n_rays, len(radii))`` magnitudes (grey levels per pixel) and ``(n_rays, 2)`` unit directions ``cos, sin``.
    """
    theta = np.linspace(0.0, 2.0 * math.pi, n_rays, endpoint=False)
    dirs = np.column_stack([np.cos(theta), np.sin(theta)])
    map_x = (cx + radii[None, :] * dirs[:, :1]).astype(np.float32)
    map_y = (cy + radii[None, :] * dirs[:, 1:]).astype(np.float32)
    profiles = cv2.remap(smooth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    profiles = np.asarray(profiles, np.float64).reshape(n_rays, len(radii), -1)
    deriv = np.asarray(np.gradient(profiles, radii[1] - radii[0], axis=1), np.float64)
    return np.sqrt((deriv**2).sum(axis=2)), dirs


def _outer_edge(smooth: npt.NDArray[np.float32], fit: CircleFit, texture: float, n_rays: int = 240) -> CircleFit:
    """The coin's outline around a circle found on it: the outermost edge concentric with ``fit`` within
    :data:`OUTER_EDGE_REACH`, fitted as :func:`_refine_circle` fits one; ``fit`` itself when there is none (it is
    the outline already) or the edge outside does not make a clean circle.

    Args:
        smooth: ``(H, W, C)`` float32 from :func:`colour_smooth`.
        fit: a circle found by :func:`find_circles`.
        texture: the image's texture level from :func:`colour_smooth`; an outline stands out from it.
        n_rays: rays around the centre.

    Returns:
        The outline's fit; its ``strength`` stays ``fit``'s (the edge the coin was found by), so that circles are
        ranked alike whether or not their outline lay outside.
    """
    step = 0.25
    cx, cy, r = fit.ellipse.cx, fit.ellipse.cy, fit.radius
    radii = np.arange(0.97 * r, OUTER_EDGE_REACH * r + step, step)
    magnitude, dirs = _radial_gradient(smooth, cx, cy, radii, n_rays)
    tol = max(1.0, 0.015 * r)
    own = float(np.median(magnitude[:, np.abs(radii - r) <= tol].max(axis=1)))
    around = float(np.median(magnitude[:, radii >= 1.15 * r]))  # the tray beyond any coin's rim
    floor = max(OUTER_EDGE_STRENGTH * own, OUTER_EDGE_CONTRAST * max(around, 1.0))
    mid = magnitude[:, 1:-1]
    peak = np.zeros_like(magnitude, dtype=bool)
    peak[:, 1:-1] = (mid >= magnitude[:, :-2]) & (mid > magnitude[:, 2:]) & (mid >= floor)
    # a coin's edge is sharp, a shadow's soft: the gradient falls away on at least one side within 1.5 px
    w = round(1.5 / step)
    padded = np.pad(magnitude, ((0, 0), (w, w)), mode="edge")
    flank = np.minimum(padded[:, : -2 * w], padded[:, 2 * w :])
    peak &= flank <= OUTER_EDGE_SHARPNESS * magnitude
    # the share of rays with an edge within tol of each radius: a circle around the same centre shows as a ridge
    reach = max(1, round(tol / step))
    counts = np.pad(np.cumsum(peak, axis=1), ((0, 0), (1, 0)))
    idx = np.arange(len(radii))
    near = counts[:, np.minimum(idx + reach + 1, len(radii))] - counts[:, np.maximum(idx - reach, 0)] > 0
    support = near.mean(axis=0)
    ring = (support >= OUTER_EDGE_SUPPORT) & (radii > r + 2.0 * tol)
    if not ring.any():
        return fit
    last = int(np.flatnonzero(ring)[-1])
    first = last
    while first > 0 and ring[first - 1]:
        first -= 1
    rho = float(radii[first + int(np.argmax(support[first : last + 1]))])
    # on each ray, the edge nearest that circle, to a quarter of a step
    off = np.where(peak, np.abs(radii[None, :] - rho), np.inf)
    j = np.argmin(off, axis=1)
    rows = np.flatnonzero(off[np.arange(n_rays), j] <= 2.0 * tol)
    j = np.clip(j[rows], 1, len(radii) - 2)
    left, centre, right = magnitude[rows, j - 1], magnitude[rows, j], magnitude[rows, j + 1]
    denom = left - 2.0 * centre + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1.0, denom), 0.0)
    edge_r = radii[j] + np.clip(shift, -1.0, 1.0) * step
    pts = np.column_stack([cx + edge_r * dirs[rows, 0], cy + edge_r * dirs[rows, 1]])
    circle = _trimmed_circle(pts, OUTER_EDGE_SUPPORT * n_rays)
    if circle is None:
        return fit
    ox, oy, orad = circle
    res = np.hypot(pts[:, 0] - ox, pts[:, 1] - oy) - orad
    inlier = np.abs(res) <= max(1.0, 0.02 * orad)
    if (
        inlier.sum() < OUTER_EDGE_SUPPORT * n_rays
        or math.hypot(ox - cx, oy - cy) > 0.1 * r
        or not r < orad <= OUTER_EDGE_REACH * r
    ):
        return fit
    rms = float(np.sqrt(np.mean(res[inlier] ** 2)))
    if rms > max(0.35, 0.02 * orad):
        return fit
    (ex, ey), (a1, a2), angle = cv2.fitEllipse(pts[inlier].astype(np.float32))
    ellipse = Ellipse(float(ex), float(ey), float(max(a1, a2)), float(min(a1, a2)), float(angle))
    if ellipse.minor < 0.8 * ellipse.major:
        return fit
    return CircleFit(ellipse, pts[inlier], float(inlier.sum()) / n_rays, rms, fit.strength)


def estimate_from_coin(
    image: npt.NDArray[Any],
    reference_mm: float,
    min_radius_frac: float = 0.01,
    max_radius_frac: float = 0.45,
    cup: CupRoi | None = None,
    detected: Sequence[CoinInstance] | None = None,
) -> ScaleEstimate:
    """Pixels per millimetre from one coin of known diameter.

    Given what the station's detector found in the photo (``detected``), the reference is a coin it found whole and
    is sure of, and px/mm is its fitted circle over the coin's diameter: the measure ``detect`` applies to every coin
    later, so the reference coin reads its own diameter in its own photo. The circles found on the photo's edges are
    the cross-check: one that agrees with the detector's circle confirms it (and ranks the coin first), and one the
    detector finds no coin at (a coin's centre dot, a relief ring, a scratch) is never measured.

    Without ``detected``, the coin is the best-supported circle that does not enclose another circle (a tray or cup
    rim around the coin is passed over). Either way, a circle that is the cup's own outline (``cup``: its round
    region, the floor or the rim around it) is never the coin, even when the coin itself is not found: a reference
    coin that hardly stands out from the tray would otherwise leave the cup's floor to be measured as a coin, several
    times too large. Nor is a circle wider than half the image's shorter side (:data:`MAX_COIN_SPAN`), or one holding
    another circle not centred on it (a coin lying in it, however large), whether or not the cup is known.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        reference_mm: the coin's diameter in mm (e.g. 23.25 for a 1 euro coin).
        min_radius_frac: smallest coin radius as a fraction of the image's shorter side.
        max_radius_frac: largest coin radius as a fraction of the image's shorter side.
        cup: the cup's region, whose outline is passed over (``None``: not known).
        detected: every coin and object the station's detector found in ``image``, run with ``cup`` as its region
            (a coin cut by the rim is ``partial``); ``None``: the coin is measured by its edge alone.

    Returns:
        The estimate, with the fitted ellipse.

    Raises:
        CalibrationError: no coin was found, or only circles no reference coin can be (the cup's outline, one wider
            than half the image, one holding another circle, one the detector finds no whole coin at), saying which
            and what to do.
        ValueError: ``reference_mm`` not positive.
    """
    if not (math.isfinite(reference_mm) and reference_mm > 0):
        raise ValueError(f"reference_mm must be > 0, got {reference_mm}")
    gray = to_gray(image)
    side = min(gray.shape)
    fits = find_circles(gray, max(8.0, min_radius_frac * side), max_radius_frac * side, 40)
    found = len(fits)
    if cup is not None and cup.shape == "round":
        fits = [f for f in fits if not _outlines(f, cup)]
    passed_over = found - len(fits)
    smooth, texture = colour_smooth(image)
    fits = [_outer_edge(smooth, f, texture) for f in fits]  # a ring on the coin's face: its outline lies outside
    if detected is not None:
        return _measure_detected(detected, fits, reference_mm, gray.shape)
    # an enclosed circle of similar size is the coin's own relief ring; an enclosing much larger one is a rim
    outlines = [g for g in fits if not any(f.encloses(g) and g.radius >= RIM_RATIO * f.radius for f in fits)]
    inner = [f for f in outlines if not any(f.encloses(g) for g in outlines)]
    too_wide = [f for f in inner if f.ellipse.major > MAX_COIN_SPAN * side]
    holding = [f for f in inner if f.ellipse.major <= MAX_COIN_SPAN * side and _holds_another(f, fits)]
    coins = [f for f in inner if f.ellipse.major <= MAX_COIN_SPAN * side and not _holds_another(f, fits)]
    if not coins:
        raise CalibrationError(_no_coin_reason(passed_over > 0, too_wide, holding, side))
    best = max(coins, key=lambda f: f.support * f.strength)
    # coins of another size lying apart: which is the reference? Measuring another puts every diameter off (a
    # pile of the reference coin alone measures the same whichever; a tilted one comes out a few % off)
    other = [f for f in coins if not _overlap(f, best) and abs(f.radius - best.radius) > SAME_SIZE * best.radius]
    warning = ""
    if other:
        warning = _other_sizes(2 * best.radius, [2 * f.radius for f in other])
    return ScaleEstimate(
        px_per_mm=best.ellipse.major / reference_mm,
        method="coin",
        reference_mm=reference_mm,
        residual_px=best.rms,
        ellipse=best.ellipse,
        points=best.points,
        warning=warning,
    )


SAME_SIZE = 0.04
"""Two coins whose diameters differ by more than this share may be of two denominations (euro coins next in size
differ by 4.3 % to 15 %); a calibration photo showing both cannot say which is the reference."""
REFERENCE_CONFIDENCE = 0.5
"""The detector's score a reference coin needs: a coin it is less sure of may be a pattern of the tray."""
CROSS_CHECK = 0.03
"""The outline fitted to the photo's edge confirms the detector's circle of a coin when their diameters agree
within this share. A smaller outline is mostly the coin's relief (a raised rim's inner edge), which the detector
does not measure; a larger one means the detector's outline missed part of the coin, and is said."""
ROUND_OUTLINE = 0.02
"""A reference coin's mask outline follows its fitted ellipse to this share of its radius (RMS; whole rendered coins:
0.3 to 1.4 %). A coin slid under a rim the cup region does not know of (a tray's) shows a straight stretch (2.4 to
7 %), and its measure is several per cent off."""
APART = 0.95
"""Two instances whose centres lie further apart than this share of their radii's sum lie apart (touching at
most): the reference coin shows its whole outline."""
RETAKE = (
    "lay the reference coin flat in the cup, apart from its rim and from other coins, on a plain sheet it stands out "
    "from, and photograph it again with the station's camera (or calibrate with a printed board: --checkerboard)"
)
"""What to do when no reference coin is found."""


@dataclass(frozen=True)
class _Reference:
    """An instance the detector found that may be the reference coin.

    Attributes:
        seen: the detector's instance.
        outline: the circle fitted to the photo's edge around the same centre nearest its size, if any.
        apart: whether it lies apart from every other instance found (:data:`APART`).
        points: ``(n, 2)`` rim points of its mask.
        residual: their RMS distance from its fitted ellipse, in pixels.
    """

    seen: CoinInstance
    outline: CircleFit | None
    apart: bool
    points: FloatArray
    residual: float

    @property
    def round(self) -> bool:
        """Whether its mask's outline follows its fitted ellipse (:data:`ROUND_OUTLINE`): no rim cuts it."""
        return self.residual <= ROUND_OUTLINE * 0.5 * self.seen.diameter_px

    @property
    def disagreement(self) -> float:
        """How much larger the outline is than the detector's circle, as a share of its diameter (0 without one)."""
        return 0.0 if self.outline is None else self.outline.ellipse.major / self.seen.diameter_px - 1.0

    @property
    def confirmed(self) -> bool:
        """Whether the photo's edge confirms the detector's circle (:data:`CROSS_CHECK`)."""
        return self.outline is not None and abs(self.disagreement) <= CROSS_CHECK


def _measure_detected(
    detected: Sequence[CoinInstance], fits: list[CircleFit], reference_mm: float, shape: tuple[int, ...]
) -> ScaleEstimate:
    """px/mm from the detector's circle of the reference coin among ``detected``, cross-checked with the circles
    ``fits`` found on the photo's edges; ``shape`` is the image's ``(H, W)``.

    Raises:
        CalibrationError: the detector found no coin whole, sure and of a coin's size, saying what it found.
    """
    side = min(shape[:2])
    found = [_reference(d, detected, fits, shape) for d in detected]
    candidates = [
        c
        for c in found
        if not c.seen.partial
        and c.seen.confidence >= REFERENCE_CONFIDENCE
        and c.seen.diameter_px <= MAX_COIN_SPAN * side
        and c.round
        and (c.seen.is_coin or c.confirmed)
    ]
    if not candidates:
        raise CalibrationError(_no_reference_reason(found, fits, side))
    best = max(candidates, key=lambda c: (c.seen.is_coin, c.confirmed, c.apart, c.seen.confidence))
    seen = best.seen
    major, minor = max(seen.axes), min(seen.axes)
    warnings = []
    if best.disagreement > CROSS_CHECK:
        assert best.outline is not None
        warnings.append(
            f"the coin's edge in the photo is {best.outline.ellipse.major:.0f} px across, "
            f"{100 * best.disagreement:.0f} % more than the detector's outline of it ({major:.0f} px, measured): look "
            "at the overlay; if the green outline misses part of the coin, lay it on a plain sheet and calibrate again"
        )
    if not seen.is_coin:
        warnings.append(
            "the station's detector takes the reference for an object, not a coin: coins like it would be flagged as "
            "objects; calibrate with a coin of the kind the station checks, or with a printed board (--checkerboard)"
        )
    other = [
        c.seen.diameter_px
        for c in candidates
        if c.seen.is_coin and not _touch(c.seen, seen) and abs(c.seen.diameter_px - major) > SAME_SIZE * major
    ]
    if other:
        warnings.append(_other_sizes(major, other))
    return ScaleEstimate(
        px_per_mm=major / reference_mm,
        method="coin",
        reference_mm=reference_mm,
        residual_px=best.residual,
        ellipse=Ellipse(float(seen.center[0]), float(seen.center[1]), float(major), float(minor), float(seen.angle)),
        points=best.points,
        warning="; ".join(warnings),
    )


def _reference(
    seen: CoinInstance, detected: Sequence[CoinInstance], fits: list[CircleFit], shape: tuple[int, ...]
) -> _Reference:
    """``seen`` with the edge circle around its centre nearest its size (centres within :data:`CONCENTRIC` of its
    radius, at least 1.5 px), whether it lies apart from the rest of ``detected``, and how round its mask is in an
    image of ``shape``."""
    radius = 0.5 * seen.diameter_px
    around = [
        f
        for f in fits
        if math.hypot(f.ellipse.cx - seen.center[0], f.ellipse.cy - seen.center[1]) <= max(1.5, CONCENTRIC * radius)
    ]
    outline = min(around, key=lambda f: abs(f.ellipse.major - seen.diameter_px), default=None)
    apart = not any(other is not seen and _touch(other, seen) for other in detected)
    points, residual = _rim_residual(seen, shape)
    return _Reference(seen, outline, apart, points, residual)


def _touch(a: CoinInstance, b: CoinInstance) -> bool:
    """Whether two instances overlap (more than touching, :data:`APART`)."""
    gap = math.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1])
    return gap < APART * 0.5 * (a.diameter_px + b.diameter_px)


def _rim_residual(seen: CoinInstance, shape: tuple[int, ...]) -> tuple[FloatArray, float]:
    """The rim points of the detector's mask of ``seen`` (``(n, 2)`` ``x, y``) and their RMS distance in pixels
    from its fitted ellipse: how closely the outline measured follows the mask (a coin cut by a rim the region does
    not know of shows a straight or hollow stretch, far off it)."""
    rim, _ = rim_points(seen.mask, seen.mask_origin, int(shape[1]), int(shape[0]))
    pts = np.asarray(rim, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return pts, 0.0
    # rim points are pixel centres, half a pixel inside the edge the fitted axes were widened to
    a = 0.5 * max(max(seen.axes) - PIXEL_CENTRE_BIAS, 1.0)
    b = 0.5 * max(min(seen.axes) - PIXEL_CENTRE_BIAS, 1.0)
    t = math.radians(seen.angle)  # the major axis's direction
    x, y = pts[:, 0] - seen.center[0], pts[:, 1] - seen.center[1]
    u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    rho = np.maximum(np.sqrt((u / a) ** 2 + (v / b) ** 2), 1e-9)
    off = np.hypot(x, y) * (1.0 - 1.0 / rho)  # along the ray from the centre, to the ellipse
    return pts, float(np.sqrt(np.mean(off**2)))


def _other_sizes(measured: float, others: list[float]) -> str:
    """The warning for coins of other diameters (``others``, px) lying beside the one ``measured`` (px)."""
    sizes = ", ".join(f"{d:.0f}" for d in sorted(others, reverse=True)[:3])
    return (
        f"the coin measured is {measured:.0f} px across, and coins of other sizes lie beside it ({sizes} px): if it "
        "is not the reference coin, photograph the reference alone (see the overlay) and calibrate again"
    )


def _no_reference_reason(found: list[_Reference], fits: list[CircleFit], side: int) -> str:
    """Why none of what the detector found (``found``) is a reference coin, with what to do; ``fits`` are the
    circles found on the photo's edges, named when the detector finds no coin where they lie."""
    coins = [c for c in found if c.seen.is_coin]
    if not coins:
        circles = ""
        if fits:
            largest = max(f.ellipse.major for f in fits)
            circles = f" (a circle {largest:.0f} px across is no coin to it)"
        what = "only objects" if found else "nothing"
        return f"no coin found: the station's detector sees {what} in the photo{circles}: {RETAKE}"
    whole = [c for c in coins if not c.seen.partial and c.round]
    if not whole:
        return (
            f"no whole coin found: the {len(coins)} coin(s) the station's detector sees are cut by the cup's rim or "
            f"the photo's edge, or lie under another: {RETAKE}"
        )
    sure = [c for c in whole if c.seen.confidence >= REFERENCE_CONFIDENCE]
    if not sure:
        best = max(c.seen.confidence for c in whole)
        return (
            f"no coin found: the station's detector is not sure of any coin (score {best:.2f} at best, "
            f"{REFERENCE_CONFIDENCE:.2f} needed): {RETAKE}"
        )
    width = max(c.seen.diameter_px for c in sure)
    return (
        f"no coin found: what the station's detector takes for a coin is {width:.0f} px across, more than half the "
        f"photo's shorter side ({side} px), so it is a cup or tray, not a coin (or the coin was photographed far "
        f"closer than the station's camera sees coins): {RETAKE}"
    )


def _holds_another(fit: CircleFit, fits: list[CircleFit]) -> bool:
    """Whether ``fit`` encloses another of ``fits`` not centred on it: a coin lying in a cup's rim or a tray, not
    the coin's own relief ring (a raised rim, a bimetallic coin's core), which shares its centre."""
    return any(
        fit.encloses(g)
        and math.hypot(fit.ellipse.cx - g.ellipse.cx, fit.ellipse.cy - g.ellipse.cy) > max(1.5, CONCENTRIC * fit.radius)
        for g in fits
    )


def _no_coin_reason(passed_over: bool, too_wide: list[CircleFit], holding: list[CircleFit], side: int) -> str:
    """Why no circle found is the reference coin, with what to do: the cup's own outline was all there was
    (``passed_over``), the circles left were wider than a coin can be (``too_wide``) or held another circle
    (``holding``), or there was no circle at all."""
    if passed_over:
        return f"no coin found, only the cup's own round outline: {RETAKE}"
    if too_wide:
        width = max(f.ellipse.major for f in too_wide)
        return (
            f"no coin found: the circle found is {width:.0f} px across, more than half the photo's shorter side "
            f"({side} px), so it is a cup's or tray's rim, not a coin (or the coin was photographed far closer "
            f"than the station's camera sees coins): {RETAKE}"
        )
    if holding:
        return (
            "no coin found: the circle found holds another circle inside it (a rim around a coin), so it is no "
            f"coin: {RETAKE}"
        )
    return f"no coin found: no circular outline with a clear, continuous edge: {RETAKE}"


def _overlap(a: CircleFit, b: CircleFit) -> bool:
    """Whether two circles overlap (two fits of one coin, or a coin and its relief), rather than lie apart."""
    return math.hypot(a.ellipse.cx - b.ellipse.cx, a.ellipse.cy - b.ellipse.cy) < a.radius + b.radius


def _outlines(fit: CircleFit, cup: CupRoi, tolerance: float = CUP_OUTLINE_TOLERANCE) -> bool:
    """Whether ``fit`` is the round cup's own outline: centred on it, and its size within ``tolerance`` (a share of
    the cup's radius; the floor's edge and the rim's lie that close)."""
    off = math.hypot(fit.ellipse.cx - cup.x, fit.ellipse.cy - cup.y)
    return off < tolerance * cup.radius and abs(fit.radius - cup.radius) < tolerance * cup.radius


# -------------------------------------------------------------------------------------------------- flat targets


MIN_BOARD_CORNERS = 3
"""A board needs at least this many inner corners each way: OpenCV's corner search fails on fewer, and a grid of
two by two cannot show that its spacing is regular."""
BOARD_SPREAD = 0.05
"""A board's corner spacings may differ from their median by this share (a camera a little off top-down, print
error); a grid found with a wrong pattern size mixes corners of several squares and spreads far wider."""
BOARD_BEND = 0.1
"""Each row and column of corners must lie on a straight line to within this share of the spacing."""


def estimate_from_checkerboard(image: npt.NDArray[Any], pattern: tuple[int, int], square_mm: float) -> ScaleEstimate:
    """Pixels per millimetre from a printed checkerboard.

    The corners found must make a regular grid (even spacing, straight rows and columns): given the wrong pattern
    size, OpenCV's fallback search can return corners that are not one square apart, and their mean spacing is no
    square's size.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        pattern: inner corners ``(columns, rows)`` (OpenCV's convention: a board of 8x6 squares has 7x5), at
            least 3x3.
        square_mm: side of one square in mm.

    Returns:
        The estimate; ``points`` are the ``(cols * rows, 2)`` refined corners, row by row.

    Raises:
        CalibrationError: the board was not found, or the corners found are not a regular grid.
        ValueError: bad pattern or square size.
    """
    cols, rows = pattern
    if cols < MIN_BOARD_CORNERS or rows < MIN_BOARD_CORNERS:
        raise ValueError(
            f"a checkerboard pattern needs at least {MIN_BOARD_CORNERS}x{MIN_BOARD_CORNERS} inner corners, got "
            f"{cols}x{rows}: count the corners where four squares meet (a board of 8x6 squares has 7x5)"
        )
    if not (math.isfinite(square_mm) and square_mm > 0):
        raise ValueError(f"square_mm must be > 0, got {square_mm}")
    gray = to_gray(image)
    try:
        grid = _board_corners(gray, cols, rows)
    except cv2.error as err:  # OpenCV refuses some patterns and images with an assertion, not a result
        raise CalibrationError(f"OpenCV could not search for a {cols}x{rows} checkerboard: {err.err}") from err
    if grid is None:
        raise CalibrationError(f"no {cols}x{rows} checkerboard (inner corners) found")
    across = np.linalg.norm(np.diff(grid, axis=1), axis=2).ravel()
    down = np.linalg.norm(np.diff(grid, axis=0), axis=2).ravel()
    spacings = np.concatenate([across, down])
    irregular = _irregularity(grid, spacings)
    if irregular:
        raise CalibrationError(
            f"the {cols}x{rows} corners found are not a regular grid ({irregular}): check that --checkerboard gives "
            "the board's inner corners, columns x rows (a board of 8x6 squares has 7x5), and that the whole board "
            "is in view"
        )
    return ScaleEstimate(
        px_per_mm=float(spacings.mean()) / square_mm,
        method="checkerboard",
        reference_mm=square_mm,
        residual_px=float(spacings.std()),
        points=grid.reshape(-1, 2),
    )


def _board_corners(gray: UInt8Array, cols: int, rows: int) -> FloatArray | None:
    """``(rows, cols, 2)`` sub-pixel corners of a board, or ``None`` when neither OpenCV search finds it.

    Raises:
        cv2.error: OpenCV refused the image or the pattern.
    """
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(gray, (cols, rows), flags=flags)
    if found:
        grid = corners.reshape(rows, cols, 2).astype(np.float64)
        rough = float(np.median(np.linalg.norm(np.diff(grid, axis=1), axis=2)))
        win = int(max(2, min(11, rough * 0.4)))
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.001)
        corners = cv2.cornerSubPix(gray, corners.astype(np.float32), (win, win), (-1, -1), criteria)
    else:
        found, corners = cv2.findChessboardCornersSB(gray, (cols, rows), flags=cv2.CALIB_CB_ACCURACY)
    if not found or corners is None:
        return None
    return np.asarray(corners, dtype=np.float64).reshape(rows, cols, 2)


def _irregularity(grid: FloatArray, spacings: FloatArray) -> str:
    """What makes ``(rows, cols, 2)`` corners no regular grid of squares (``""``: nothing): uneven spacing, or
    rows or columns that bend."""
    median = float(np.median(spacings))
    if median <= 0:
        return "corners on top of each other"
    spread = float(np.max(np.abs(spacings - median))) / median
    if spread > BOARD_SPREAD:
        return f"corner spacings from {spacings.min():.1f} to {spacings.max():.1f} px, {100 * spread:.0f} % uneven"
    lines = [grid[i] for i in range(grid.shape[0])] + [grid[:, j] for j in range(grid.shape[1])]
    bend = max(_off_line(line) for line in lines) / median
    if bend > BOARD_BEND:
        return f"a row or column bends by {100 * bend:.0f} % of the spacing"
    return ""


def _off_line(points: FloatArray) -> float:
    """The largest distance, in pixels, of ``(n, 2)`` points from their least-squares straight line."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return float(np.max(np.abs(centred @ vt[1]))) if len(points) > 2 else 0.0


def estimate_from_aruco(image: npt.NDArray[Any], marker_mm: float, dictionary: str = "DICT_4X4_50") -> ScaleEstimate:
    """Pixels per millimetre from printed ArUco markers of known side.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        marker_mm: printed side of each marker (black border included) in mm.
        dictionary: name of an OpenCV predefined dictionary.

    Returns:
        The estimate; ``points`` are the ``(4 * markers, 2)`` corners.

    Raises:
        CalibrationError: no marker found.
        ValueError: unknown dictionary or bad size.
    """
    if not (math.isfinite(marker_mm) and marker_mm > 0):
        raise ValueError(f"marker_mm must be > 0, got {marker_mm}")
    if not hasattr(cv2.aruco, dictionary):
        raise ValueError(f"unknown ArUco dictionary {dictionary!r}")
    gray = to_gray(image)
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary)), params)
    corners, ids, _ = detector.detectMarkers(gray)
    if ids is None or len(corners) == 0:
        raise CalibrationError(f"no ArUco marker ({dictionary}) found")
    quads = np.asarray([c.reshape(4, 2) for c in corners], dtype=np.float64)
    sides = np.linalg.norm(quads - np.roll(quads, -1, axis=1), axis=2).ravel()
    return ScaleEstimate(
        px_per_mm=float(sides.mean()) / marker_mm,
        method="aruco",
        reference_mm=marker_mm,
        residual_px=float(sides.std()),
        points=quads.reshape(-1, 2),
    )
