"""The fixed camera's geometry: pixels per millimetre and the cup's region in the image.

A station calibrates once from one image of a reference object lying where the coins will lie:

* a coin of known diameter (``estimate_from_coin``): Hough circles propose candidates, each candidate's edge is
  found to sub-pixel precision along radial rays and fitted with an ellipse; px/mm is the mean of the ellipse's
  axes over the coin's diameter (under a top-down camera the outline is a circle: the mean halves the noise of
  either axis and the major axis is biased upward by it; a tilt of 5 degrees would cost 0.2%);
* a printed checkerboard (``estimate_from_checkerboard``): OpenCV corners refined with ``cornerSubPix``; px/mm is
  the mean spacing of neighbouring corners over the square size;
* a printed ArUco marker (``estimate_from_aruco``): px/mm is the mean marker side over its printed size.

The cup (or tray) rim can be found as the largest well-supported circle (``detect_cup_roi``) or given by hand.
The result, :class:`CameraCalibration`, is stored as ``calibration.json`` in the station home.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from models.files import write_bytes_atomic

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]

CALIBRATION_FILE = "calibration.json"
EMPTY_TRAY_FILE = "empty_tray.png"
SETUP_VIEW_FILE = "setup_view.png"
"""The calibration photo in grey, kept so that a camera moved since calibration is noticed even before there is an
empty-tray photo (:mod:`calibration.movement`)."""
"""The station's photo of its tray with nothing in it (:mod:`models.foreground` compares every cup with it)."""
SCHEMA_VERSION = 1
HOUGH_MAX_SIDE = 1000
"""Hough runs on a copy whose longer side is at most this many pixels; refinement uses full resolution."""
MIN_EDGE_CONTRAST = 1.5
"""A circle's edge gradient must exceed the image's 90th-percentile gradient by this factor."""
RIM_RATIO = 0.6
"""A circle enclosing a smaller one of less than this radius ratio is a rim; of more, the smaller is relief."""
CUP_OUTLINE_TOLERANCE = 0.15
"""A circle centred within this share of the cup's radius of its centre, and as large within it, is the cup's own
outline (its floor's edge or its rim), never a reference coin."""


class CalibrationError(ValueError):
    """The calibration image does not show what was asked for (no coin, no board, unreadable file)."""


ROI_SHAPES: tuple[str, ...] = ("round", "square")
"""A cup is round; a tray is a square with rounded corners."""
TRAY_CORNER = 0.25
"""A tray's corner radius as a fraction of its half side, unless given."""


