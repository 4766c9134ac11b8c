"""The canvas designs are drawn on: a height map at a base resolution, raised and grooved with masks, and text.

Coordinates are in units of the coin's radius around its centre (:meth:`Relief.p`).
"""

from __future__ import annotations

import cv2
import numpy as np

from models.types import UInt8Array

BASE_PX = 512
"""Side of the cached design height maps, in pixels."""
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
"""The Hershey fonts a design's legend and date may be set in."""


class Relief:
    """A float32 ``(BASE_PX, BASE_PX)`` height map in base-resolution pixel units, drawn with masks."""

    def __init__(self) -> None:
        self.n = BASE_PX
        self.c = BASE_PX / 2.0
        self.r = BASE_PX / 2.0
        self.h = np.zeros((BASE_PX, BASE_PX), np.float32)

    def mask(self) -> UInt8Array:
        return np.zeros((self.n, self.n), np.uint8)

    def p(self, x: float, y: float) -> tuple[int, int]:
        """Pixel of the point ``(x, y)`` given in units of the coin radius around the centre."""
        return (round(self.c + x * self.r), round(self.c + y * self.r))

    def pts(self, xy: list[tuple[float, float]]) -> np.ndarray:
        return np.array([self.p(x, y) for x, y in xy], np.int32)

    def pillow(self, m: UInt8Array, height: float, width: float, base: float = 0.0) -> None:
        """Raise ``m`` as a rounded pillow: ``base`` at its edge up to ``base + height`` past ``width`` px."""
        if not m.any():
            return
        d = cv2.distanceTransform(m, cv2.DIST_L2, 5)
        t = np.clip(d / max(width, 1e-3), 0.0, 1.0)
        h = (base + height * np.sqrt(t * (2.0 - t))) * (m > 0)
        np.maximum(self.h, h.astype(np.float32), out=self.h)

    def flat(self, m: np.ndarray, height: float) -> None:
        np.maximum(self.h, (m > 0).astype(np.float32) * height, out=self.h)

    def groove(self, m: UInt8Array, depth: float, blur: float = 1.0) -> None:
        g = cv2.GaussianBlur((m > 0).astype(np.float32), (0, 0), blur)
        self.h -= depth * g * (self.h > 0.2)
        np.maximum(self.h, 0.0, out=self.h)

    def ridge(self, m: UInt8Array, height: float, blur: float = 1.0) -> None:
        g = cv2.GaussianBlur((m > 0).astype(np.float32), (0, 0), blur)
        self.h += height * g


def text_size(text: str, font: int, scale: float, thick: int) -> tuple[int, int]:
    (w, h), _ = cv2.getTextSize(text, font, scale, thick)
    return int(w), int(h)


def glyph(m: UInt8Array, ch: str, x: float, y: float, angle_deg: float, font: int, scale: float, th: int) -> None:
    """Draw ``ch`` centred on ``(x, y)`` rotated clockwise by ``angle_deg`` into ``m`` (max-composited)."""
    w, h = text_size(ch, font, scale, th)
    s = int(2 * max(w, h) + 8)
    patch = np.zeros((s, s), np.uint8)
    cv2.putText(patch, ch, (s // 2 - w // 2, s // 2 + h // 2), font, scale, 255, th, cv2.LINE_AA)
    rot = cv2.getRotationMatrix2D((s / 2.0, s / 2.0), -angle_deg, 1.0)
    patch = np.asarray(cv2.warpAffine(patch, rot, (s, s), flags=cv2.INTER_LINEAR), np.uint8)
    x0, y0 = round(x - s / 2.0), round(y - s / 2.0)
    n = m.shape[0]
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + s, n), min(y0 + s, n)
    if xa >= xb or ya >= yb:
        return
    sub = patch[ya - y0 : yb - y0, xa - x0 : xb - x0]
    np.maximum(m[ya:yb, xa:xb], sub, out=m[ya:yb, xa:xb])


def arc_text(rel: Relief, m: UInt8Array, text: str, radius: float, font: int, scale: float, th: int, top: bool) -> None:
    """Legend along the circle of ``radius`` px: centred on top reading clockwise, or on the bottom."""
    if not text:
        return
    widths = [
        text_size(ch, font, scale, th)[0] if ch != " " else text_size("I", font, scale, th)[0] * 1.4 for ch in text
    ]
    gap = 0.12 * text_size("M", font, scale, th)[0]
    total = sum(widths) + gap * (len(text) - 1)
    max_arc = (1.75 if top else 1.1) * np.pi * radius
    if total > max_arc:
        f = max_arc / total
        scale *= f
        widths = [w * f for w in widths]
        gap *= f
        total = max_arc
    cum = 0.0
    for ch, w in zip(text, widths, strict=True):
        mid = (cum + w / 2.0) / radius
        cum += w + gap
        if ch == " ":
            continue
        if top:
            theta = -np.pi / 2 - total / (2 * radius) + mid
            rot = np.degrees(theta) + 90.0
        else:
            theta = np.pi / 2 + total / (2 * radius) - mid
            rot = np.degrees(theta) - 90.0
        x = rel.c + radius * np.cos(theta)
        y = rel.c + radius * np.sin(theta)
        glyph(m, ch, x, y, rot, font, scale, th)


def straight_text(m: UInt8Array, text: str, cx: float, cy: float, font: int, scale: float, th: int) -> None:
    """Text centred on ``(cx, cy)`` with one fixed-width slot per character (a changed digit moves nothing)."""
    slot = max(text_size(d, font, scale, th)[0] for d in "0123456789") * 1.08
    x0 = cx - slot * len(text) / 2.0
    for i, ch in enumerate(text):
        glyph(m, ch, x0 + slot * (i + 0.5), cy, 0.0, font, scale, th)


def star_pts(rel: Relief, x: float, y: float, r_out: float, n: int, rot: float, inner: float = 0.45) -> np.ndarray:
    pts = []
    for k in range(2 * n):
        a = rot + np.pi * k / n - np.pi / 2
        rr = r_out if k % 2 == 0 else r_out * inner
        pts.append((x + rr * np.cos(a), y + rr * np.sin(a)))
    return rel.pts(pts)
