"""The fixed camera's geometry: pixels per millimetre and the cup's region in the image.

A station calibrates once from one image of a reference object lying where the coins will lie: a coin of known
diameter (measured as the station's detector measures it, when the detector is given), a printed checkerboard or an
ArUco marker (:mod:`calibration.scale` measures each). The cup (or tray) can be found as the largest well-supported
circle, or the floor's edge inside it (:func:`detect_cup_roi`), or given by hand. The result,
:class:`CameraCalibration`, is stored as ``calibration.json`` in the station home, beside the empty-tray photo and
the calibration photo in grey.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from calibration.scale import (
    CONCENTRIC,
    CalibrationError,
    ScaleEstimate,
    estimate_from_aruco,
    estimate_from_checkerboard,
    estimate_from_coin,
    find_circles,
    inner_edge,
    to_gray,
)
from models.files import write_bytes_atomic
from models.types import CoinInstance

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]

CALIBRATION_FILE = "calibration.json"
EMPTY_TRAY_FILE = "empty_tray.png"
"""The station's photo of its tray with nothing in it (:mod:`models.foreground` compares every cup with it)."""
SETUP_VIEW_FILE = "setup_view.png"
"""The calibration photo in grey, kept so that a camera moved since calibration is noticed even before there is an
empty-tray photo (:mod:`calibration.movement`)."""
SCHEMA_VERSION = 1


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
    return _save_png(to_gray(image), setup_view_path(home), "the calibration photo")


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
    """Read an image file as ``(H, W, 3)`` uint8 BGR, as every other command reads one
    (:func:`models.frames.read_frame`: a truncated JPEG, which ``cv2.imread`` fills with grey, is refused).

    Raises:
        CalibrationError: missing or unreadable file (a folder, an empty file, not an image).
    """
    from models.frames import read_frame

    try:
        return read_frame(path).image
    except (OSError, ValueError) as err:
        raise CalibrationError(str(err)) from err


RIM_WALL = 0.8
"""A circle round the same centre as the largest one found, and at least this share of its radius, is the floor's
edge inside the rim's outer edge (a cup's rim is a band a tenth of its radius wide or less). The floor is where the
coins lie: a coin slid under the rim is cut by the floor's edge, and measured whole against the rim's outer edge it
would be neither called partial nor measured by its own outline alone."""


def detect_cup_roi(image: npt.NDArray[Any], min_radius_frac: float = 0.25) -> CupRoi | None:
    """The cup's floor or the tray's rim: the largest well-supported circle, or the smallest one round the same
    centre inside it that is nearly as large (:data:`RIM_WALL`: the floor's edge inside the rim), found among the
    circles or looked for along rays inside the largest; ``None`` when there is none.

    Args:
        image: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray.
        min_radius_frac: smallest rim radius as a fraction of the image's shorter side.
    """
    gray = to_gray(image)
    side = min(gray.shape)
    fits = find_circles(gray, min_radius_frac * side, 0.75 * side, 20)
    if not fits:
        return None
    rim = max(fits, key=lambda f: f.radius)
    floor = [
        f
        for f in fits
        if RIM_WALL * rim.radius <= f.radius < rim.radius
        and math.hypot(f.ellipse.cx - rim.ellipse.cx, f.ellipse.cy - rim.ellipse.cy)
        <= max(1.5, CONCENTRIC * rim.radius)
    ]
    edge = min(floor, key=lambda f: f.radius, default=None) or inner_edge(gray, rim, RIM_WALL) or rim
    return CupRoi(edge.ellipse.cx, edge.ellipse.cy, edge.radius)


# ------------------------------------------------------------------------------------------------ composition


CoinFinder = Callable[[CupRoi | None], Sequence[CoinInstance]]
"""The station's detector run on the calibration photo with the given cup region (``None``: the whole image), so
that a coin cut by the rim comes out ``partial``: every coin and object it finds."""

REFERENCE_MM_RANGE = (5.0, 120.0)
"""Diameters a reference coin may have, in mm: smaller or larger is a slip of the keyboard (24.26 typed 2426) or
of the unit (inches, centimetres)."""


def calibrate_image(
    image: npt.NDArray[Any],
    *,
    reference_mm: float | None = None,
    checkerboard: tuple[int, int] | None = None,
    square_mm: float | None = None,
    aruco_mm: float | None = None,
    roi: CupRoi | None = None,
    detect_roi: bool = True,
    find_coins: CoinFinder | None = None,
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
        detect_roi: look for the cup rim when ``roi`` is not given (``None`` when not found). With ``False`` the
            calibration keeps no region (the whole image), but the rim is still looked for, only so that the cup's
            own outline is never measured as the reference coin.
        find_coins: the station's detector, for a reference coin: the coin is then measured as the detector
            measures coins (:func:`calibration.scale.estimate_from_coin`); ``None``: by its edge alone.
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
    h, w = image.shape[:2]
    if roi is not None and not (0 <= roi.x < w and 0 <= roi.y < h):
        raise ValueError(
            f"the cup region's centre ({roi.x:.0f}, {roi.y:.0f}) lies outside the {w}×{h} image: every coin would "
            "be ignored; give a centre inside it (x from 0 to the width, y from 0 to the height)"
        )
    if reference_mm is not None and not REFERENCE_MM_RANGE[0] <= reference_mm <= REFERENCE_MM_RANGE[1]:
        low, high = REFERENCE_MM_RANGE
        raise ValueError(
            f"a reference coin of {reference_mm:g} mm? Coins measure {low:g} to {high:g} mm (a US quarter: 24.26): "
            "give its diameter in millimetres"
        )
    if roi is None and detect_roi:
        roi = detect_cup_roi(image)
    if reference_mm is not None:
        cup = _outline_to_skip(image, roi, detect_roi)
        detected = None if find_coins is None else find_coins(cup)
        estimate = estimate_from_coin(image, reference_mm, cup=cup, detected=detected)
    elif checkerboard is not None:
        if square_mm is None:
            raise ValueError("a checkerboard needs its square size in mm")
        estimate = estimate_from_checkerboard(image, checkerboard, square_mm)
    else:
        assert aruco_mm is not None
        estimate = estimate_from_aruco(image, aruco_mm)
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


def _outline_to_skip(image: npt.NDArray[Any], roi: CupRoi | None, detect_roi: bool) -> CupRoi | None:
    """The round cup whose outline a reference coin is never taken for: the region in use, else, when the region
    is the whole image by choice (``detect_roi`` off), the rim found all the same. Without it, the cup's rim alone
    in the photo would be measured as the coin, a scale several times too high."""
    if roi is not None or detect_roi:
        return roi
    return detect_cup_roi(image)


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