@dataclass(frozen=True)
class CupRoi:
    """The cup's region of interest in image pixels: a circle, or a square tray with rounded corners.

    Attributes:
        x: centre column.
        y: centre row.
        radius: the circle's radius, or the tray's half side, in pixels, ``> 0``.
        shape: ``"round"`` or ``"square"``.
        corner: a tray's corner radius as a fraction of ``radius`` (0 to 1; ignored for a circle).
    """

    x: float
    y: float
    radius: float
    shape: str = "round"
    corner: float = TRAY_CORNER

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.x, self.y, self.radius)) or self.radius <= 0:
            raise ValueError(f"CupRoi needs finite centre and radius > 0, got {self.x}, {self.y}, {self.radius}")
        if self.shape not in ROI_SHAPES:
            raise ValueError(f"CupRoi shape must be one of {', '.join(ROI_SHAPES)}, got {self.shape!r}")
        if not (math.isfinite(self.corner) and 0.0 <= self.corner <= 1.0):
            raise ValueError(f"CupRoi corner must be between 0 and 1, got {self.corner}")

    @classmethod
    def parse(cls, text: str) -> CupRoi:
        """Parse ``"x,y,r"`` (a round cup) or ``"square:x,y,h"`` (a tray of half side ``h``), in pixels.

        Raises:
            ValueError: not three numbers, an unknown shape or a radius that is not positive.
        """
        shape, _, rest = text.rpartition(":")
        shape = shape.strip().lower() or "round"
        if shape not in ROI_SHAPES:
            raise ValueError(f"unknown cup shape {shape!r} in {text!r}; use x,y,r or square:x,y,h")
        parts = [p.strip() for p in rest.split(",")]
        if len(parts) != 3:
            raise ValueError(f"expected x,y,r or square:x,y,h, got {text!r}")
        try:
            x, y, r = (float(p) for p in parts)
        except ValueError as err:
            raise ValueError(f"expected three numbers x,y,r, got {text!r}") from err
        return cls(x, y, r, shape)

    def inset(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Distance in pixels from each point to the boundary: positive inside, negative outside."""
        dx = np.abs(np.asarray(x, np.float64) - self.x)
        dy = np.abs(np.asarray(y, np.float64) - self.y)
        if self.shape == "round":
            return np.asarray(self.radius - np.hypot(dx, dy), np.float64)
        c = self.corner * self.radius
        qx, qy = dx - (self.radius - c), dy - (self.radius - c)
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return np.asarray(c - outside - np.minimum(np.maximum(qx, qy), 0.0), np.float64)

    def contains(self, x: float, y: float) -> bool:
        """Whether the point ``(x, y)`` lies inside the region."""
        return bool(self.inset(x, y) >= 0.0)

    def cuts(self, x: float, y: float, radius: float, tolerance: float = 0.0) -> bool:
        """Whether a disc of ``radius`` at ``(x, y)`` reaches past the boundary by more than ``tolerance * radius``."""
        return bool(self.inset(x, y) < (1.0 - tolerance) * radius)

    def draw(self, image: npt.NDArray[Any], color: tuple[int, int, int], thickness: int) -> None:
        """Draw the boundary onto ``image`` in place."""
        if self.shape == "round":
            cv2.circle(image, (round(self.x), round(self.y)), round(self.radius), color, thickness, cv2.LINE_AA)
            return
        t = np.linspace(0.0, 2.0 * np.pi, 361)
        # march along rays from the centre to the boundary (the region is star-shaped around it)
        dirs = np.stack([np.cos(t), np.sin(t)], axis=1)
        lo, hi = np.zeros(len(t)), np.full(len(t), self.radius * 1.5)
        for _ in range(30):
            mid = (lo + hi) / 2
            inside = self.inset(self.x + dirs[:, 0] * mid, self.y + dirs[:, 1] * mid) >= 0
            lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
        pts = np.stack([self.x + dirs[:, 0] * lo, self.y + dirs[:, 1] * lo], axis=1)
        cv2.polylines(image, [np.round(pts).astype(np.int32)], True, color, thickness, cv2.LINE_AA)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        out: dict[str, Any] = {"x": self.x, "y": self.y, "radius": self.radius}
        if self.shape != "round":
            out |= {"shape": self.shape, "corner": self.corner}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CupRoi:
        """Inverse of :meth:`to_dict` (a dict without ``shape`` is a round cup)."""
        return cls(
            float(data["x"]),
            float(data["y"]),
            float(data["radius"]),
            str(data.get("shape", "round")),
            float(data.get("corner", TRAY_CORNER)),
        )


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
        residual_px: RMS distance of edge points from the fitted ellipse (coin) or standard deviation of the
            measured spacings (board, marker), in pixels.
        ellipse: the fitted coin outline (coin only).
        points: ``(n, 2)`` float64 ``x, y`` of the edge points or corners used.
    """

    px_per_mm: float
    method: str
    reference_mm: float
    residual_px: float
    ellipse: Ellipse | None = None
    points: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))


