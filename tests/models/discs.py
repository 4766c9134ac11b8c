"""Coin instances of drawn discs, cut and fitted as the detector cuts and fits its masks."""

from __future__ import annotations

import numpy as np

from models.outline import fit_outline
from models.types import CoinInstance


def piece(mask: np.ndarray) -> CoinInstance:
    """A coin instance of a full-frame mask, cropped and fitted as the detector does."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    crop = mask[y0:y1, x0:x1]
    fit = fit_outline(crop, (x0, y0), mask.shape[1], mask.shape[0])
    assert fit is not None
    (cx, cy), axes, angle = fit
    bbox = np.array([x0, y0, x1, y1], np.float32)
    return CoinInstance(
        bbox=bbox, mask=crop, mask_origin=(x0, y0), confidence=0.9, center=(cx, cy), axes=axes, angle=angle
    )


def disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:300, 0:300]
    return np.asarray((xx - cx) ** 2 + (yy - cy) ** 2 <= r**2)
