"""Views of a station's tray for the camera-movement tests: a speckled table with a round cup, coins in it, other
exposures of it, and the same view after the camera moved."""

from __future__ import annotations

import cv2
import numpy as np

from calibration.camera import CupRoi

H, W = 480, 640
ROI = CupRoi(320.0, 240.0, 190.0)


def table(seed: int = 0) -> np.ndarray:
    """A speckled table with a round cup on it, photographed empty."""
    rng = np.random.default_rng(seed)
    grain = np.full((H, W, 3), (110, 120, 115), np.float32)
    for _ in range(900):  # crumbs and grain the camera can find again
        x, y = rng.uniform(0, W), rng.uniform(0, H)
        shade = rng.uniform(-70, 70)
        cv2.circle(grain, (int(x), int(y)), int(rng.integers(1, 4)), (shade + 120,) * 3, -1)
    img = np.clip(cv2.GaussianBlur(grain, (0, 0), 0.8), 0, 255).astype(np.uint8)
    cv2.circle(img, (320, 240), 200, (60, 140, 60), 14)  # the cup's rim
    cv2.circle(img, (320, 240), 193, (200, 205, 200), -1)  # its plain floor
    return img


def with_coins(image: np.ndarray, seed: int, cup_shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``image`` with textured discs inside the cup (the cup and coins moved by ``cup_shift``)."""
    rng = np.random.default_rng(seed)
    out = image.copy()
    if cup_shift != (0, 0):
        floor = np.zeros(out.shape[:2], np.uint8)
        cv2.circle(floor, (320, 240), 208, 255, -1)
        moved = camera(image, float(cup_shift[0]), float(cup_shift[1]))
        out[floor > 0] = moved[floor > 0]
    for _ in range(7):
        cx = 320 + cup_shift[0] + rng.uniform(-120, 120)
        cy = 240 + cup_shift[1] + rng.uniform(-120, 120)
        cv2.circle(out, (int(cx), int(cy)), 38, (40, 120, 170), -1)
        for _ in range(40):  # relief
            a, r = rng.uniform(0, 2 * np.pi), rng.uniform(0, 32)
            cv2.circle(out, (int(cx + r * np.cos(a)), int(cy + r * np.sin(a))), 2, (90, 180, 230), -1)
    return out


def exposure(image: np.ndarray, seed: int) -> np.ndarray:
    """Another exposure of the same view: sensor noise and JPEG."""
    noisy = image.astype(np.float32) + np.random.default_rng(seed).normal(0, 3, image.shape)
    ok, buf = cv2.imencode(".jpg", np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)


def camera(image: np.ndarray, dx: float = 0.0, dy: float = 0.0, scale: float = 1.0, turn: float = 0.0) -> np.ndarray:
    """The view after the camera moved: shifted ``dx`` right and ``dy`` down, closer (``scale > 1``) or farther,
    turned clockwise by ``turn`` degrees, about the image centre; of ``image``'s size and type."""
    h, w = image.shape[:2]
    m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), -turn, scale), np.float64)
    m[:, 2] += np.array([dx, dy])
    moved = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(moved, image.dtype)