@dataclass(frozen=True)
class CameraCalibration:
    """A station's camera geometry.

    Attributes:
        px_per_mm: pixels per millimetre in the plane of the cup's bottom.
        image_width: width of the calibration image in pixels.
        image_height: height of the calibration image in pixels.
        method: how ``px_per_mm`` was measured (``"coin"``, ``"checkerboard"``, ``"aruco"``, ``"manual"``).
        roi: the cup's region, or ``None`` for the whole image.
        created_at: ISO-8601 UTC time of the calibration.
        reference_mm: size of the reference object in mm, if any.
    """

    px_per_mm: float
    image_width: int
    image_height: int
    method: str
    roi: CupRoi | None = None
    created_at: str = ""
    reference_mm: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.px_per_mm) and self.px_per_mm > 0):
            raise ValueError(f"px_per_mm must be finite and > 0, got {self.px_per_mm}")
        if self.image_width <= 0 or self.image_height <= 0:
            raise ValueError(f"image size must be positive, got {self.image_width}x{self.image_height}")

    @property
    def mm_per_px(self) -> float:
        """Millimetres per pixel."""
        return 1.0 / self.px_per_mm

    def to_mm(self, pixels: float) -> float:
        """Convert a length in pixels to millimetres."""
        return pixels / self.px_per_mm

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with a schema version."""
        return {
            "version": SCHEMA_VERSION,
            "px_per_mm": self.px_per_mm,
            "image_size": [self.image_width, self.image_height],
            "method": self.method,
            "roi": None if self.roi is None else self.roi.to_dict(),
            "created_at": self.created_at,
            "reference_mm": self.reference_mm,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CameraCalibration:
        """Inverse of :meth:`to_dict`.

        Raises:
            CalibrationError: unknown version or missing/invalid fields.
        """
        try:
            if int(data.get("version", SCHEMA_VERSION)) != SCHEMA_VERSION:
                raise CalibrationError(f"unsupported calibration version {data.get('version')}")
            width, height = (int(v) for v in data["image_size"])
            roi = data.get("roi")
            ref = data.get("reference_mm")
            return cls(
                px_per_mm=float(data["px_per_mm"]),
                image_width=width,
                image_height=height,
                method=str(data["method"]),
                roi=None if roi is None else CupRoi.from_dict(roi),
                created_at=str(data.get("created_at", "")),
                reference_mm=None if ref is None else float(ref),
            )
        except CalibrationError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationError(f"invalid calibration data: {err}") from err

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_bytes_atomic(path, text.encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path) -> CameraCalibration:
        """Read a file written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            CalibrationError: the file is not valid calibration JSON.
        """
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CalibrationError(f"{path}: not JSON: {err}") from err
        if not isinstance(data, dict):
            raise CalibrationError(f"{path}: expected a JSON object")
        return cls.from_dict(data)


def calibration_path(home: str | Path) -> Path:
    """Where a station home keeps its calibration: ``<home>/calibration.json``."""
    return Path(home) / CALIBRATION_FILE


def save_calibration(calibration: CameraCalibration, home: str | Path) -> Path:
    """Store ``calibration`` in the station ``home``; returns the file written."""
    return calibration.save(calibration_path(home))


def load_calibration(home: str | Path) -> CameraCalibration | None:
    """The station's calibration, or ``None`` when the home has none yet.

    Raises:
        CalibrationError: the file exists but is invalid.
    """
    path = calibration_path(home)
    if not path.is_file():
        return None
    return CameraCalibration.load(path)


def empty_tray_path(home: str | Path) -> Path:
    """Where a station home keeps its empty-tray photo: ``<home>/empty_tray.png``."""
    return Path(home) / EMPTY_TRAY_FILE


def save_empty_tray(image: npt.NDArray[Any], home: str | Path) -> Path:
    """Store the empty-tray photo in the station ``home`` atomically (lossless PNG); returns the file written.

    Raises:
        CalibrationError: not a colour image.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 8:
        raise CalibrationError(f"the empty-tray photo must be an 8-bit colour image, got {image.shape} {image.dtype}")
    return _save_png(image, empty_tray_path(home), "the empty-tray photo")


def load_empty_tray(home: str | Path) -> UInt8Array | None:
    """The station's empty-tray photo, or ``None`` when none was taken.

    Raises:
        CalibrationError: the file exists but cannot be read as an image.
    """
    return _load_png(empty_tray_path(home), cv2.IMREAD_COLOR, "take the empty-tray photo again")


def setup_view_path(home: str | Path) -> Path:
    """Where a station home keeps the calibration photo's view: ``<home>/setup_view.png``."""
    return Path(home) / SETUP_VIEW_FILE


def save_setup_view(image: npt.NDArray[Any], home: str | Path) -> Path:
    """Keep the calibration photo (in grey, lossless) in the station ``home`` atomically; returns the file written.

    Raises:
        CalibrationError: not an 8-bit image.
    """
    if image.ndim not in (2, 3) or image.dtype != np.uint8 or min(image.shape[:2]) < 8:
        raise CalibrationError(f"the calibration photo must be an 8-bit image, got {image.shape} {image.dtype}")
    return _save_png(_to_gray(image), setup_view_path(home), "the calibration photo")


