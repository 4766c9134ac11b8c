"""Drawn photos of calibration references: a metallic coin on a textured table, a printed checkerboard."""

from __future__ import annotations

import math

import cv2
import numpy as np

SUPERSAMPLE = 8
EURO_1_MM = 23.25


def textured_background(rng: np.random.Generator, h: int = 480, w: int = 640) -> np.ndarray:
    """``(h, w, 3)`` float32 mottled, grained surface (a table top), values around 100."""
    base = cv2.resize(
        rng.normal(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    grain = 10.0 * np.sin(np.arange(w, dtype=np.float32)[None, :] / 7.0 + 3.0 * base)
    bg = 95.0 + 18.0 * base + 12.0 * fine + grain
    return np.stack([bg * 0.8, bg * 0.95, bg * 1.1], axis=2)


def _coverage(mask_fn, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Area fraction of each pixel in ``[y0:y1, x0:x1]`` where ``mask_fn(x, y)`` holds (pixel centres at integers)."""
    ys = (np.arange(y0 * SUPERSAMPLE, y1 * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    xs = (np.arange(x0 * SUPERSAMPLE, x1 * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    inside = mask_fn(xs[None, :], ys[:, None]).astype(np.float32)
    return cv2.resize(inside, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)


def draw_disc(img: np.ndarray, cx: float, cy: float, r: float, metallic: bool = True, level: float = 200.0) -> None:
    """Paint an anti-aliased disc of radius ``r`` px in place: shaded metal with a relief ring, or flat ``level``."""
    x0, y0 = max(0, int(cx - r - 4)), max(0, int(cy - r - 4))
    x1, y1 = min(img.shape[1], math.ceil(cx + r + 4)), min(img.shape[0], math.ceil(cy + r + 4))
    cov = _coverage(lambda x, y: np.hypot(x - cx, y - cy) <= r, x0, y0, x1, y1)[..., None]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rr = np.hypot(xx - cx, yy - cy) / r
    if metallic:
        shade = level - 40 * rr + 25 * np.cos(3 * np.arctan2(yy - cy, xx - cx)) * rr
        shade = shade + np.where(np.abs(rr - 0.88) < 0.02, -30.0, 0.0)
        paint = np.stack([shade - 10, shade, shade + 5], axis=2)
    else:
        paint = np.full((y1 - y0, x1 - x0, 3), level, np.float32)
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - cov) + paint * cov


def finish(rng: np.random.Generator, img: np.ndarray, blur: float = 1.0, noise: float = 4.0) -> np.ndarray:
    """Lens blur and sensor noise, to uint8 BGR."""
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), blur) + rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def coin_image(rng: np.random.Generator, px_per_mm: float, diameter_mm: float = EURO_1_MM) -> tuple[np.ndarray, tuple]:
    img = textured_background(rng)
    r = diameter_mm * px_per_mm / 2
    cx, cy = rng.uniform(r + 10, 640 - r - 10), rng.uniform(r + 10, 480 - r - 10)
    draw_disc(img, cx, cy, r)
    return finish(rng, img), (cx, cy, r)


def checkerboard_image(rng: np.random.Generator, square_px: float, squares: tuple[int, int], angle: float = 0.0):
    """A white sheet with a ``squares`` (columns, rows) board of ``square_px`` squares, rotated by ``angle`` deg."""
    h, w = 480, 640
    img = textured_background(rng, h, w)
    cols, rows = squares
    bw, bh = cols * square_px, rows * square_px
    cx, cy = w / 2 + 3.3, h / 2 - 1.7
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def board_uv(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - cx, y - cy
        return c * dx + s * dy + bw / 2, -s * dx + c * dy + bh / 2

    def sheet(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = board_uv(x, y)
        return (u > -square_px) & (u < bw + square_px) & (v > -square_px) & (v < bh + square_px)

    def black(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = board_uv(x, y)
        inside = (u >= 0) & (u < bw) & (v >= 0) & (v < bh)
        return inside & ((np.floor(u / square_px) + np.floor(v / square_px)) % 2 == 0)

    half = math.hypot(bw, bh) / 2 + 2 * square_px
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
    sheet_cov = _coverage(sheet, x0, y0, x1, y1)[..., None]
    black_cov = _coverage(black, x0, y0, x1, y1)[..., None]
    patch = img[y0:y1, x0:x1] * (1 - sheet_cov) + 230.0 * sheet_cov
    img[y0:y1, x0:x1] = patch * (1 - black_cov) + 25.0 * black_cov
    return finish(rng, img, blur=0.8, noise=3.0)
