"""Has the fixed camera moved since the station was set up?

Everything a station measures with rests on the camera staying where it was calibrated: the cup region, the pixels
per millimetre and the empty-tray photo. A webcam on a stand gets knocked, its arm sags, somebody turns it to look
at something else and back. Afterwards every cup differs from the empty tray along the rim, coins near the edge
fall outside the cup region and diameters are off by the change of distance, so the station would flag every cup
for reasons nobody can act on, or measure wrongly.

The cup itself is put down a little differently each time, so it cannot tell the camera's position. What lies
around it can: the table, the stand, the tray's surroundings. :class:`SetupView` keeps the features (ORB) of the
set-up photo (the empty-tray photo, else the calibration photo) outside the cup region, finds them again in a
frame, and fits one similarity (shift, scale, turn) to the matches with RANSAC, so a hand or a box at the side is
outvoted by the rest. The move is judged at the cup's rim, where a misplaced region or empty tray shows first:
:attr:`CameraMove.rim_shift_px` is the farthest any point of the rim has gone. When too little around the cup can
be recognised, the answer is ``None``: nothing can be told, which is not the same as "not moved".

OpenCV and numpy only.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.camera import CupRoi
from models.types import FloatArray, UInt8Array


@dataclass(frozen=True)
class MovementSettings:
    """How a frame is compared with the photo taken at set-up.

    Attributes:
        work_side: images are compared with their longer side scaled to at most this many pixels.
        blur_px: Gaussian blur (sigma, working pixels) before looking for features: a surface's pixel-fine grain
            is not found again once the camera has moved (on 120 synthetic cups it lost 7 of 29 knocked cameras
            unblurred, 2 of 25 at 0.8), structures a few pixels across are.
        cup_margin: the cup region grown by this share of its radius is left out (the cup is put down differently
            each time, and its rim and shadow with it).
        features: ORB features kept per image.
        max_distance: a pair of features whose descriptors differ in more bits than this is no match (of 256; pairs
            are also each other's nearest, both ways, and RANSAC sorts out the rest: a ratio test would throw away
            every feature of a repeating pattern, a tiled floor or a mat).
        ransac_px: a match within this many working pixels of the fitted move is an inlier.
        min_matches: fewer inliers than this, or fewer than :attr:`min_share` of the matches, and nothing is told.
        min_share: the least share of the matches the fitted move must explain.
        tolerance_px: the camera counts as moved when a point of the cup's rim has gone farther than this
            (full-size pixels): beyond it the empty-tray comparison, which forgives 2 px, sees the rim, and a
            diameter of 300 px is 1.3 % off.
    """

    work_side: int = 640
    blur_px: float = 1.0
    cup_margin: float = 0.12
    features: int = 500
    max_distance: int = 64
    ransac_px: float = 1.5
    min_matches: int = 8
    min_share: float = 0.3
    tolerance_px: float = 4.0

    def __post_init__(self) -> None:
        if self.work_side < 64 or self.features < 50 or self.min_matches < 4:
            raise ValueError("work_side >= 64, features >= 50 and min_matches >= 4 are needed")
        if not (0 < self.max_distance <= 256 and 0.0 <= self.min_share <= 1.0):
            raise ValueError("max_distance must be in (0, 256] and min_share in [0, 1]")
        if self.cup_margin < 0 or self.blur_px < 0 or self.ransac_px <= 0 or self.tolerance_px <= 0:
            raise ValueError("cup margin must be >= 0, the RANSAC and tolerance distances > 0")


DEFAULT_MOVEMENT = MovementSettings()

NLEVELS = 2
"""ORB pyramid levels: a knocked camera changes the scale by a few per cent, not by the factors a pyramid is for
(two levels still match a view 10 % closer or farther; one level costs half as much and loses those)."""
FRAME_FEATURES = 2
"""A frame keeps this many times :attr:`MovementSettings.features`: its coins offer features of their own."""
CANDIDATES = 6
"""Features first found per image, as a multiple of :attr:`MovementSettings.features`, before the grid keeps the
strongest of each cell."""
GRID = 4
"""The image is cut into this many cells a side, each keeping its share of the features."""
RECOGNISABLE_FEATURES = 48
"""A set-up photo with fewer features around the cup than this offers too few to tell a moved camera by reliably
(a knock, or a box beside the tray, leaves too few matched). On ``cupcheck bench camera``'s 240 cups, every knock
that could not be told was on a set-up with 13-44 features, and 31 of the 34 told had 50 or more."""


@dataclass(frozen=True)
class CameraMove:
    """How the view of a frame differs from the view at set-up.

    Attributes:
        dx: how far the cup's centre (the image centre without a cup region) now appears to the right, pixels.
        dy: the same, downwards.
        scale: the size things appear at now against then (``> 1``: the camera came closer).
        rotation_deg: the view's turn, degrees, clockwise on the screen.
        rim_shift_px: the farthest any point of the cup's rim (the image's corners without a cup region) has gone.
        matches: the features around the cup the move rests on.
        moved: whether :attr:`rim_shift_px` exceeds the tolerance it was judged with.
        centre: where the cup's centre lay in the set-up photo (the image centre without a cup region), pixels.
        radius: the cup region's radius then (a quarter of the image's shorter side without one), pixels.
    """

    dx: float
    dy: float
    scale: float
    rotation_deg: float
    rim_shift_px: float
    matches: int
    moved: bool
    centre: tuple[float, float] = (0.0, 0.0)
    radius: float = 0.0

    @property
    def cup_now(self) -> tuple[float, float, float]:
        """``(x, y, radius)``: where the cup region as set up now appears in the frame."""
        return self.centre[0] + self.dx, self.centre[1] + self.dy, self.radius * self.scale

    def describe(self) -> str:
        """``"14 px right and 3 px down, 2% closer"``: what changed, for a person putting the camera back."""
        parts: list[str] = []
        steps = [(self.dx, "right", "left"), (self.dy, "down", "up")]
        shifts = [f"{abs(v):.0f} px {pos if v > 0 else neg}" for v, pos, neg in steps if abs(v) >= 0.5]
        if shifts:
            parts.append(" and ".join(shifts))
        change = (self.scale - 1.0) * 100.0
        if abs(change) >= 0.5:
            parts.append(f"{abs(change):.0f}% {'closer' if change > 0 else 'farther'}")
        if abs(self.rotation_deg) >= 0.5:
            way = "clockwise" if self.rotation_deg > 0 else "anticlockwise"
            parts.append(f"turned {abs(self.rotation_deg):.0f}° {way}")
        return ", ".join(parts) if parts else f"{self.rim_shift_px:.1f} px at the rim"

    def problem(self) -> str:
        """Why a frame of this view cannot be measured as the station was set up, ``""`` when it can."""
        if not self.moved:
            return ""
        return (
            f"the camera has moved since it was set up (the view: {self.describe()}) — put it back, or calibrate "
            "again (cupcheck calibrate); its cup region, millimetres and empty tray were not used"
        )


def _gray(image: np.ndarray, side: int, blur: float) -> tuple[UInt8Array, float]:
    """``image`` in grey with its longer side at most ``side``, blurred by ``blur``, and the factor it was scaled
    by."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape[:2]
    f = min(1.0, side / max(h, w))
    if f < 1.0:
        gray = cv2.resize(gray, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    if blur > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), blur)
    return np.ascontiguousarray(gray, np.uint8), f