def load_setup_view(home: str | Path) -> UInt8Array | None:
    """The calibration photo's view (grey), or ``None`` when the home keeps none (calibrated before it was kept).

    Raises:
        CalibrationError: the file exists but cannot be read as an image.
    """
    return _load_png(setup_view_path(home), cv2.IMREAD_GRAYSCALE, "calibrate again")


def _save_png(image: npt.NDArray[Any], path: Path, what: str) -> Path:
    """Write ``image`` to ``path`` as a lossless PNG, atomically (``what`` names it in errors)."""
    ok, enc = cv2.imencode(".png", image)
    if not ok:
        raise CalibrationError(f"could not encode {what}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(path, enc.tobytes())


def _load_png(path: Path, flags: int, fix: str) -> UInt8Array | None:
    """The image at ``path`` read with ``flags``, ``None`` when there is no file; a file that is no image is an
    error that says ``fix``."""
    if not path.is_file():
        return None
    image = cv2.imread(str(path), flags)
    if image is None:
        raise CalibrationError(f"{path}: not a readable image; {fix}")
    return np.asarray(image, np.uint8)


def read_image(path: str | Path) -> UInt8Array:
    """Read an image file as ``(H, W, 3)`` uint8 BGR.

    Raises:
        CalibrationError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"no such image: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CalibrationError(f"cannot read image: {path}")
    return np.asarray(image, dtype=np.uint8)


# --------------------------------------------------------------------------------------------------- circles


@dataclass(frozen=True)
class _CircleFit:
    ellipse: Ellipse
    points: FloatArray  # (n, 2) inlier edge points
    support: float  # inlier rays / all rays
    rms: float  # RMS radial residual of the inliers, px
    strength: float  # median edge gradient of the inliers

    @property
    def radius(self) -> float:
        return 0.25 * (self.ellipse.major + self.ellipse.minor)

    def encloses(self, other: _CircleFit) -> bool:
        d = math.hypot(self.ellipse.cx - other.ellipse.cx, self.ellipse.cy - other.ellipse.cy)
        return d + other.radius < self.radius


def _to_gray(image: npt.NDArray[Any]) -> UInt8Array:
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


def _refine_circle(
    smooth: npt.NDArray[np.float32], cx: float, cy: float, r: float, n_rays: int = 240
) -> _CircleFit | None:
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
        pts = pts[ok]
        keep = np.ones(len(pts), dtype=bool)
        for _ in range(4):
            cx, cy, r = _kasa_circle(pts[keep])
            res = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) - r
            mad = float(np.median(np.abs(res[keep] - np.median(res[keep]))))
            keep = np.abs(res) <= max(0.75, 4.0 * 1.4826 * mad)
            if keep.sum() < 0.5 * n_rays:
                return None
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
    return _CircleFit(ellipse, pts, support, rms, float(np.median(strength[inlier])))


def _find_circles(gray: UInt8Array, min_radius: float, max_radius: float, max_candidates: int) -> list[_CircleFit]:
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
    unique: list[_CircleFit] = []
    for f in fits:
        if all(
            math.hypot(f.ellipse.cx - u.ellipse.cx, f.ellipse.cy - u.ellipse.cy) > 0.1 * u.radius
            or abs(f.radius - u.radius) > 0.05 * u.radius
            for u in unique
        ):
            unique.append(f)
    return unique


def estimate_from_coin(
    image: npt.NDArray[Any],
    reference_mm: float,
    min_radius_frac: float = 0.01,
    max_radius_frac: float = 0.45,
    cup: CupRoi | None = None,
) -> ScaleEstimate:
    """Pixels per millimetre from one coin of known diameter.

    The coin is the best-supported circle that does not enclose another circle (a tray or cup rim around the
    coin is passed over). A circle that is the cup's own outline (``cup``: its round region, the floor or the rim
    around it) is never the coin, even when the coin itself is not found: a reference coin that hardly stands out
    from the tray would otherwise leave the cup's floor to be measured as a coin, several times too large.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        reference_mm: the coin's diameter in mm (e.g. 23.25 for a 1 euro coin).
        min_radius_frac: smallest coin radius as a fraction of the image's shorter side.
        max_radius_frac: largest coin radius as a fraction of the image's shorter side.
        cup: the cup's region, whose outline is passed over (``None``: not known).

    Returns:
        The estimate, with the fitted ellipse.

    Raises:
        CalibrationError: no well-defined circular outline was found.
        ValueError: ``reference_mm`` not positive.
    """
    if not (math.isfinite(reference_mm) and reference_mm > 0):
        raise ValueError(f"reference_mm must be > 0, got {reference_mm}")
    gray = _to_gray(image)
    side = min(gray.shape)
    fits = _find_circles(gray, max(8.0, min_radius_frac * side), max_radius_frac * side, 40)
    found = len(fits)
    if cup is not None and cup.shape == "round":
        fits = [f for f in fits if not _outlines(f, cup)]
    passed_over = found - len(fits)
    # an enclosed circle of similar size is the coin's own relief ring; an enclosing much larger one is a rim
    outlines = [g for g in fits if not any(f.encloses(g) and g.radius >= RIM_RATIO * f.radius for f in fits)]
    inner = [f for f in outlines if not any(f.encloses(g) for g in outlines)]
    if not inner:
        if passed_over:
            raise CalibrationError(
                "no coin found, only the cup's own round outline: lay the reference coin flat in the cup, apart "
                "from its rim, where it stands out from the tray (or on a sheet of another colour), and photograph "
                "it again"
            )
        raise CalibrationError("no coin found: no circular outline with a clear, continuous edge")
    best = max(inner, key=lambda f: f.support * f.strength)
    return ScaleEstimate(
        px_per_mm=0.5 * (best.ellipse.major + best.ellipse.minor) / reference_mm,
        method="coin",
        reference_mm=reference_mm,
        residual_px=best.rms,
        ellipse=best.ellipse,
        points=best.points,
    )


def _outlines(fit: _CircleFit, cup: CupRoi, tolerance: float = CUP_OUTLINE_TOLERANCE) -> bool:
    """Whether ``fit`` is the round cup's own outline: centred on it, and its size within ``tolerance`` (a share of
    the cup's radius; the floor's edge and the rim's lie that close)."""
    off = math.hypot(fit.ellipse.cx - cup.x, fit.ellipse.cy - cup.y)
    return off < tolerance * cup.radius and abs(fit.radius - cup.radius) < tolerance * cup.radius


