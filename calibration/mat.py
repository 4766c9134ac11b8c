"""A printable mat for the station's table: a random speckle a moved camera can be told by.

:mod:`calibration.movement` finds the camera's position from what lies around the cup. A plain white or grey table
offers nothing to find, and a tiled one only a repeating pattern. Printed and laid flat under and around the tray,
this sheet offers features everywhere, at several sizes, so they are found again whether the camera hangs at 30 or
60 cm: black and grey dots of 0.6 to 4 mm, at random (seeded: two mats of one seed are the same), never repeating.

OpenCV and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.types import UInt8Array

PAPERS_MM: dict[str, tuple[float, float]] = {"a4": (210.0, 297.0), "a3": (297.0, 420.0), "letter": (215.9, 279.4)}
"""Paper sizes (width, height) in millimetres."""
DOT_RADII_MM = (0.6, 1.2, 2.4, 4.0)
"""Dot radii; each size covers about the same share of the sheet."""
COVER = 0.07
"""The share of the sheet each dot size covers."""
CAPTION = "cupcheck station mat - lay it flat under and around the tray, and leave it there"


@dataclass(frozen=True)
class MatSpec:
    """What to print.

    Attributes:
        paper: a key of :data:`PAPERS_MM`.
        dpi: print resolution, dots per inch.
        seed: the random pattern's seed.
    """

    paper: str = "a4"
    dpi: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.paper not in PAPERS_MM:
            raise ValueError(f"unknown paper {self.paper!r}; one of {', '.join(PAPERS_MM)}")
        if not 72 <= self.dpi <= 600:
            raise ValueError(f"dpi must be between 72 and 600, got {self.dpi}")

    @property
    def px_per_mm(self) -> float:
        """Pixels per millimetre at :attr:`dpi`."""
        return self.dpi / 25.4

    @property
    def size_px(self) -> tuple[int, int]:
        """``(width, height)`` of the page in pixels."""
        w, h = PAPERS_MM[self.paper]
        return round(w * self.px_per_mm), round(h * self.px_per_mm)


def speckle_mat(spec: MatSpec = MatSpec()) -> UInt8Array:
    """The mat's page: ``(H, W)`` uint8 grey, white paper with black and grey dots and a caption at the foot."""
    rng = np.random.default_rng([spec.seed, 0x4D4154])
    w, h = spec.size_px
    page = np.full((h, w), 255, np.uint8)
    f = spec.px_per_mm
    for r_mm in DOT_RADII_MM:
        r = max(1.0, r_mm * f)
        n = int(COVER * w * h / (np.pi * r * r))
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        shades = rng.choice(np.array([0, 0, 0, 110]), n)  # mostly black: it prints and photographs well
        radii = r * rng.uniform(0.7, 1.3, n)
        for x, y, rad, shade in zip(xs, ys, radii, shades, strict=True):
            cv2.circle(page, (round(x), round(y)), max(1, round(rad)), int(shade), -1, cv2.LINE_AA)
    margin = round(6 * f)
    thickness = max(1, round(f / 5))
    (text_w, text_h), _ = cv2.getTextSize(CAPTION, cv2.FONT_HERSHEY_SIMPLEX, 1.0, thickness)
    scale = (w - 2 * margin) / text_w  # the caption fills the width between the margins
    page[h - 2 * margin - round(text_h * scale) :, :] = 255
    cv2.putText(page, CAPTION, (margin, h - margin), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, thickness, cv2.LINE_AA)
    return page