def judged_points(roi: CupRoi | None, width: int, height: int) -> FloatArray:
    """Points where a move is judged: 36 on the cup's rim, or the image's corners without a cup region."""
    if roi is None:
        return np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
    t = np.linspace(0.0, 2.0 * np.pi, 36, endpoint=False)
    return np.stack([roi.x + roi.radius * np.cos(t), roi.y + roi.radius * np.sin(t)], axis=1)


class SetupView:
    """The surroundings of the cup as the set-up photo shows them, to find again in later frames.

    Args:
        reference: the photo taken when the station was set up (its empty-tray photo, else its calibration
            photo), BGR or grey.
        roi: the calibrated cup region (left out of the comparison), or ``None``: the whole image is used and a
            coin in it is simply a feature that is not found again.
        settings: see :class:`MovementSettings`.
    """

    def __init__(
        self, reference: np.ndarray, roi: CupRoi | None = None, settings: MovementSettings = DEFAULT_MOVEMENT
    ) -> None:
        if reference.ndim not in (2, 3) or reference.dtype != np.uint8:
            raise ValueError(f"the set-up photo must be an 8-bit image, got {reference.shape} {reference.dtype}")
        self.settings = settings
        self.roi = roi
        self.height, self.width = reference.shape[:2]
        gray, self._f = _gray(reference, settings.work_side, settings.blur_px)
        self._mask = self._outside_cup(gray.shape[1], gray.shape[0])
        self._orb = cv2.ORB.create(nfeatures=CANDIDATES * settings.features, fastThreshold=10, nlevels=NLEVELS)
        keypoints, descriptors = self._features(gray, settings.features)
        self._points = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
        self._descriptors = descriptors
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
        self._rim = judged_points(roi, self.width, self.height)
        self._lock = threading.Lock()  # one OpenCV detector and matcher: a station's threads take turns

    @property
    def features(self) -> int:
        """How many features around the cup the set-up photo offers (too few: a move cannot be told)."""
        return len(self._points)

    @property
    def recognisable(self) -> bool:
        """Whether the set-up photo offers enough around the cup to tell a move reliably
        (:data:`RECOGNISABLE_FEATURES`)."""
        return self.features >= RECOGNISABLE_FEATURES

    def _features(self, gray: UInt8Array, n: int) -> tuple[list[cv2.KeyPoint], np.ndarray | None]:
        """Up to ``n`` features outside the cup, spread over a :data:`GRID` x :data:`GRID` grid (the strongest of
        each cell), with their descriptors: coins, with their sharp relief, would otherwise take them all."""
        found = self._orb.detect(gray, self._mask)
        if not found:
            return [], None
        h, w = gray.shape[:2]
        cells: dict[tuple[int, int], list[cv2.KeyPoint]] = {}
        for k in sorted(found, key=lambda k: -k.response):
            cells.setdefault((int(k.pt[0] * GRID / w), int(k.pt[1] * GRID / h)), []).append(k)
        per_cell = max(1, math.ceil(n / max(1, len(cells))))
        kept = [k for cell in cells.values() for k in cell[:per_cell]]
        keypoints, descriptors = self._orb.compute(gray, kept)
        return list(keypoints), descriptors

    def _outside_cup(self, width: int, height: int) -> UInt8Array:
        """255 where the comparison looks (outside the grown cup region), working scale."""
        mask = np.full((height, width), 255, np.uint8)
        if self.roi is None:
            return mask
        ys, xs = np.mgrid[0:height, 0:width]
        inset = self.roi.inset((xs + 0.5) / self._f, (ys + 0.5) / self._f)
        mask[inset > -self.settings.cup_margin * self.roi.radius] = 0
        return mask

    def compare(self, frame: np.ndarray) -> CameraMove | None:
        """How the view of ``frame`` differs from the set-up photo's; ``None`` when it cannot be told (too little
        recognisable around the cup, or a frame of another size, which is a problem of its own).
        """
        s = self.settings
        if frame.shape[:2] != (self.height, self.width) or self._descriptors is None or self.features < s.min_matches:
            return None
        gray, _ = _gray(frame, s.work_side, s.blur_px)
        with self._lock:
            keypoints, descriptors = self._features(gray, FRAME_FEATURES * s.features)
            if descriptors is None or len(keypoints) < s.min_matches:
                return None
            matches = self._matcher.match(self._descriptors, descriptors)
        good = [m for m in matches if m.distance <= s.max_distance]
        if len(good) < s.min_matches:
            return None
        src = self._points[[m.queryIdx for m in good]]
        dst = np.array([keypoints[m.trainIdx].pt for m in good], np.float32)
        fit, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=s.ransac_px, maxIters=2000, confidence=0.995
        )
        n = int(inliers.sum()) if inliers is not None else 0
        if fit is None or n < s.min_matches or n < s.min_share * len(good):
            return None
        linear = fit[:, :2].astype(np.float64)
        shift = fit[:, 2].astype(np.float64) / self._f  # the same move in full-size pixels
        moved = self._rim @ linear.T + shift
        centre = (
            np.array([self.roi.x, self.roi.y]) if self.roi is not None else np.array([self.width, self.height]) / 2.0
        )
        d_centre = centre @ linear.T + shift - centre
        rim_shift = float(np.max(np.hypot(*(moved - self._rim).T)))
        return CameraMove(
            dx=float(d_centre[0]),
            dy=float(d_centre[1]),
            scale=float(math.sqrt(max(np.linalg.det(linear), 0.0))),
            rotation_deg=math.degrees(math.atan2(linear[1, 0], linear[0, 0])),
            rim_shift_px=rim_shift,
            matches=n,
            moved=rim_shift > s.tolerance_px,
            centre=(float(centre[0]), float(centre[1])),
            radius=float(self.roi.radius if self.roi is not None else min(self.width, self.height) / 4.0),
        )