def detect_cup_roi(image: npt.NDArray[Any], min_radius_frac: float = 0.25) -> CupRoi | None:
    """The cup or tray rim as the largest well-supported circle, or ``None`` when there is none.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        min_radius_frac: smallest rim radius as a fraction of the image's shorter side.
    """
    gray = _to_gray(image)
    side = min(gray.shape)
    fits = _find_circles(gray, min_radius_frac * side, 0.75 * side, 20)
    if not fits:
        return None
    rim = max(fits, key=lambda f: f.radius)
    return CupRoi(rim.ellipse.cx, rim.ellipse.cy, rim.radius)


# ---------------------------------------------------------------------------------------------- flat targets


def estimate_from_checkerboard(image: npt.NDArray[Any], pattern: tuple[int, int], square_mm: float) -> ScaleEstimate:
    """Pixels per millimetre from a printed checkerboard.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        pattern: inner corners ``(columns, rows)`` (OpenCV's convention: a board of 8x6 squares has 7x5).
        square_mm: side of one square in mm.

    Returns:
        The estimate; ``points`` are the ``(cols * rows, 2)`` refined corners, row by row.

    Raises:
        CalibrationError: the board was not found.
        ValueError: bad pattern or square size.
    """
    cols, rows = pattern
    if cols < 2 or rows < 2:
        raise ValueError(f"pattern needs at least 2x2 inner corners, got {cols}x{rows}")
    if not (math.isfinite(square_mm) and square_mm > 0):
        raise ValueError(f"square_mm must be > 0, got {square_mm}")
    gray = _to_gray(image)
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
        raise CalibrationError(f"no {cols}x{rows} checkerboard (inner corners) found")
    grid = np.asarray(corners, dtype=np.float64).reshape(rows, cols, 2)
    spacings = np.concatenate(
        [np.linalg.norm(np.diff(grid, axis=1), axis=2).ravel(), np.linalg.norm(np.diff(grid, axis=0), axis=2).ravel()]
    )
    return ScaleEstimate(
        px_per_mm=float(spacings.mean()) / square_mm,
        method="checkerboard",
        reference_mm=square_mm,
        residual_px=float(spacings.std()),
        points=grid.reshape(-1, 2),
    )


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
    gray = _to_gray(image)
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


