"""Cut one square, background-free crop per detected instance for the embedder.

A crop is the square of side equal to the fitted ellipse's major axis, centred on the ellipse, resized to
``size x size`` (the same convention as the synthetic crops data set). Only the instance's own visible mask is
kept; every other pixel (background, neighbouring or overlapping coins) is black. Rotation is left to the
embedder.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.types import CoinCrop, CoinInstance, Frame, UInt8Array


def _affine(inst: CoinInstance, size: int) -> tuple[np.ndarray, float]:
    """The ``(2, 3)`` float32 frame-to-crop transform and the crop side in frame pixels."""
    cx, cy = inst.center
    side = max(float(max(inst.axes)), 2.0)
    sc = size / side
    m = np.array([[sc, 0.0, -(cx - side / 2.0) * sc], [0.0, sc, -(cy - side / 2.0) * sc]], dtype=np.float32)
    return m, side


def cut_crop(frame: Frame, inst: CoinInstance, index: int, size: int = 128) -> CoinCrop:
    """Cut one instance; see :func:`cut_crops`."""
    image = frame.image
    h, w = image.shape[:2]
    m, side = _affine(inst, size)
    cx, cy = inst.center
    # Work on the small region the crop covers (plus the mask's extent) rather than the whole frame.
    ox, oy = inst.mask_origin
    mh, mw = inst.mask.shape
    x0 = max(0, min(int(np.floor(cx - side / 2.0)) - 1, ox))
    y0 = max(0, min(int(np.floor(cy - side / 2.0)) - 1, oy))
    x1 = min(w, max(int(np.ceil(cx + side / 2.0)) + 2, ox + mw))
    y1 = min(h, max(int(np.ceil(cy + side / 2.0)) + 2, oy + mh))
    if x1 <= x0 or y1 <= y0:
        return CoinCrop(
            image=np.zeros((size, size, 3), np.uint8),
            mask=np.zeros((size, size), bool),
            index=index,
            partial=inst.partial,
        )
    region_mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    mx0, my0 = max(ox, x0), max(oy, y0)
    mx1, my1 = min(ox + mw, x1), min(oy + mh, y1)
    if mx1 > mx0 and my1 > my0:
        region_mask[my0 - y0 : my1 - y0, mx0 - x0 : mx1 - x0] = inst.mask[my0 - oy : my1 - oy, mx0 - ox : mx1 - ox]
    region = image[y0:y1, x0:x1].copy()
    region[region_mask == 0] = 0
    m_local = m.copy()
    m_local[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
    warped = cv2.warpAffine(region, m_local, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    soft = cv2.warpAffine(
        region_mask.astype(np.float32), m_local, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    mask = np.asarray(soft >= 0.5)
    crop: UInt8Array = np.asarray(warped, dtype=np.uint8)
    crop[~mask] = 0
    return CoinCrop(image=crop, mask=mask, index=index, partial=inst.partial)


def cut_crops(frame: Frame, instances: list[CoinInstance], size: int = 128) -> list[CoinCrop]:
    """Cut a square crop around each instance's fitted circle with everything but its visible mask black.

    Touching or overlapping coins come out as separate crops, each holding only its own visible pixels.

    Args:
        frame: the camera frame the instances were found in.
        instances: the detector's output for ``frame`` (coins and objects).
        size: crop side in pixels.

    Returns:
        One :class:`CoinCrop` per instance, in order: ``image`` ``(size, size, 3)`` uint8 BGR, ``mask``
        ``(size, size)`` bool, ``index`` the instance's position, ``partial`` copied from the instance.

    Raises:
        ValueError: ``size`` is smaller than 1.
    """
    if size < 1:
        raise ValueError(f"crop size must be >= 1, got {size}")
    return [cut_crop(frame, inst, i, size) for i, inst in enumerate(instances)]
