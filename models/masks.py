"""Instance masks: each pixel given to one instance, and a mask cut to or pasted into its frame.

A :class:`~models.types.CoinInstance` holds its mask cropped to its extent with the frame position of its first
pixel (``mask_origin``); these helpers move between that and frame-sized masks.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.segmenter import Window
from models.types import BoolArray, CoinInstance, FloatArray


def resolve_overlaps(
    logits: list[tuple[FloatArray, Window]], width: int, height: int, floor: float = 0.0
) -> list[tuple[BoolArray, tuple[int, int]] | None]:
    """Give each pixel above ``floor`` to the instance with the highest logit; crop masks to their extent."""
    best = np.full((height, width), floor, dtype=np.float32)
    owner = np.full((height, width), -1, dtype=np.int32)
    for k, (lg, win) in enumerate(logits):
        x0, y0 = max(0, win.x0), max(0, win.y0)
        x1, y1 = min(width, win.x0 + win.side), min(height, win.y0 + win.side)
        if x1 <= x0 or y1 <= y0:
            continue
        part = lg[y0 - win.y0 : y1 - win.y0, x0 - win.x0 : x1 - win.x0]
        view_best, view_owner = best[y0:y1, x0:x1], owner[y0:y1, x0:x1]
        take = part > view_best
        view_best[take] = part[take]
        view_owner[take] = k
    out: list[tuple[BoolArray, tuple[int, int]] | None] = []
    for k, (_, win) in enumerate(logits):
        x0, y0 = max(0, win.x0), max(0, win.y0)
        x1, y1 = min(width, win.x0 + win.side), min(height, win.y0 + win.side)
        if x1 <= x0 or y1 <= y0:
            out.append(None)
            continue
        m = owner[y0:y1, x0:x1] == k
        m = _largest_components(m)
        ys, xs = np.nonzero(m)
        if len(xs) < 16:
            out.append(None)
            continue
        bx0, by0, bx1, by1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        out.append((np.ascontiguousarray(m[by0:by1, bx0:bx1]), (int(x0 + bx0), int(y0 + by0))))
    return out


def _largest_components(mask: BoolArray, keep: float = 0.1) -> BoolArray:
    """Drop connected components smaller than ``keep`` times the largest one."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    good = np.flatnonzero(areas >= keep * areas.max()) + 1
    return np.isin(labels, good)


def instance_full_mask(inst: CoinInstance, width: int, height: int) -> BoolArray:
    """The instance's mask pasted into a ``(height, width)`` bool frame."""
    full = np.zeros((height, width), dtype=bool)
    paste_mask(full, inst)
    return full


def mask_window(inst: CoinInstance, width: int, height: int) -> tuple[tuple[slice, slice], BoolArray] | None:
    """The part of the instance's mask inside a ``(height, width)`` frame: the frame's ``(rows, columns)`` slices
    and the mask cut to them; ``None`` when none of it is inside."""
    ox, oy = inst.mask_origin
    mh, mw = inst.mask.shape
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(width, ox + mw), min(height, oy + mh)
    if x1 <= x0 or y1 <= y0:
        return None
    return (slice(y0, y1), slice(x0, x1)), inst.mask[y0 - oy : y1 - oy, x0 - ox : x1 - ox]


def paste_mask(frame: BoolArray, inst: CoinInstance) -> None:
    """Add the instance's mask to the frame-sized bool ``frame`` in place (the part inside the frame)."""
    window = mask_window(inst, frame.shape[1], frame.shape[0])
    if window is not None:
        frame[window[0]] |= window[1]