# ------------------------------------------------------------------------------------------------ composition


def calibrate_image(
    image: npt.NDArray[Any],
    *,
    reference_mm: float | None = None,
    checkerboard: tuple[int, int] | None = None,
    square_mm: float | None = None,
    aruco_mm: float | None = None,
    roi: CupRoi | None = None,
    detect_roi: bool = True,
    now: datetime | None = None,
) -> tuple[CameraCalibration, ScaleEstimate]:
    """Measure the scale with exactly one reference and build the station's calibration.

    Args:
        image: ``(H, W, 3)`` uint8 BGR.
        reference_mm: diameter of a reference coin in mm.
        checkerboard: inner corners ``(columns, rows)`` of a printed board (needs ``square_mm``).
        square_mm: checkerboard square size in mm.
        aruco_mm: side of printed ArUco markers in mm.
        roi: the cup region given by hand; wins over detection.
        detect_roi: look for the cup rim when ``roi`` is not given (``None`` when not found).
        now: the calibration time (default: the current UTC time).

    Returns:
        The calibration and the raw estimate (for an overlay).

    Raises:
        CalibrationError: the reference was not found.
        ValueError: not exactly one reference given, or bad sizes.
    """
    chosen = [reference_mm is not None, checkerboard is not None, aruco_mm is not None]
    if sum(chosen) != 1:
        raise ValueError("give exactly one reference: a coin diameter, a checkerboard, or an ArUco marker size")
    if roi is None and detect_roi:
        roi = detect_cup_roi(image)
    if reference_mm is not None:
        estimate = estimate_from_coin(image, reference_mm, cup=roi)
    elif checkerboard is not None:
        if square_mm is None:
            raise ValueError("a checkerboard needs its square size in mm")
        estimate = estimate_from_checkerboard(image, checkerboard, square_mm)
    else:
        assert aruco_mm is not None
        estimate = estimate_from_aruco(image, aruco_mm)
    h, w = image.shape[:2]
    stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    calibration = CameraCalibration(
        px_per_mm=estimate.px_per_mm,
        image_width=int(w),
        image_height=int(h),
        method=estimate.method,
        roi=roi,
        created_at=stamp,
        reference_mm=estimate.reference_mm,
    )
    return calibration, estimate


def draw_overlay(image: npt.NDArray[Any], estimate: ScaleEstimate, roi: CupRoi | None = None) -> UInt8Array:
    """A copy of ``image`` with the found outline or corners, the cup region and the scale drawn on it.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        estimate: what was measured.
        roi: the cup region, drawn in blue.

    Returns:
        ``(H, W, 3)`` uint8 BGR.
    """
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    thick = max(1, round(min(out.shape[:2]) / 400))
    if estimate.ellipse is not None:
        e = estimate.ellipse
        box = ((e.cx, e.cy), (e.major, e.minor), e.angle)
        cv2.ellipse(out, box, (0, 255, 0), thick, cv2.LINE_AA)
        cv2.drawMarker(out, (round(e.cx), round(e.cy)), (0, 255, 0), cv2.MARKER_CROSS, 10 * thick, thick)
    else:
        for x, y in estimate.points:
            cv2.circle(out, (round(x), round(y)), 2 * thick, (0, 0, 255), -1, cv2.LINE_AA)
    if roi is not None:
        roi.draw(out, (255, 0, 0), thick)
    label = f"{estimate.px_per_mm:.3f} px/mm ({estimate.method})"
    cv2.putText(out, label, (10, 30 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * thick, (0, 255, 255), thick, cv2.LINE_AA)
    return np.asarray(out, dtype=np.uint8)
