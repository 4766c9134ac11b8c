"""Procedural foreign objects that end up in coin cups: buttons, washers, tokens, bottle caps."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.types import UInt8Array

OBJECT_KINDS: tuple[str, ...] = ("button", "washer", "token", "cap")
"""Kinds of foreign object."""


@dataclass(frozen=True)
class ForeignObject:
    """One sampled foreign object.

    Attributes:
        kind: one of :data:`OBJECT_KINDS`.
        diameter_mm: outer diameter.
        seed: drives the drawing.
    """

    kind: str
    diameter_mm: float
    seed: int

    @property
    def type_id(self) -> str:
        """The ground-truth label of the object, e.g. ``"object-washer"``."""
        return f"object-{self.kind}"


def sample_object(rng: np.random.Generator) -> ForeignObject:
    """Pick a random foreign object (kind, size between 12 and 34 mm)."""
    kind = OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))]
    lo, hi = {"button": (11, 28), "washer": (12, 34), "token": (18, 32), "cap": (26, 32)}[kind]
    return ForeignObject(kind, float(rng.uniform(lo, hi)), int(rng.integers(2**31)))


def _bgr(rng: np.random.Generator, metal: bool) -> tuple[int, int, int]:
    if metal:
        g = int(rng.uniform(120, 200))
        return (g + int(rng.integers(-8, 8)), g, g - int(rng.integers(0, 20)))
    palette = [
        (30, 30, 30),
        (230, 230, 230),
        (40, 40, 180),
        (160, 80, 30),
        (40, 150, 40),
        (60, 170, 220),
        (90, 60, 120),
    ]
    return palette[int(rng.integers(len(palette)))]


def render_object(obj: ForeignObject, size_px: int) -> UInt8Array:
    """Draw ``obj`` top-down.

    Args:
        obj: the object.
        size_px: output side; the object's outer diameter spans it.

    Returns:
        ``(size_px, size_px, 4)`` uint8 BGRA; alpha is the object's silhouette (holes are transparent).
    """
    rng = np.random.default_rng(obj.seed)
    s = size_px
    c = s // 2
    r = c - 1
    img = np.zeros((s, s, 4), np.uint8)
    sh = 16  # sub-pixel shift for anti-aliased drawing
    cc = (c << 4, c << 4)

    def disc(radius: float, color: tuple[int, ...], thick: int = -1) -> None:
        cv2.circle(img, cc, int(radius * 16), color, thick, cv2.LINE_AA, 4)

    if obj.kind == "button":
        col = _bgr(rng, metal=False)
        disc(r, (*col, 255))
        rim = tuple(int(v * 0.75) for v in col)
        disc(r * 0.82, (*rim, 255), max(1, s // 40))
        n_holes = 2 if rng.random() < 0.4 else 4
        hr = r * rng.uniform(0.09, 0.13)
        off = r * rng.uniform(0.2, 0.3)
        a0 = rng.uniform(0, np.pi)
        for k in range(n_holes):
            a = a0 + 2 * np.pi * k / n_holes
            x, y = c + off * np.cos(a), c + off * np.sin(a)
            cv2.circle(img, (int(x * sh), int(y * sh)), int(hr * sh), (0, 0, 0, 0), -1, cv2.LINE_AA, 4)
    elif obj.kind == "washer":
        col = _bgr(rng, metal=True)
        disc(r, (*col, 255))
        inner = r * rng.uniform(0.35, 0.55)
        disc(inner, (0, 0, 0, 0))
        # Concentric machining marks.
        for k in range(6):
            rr = inner + (r - inner) * (k + 0.5) / 6
            shade = tuple(int(np.clip(v + rng.normal(0, 12), 0, 255)) for v in col)
            disc(rr, (*shade, 255), 1)
    elif obj.kind == "token":
        metal = rng.random() < 0.5
        col = _bgr(rng, metal=metal)
        disc(r, (*col, 255))
        dark = tuple(int(v * 0.6) for v in col)
        disc(r * 0.9, (*dark, 255), max(1, s // 50))
        # A star or a square in the centre.
        n = int(rng.integers(4, 7))
        pts = []
        for k in range(2 * n):
            rad = r * (0.5 if k % 2 == 0 else 0.22)
            a = np.pi * k / n
            pts.append((c + rad * np.cos(a), c + rad * np.sin(a)))
        cv2.fillPoly(img, [np.round(np.array(pts) * sh).astype(np.int32)], (*dark, 255), cv2.LINE_AA, 4)
    else:  # cap
        col = _bgr(rng, metal=False)
        disc(r, (*col, 255))
        teeth = 21
        for k in range(teeth):
            a = 2 * np.pi * k / teeth
            x, y = c + r * 0.93 * np.cos(a), c + r * 0.93 * np.sin(a)
            cv2.circle(img, (int(x * sh), int(y * sh)), int(r * 0.06 * sh), (0, 0, 0, 0), -1, cv2.LINE_AA, 4)
        light = tuple(min(255, int(v * 1.3 + 30)) for v in col)
        disc(r * 0.7, (*light, 255))
        disc(r * 0.7, (*col, 255), max(1, s // 60))
    # Soft plastic/metal shading so the object is not flat.
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    grad = 1.0 + 0.18 * ((xx - c) * np.cos(a) + (yy - c) * np.sin(a)) / max(r, 1)
    rgb = np.clip(img[:, :, :3].astype(np.float32) * grad[:, :, None], 0, 255)
    img[:, :, :3] = rgb.astype(np.uint8)
    return img
