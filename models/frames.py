"""Read a photo into a :class:`~models.types.Frame`, and show what the detector found on it.

:func:`instance_record` is the ``cupcheck detect --json`` coin schema; :func:`draw_overlay` draws masks, outlines and
diameters for the evaluation report and ``cupcheck detect --overlay``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from models.masks import instance_full_mask
from models.types import CoinInstance, Frame, UInt8Array


def read_frame(path: str | Path) -> Frame:
    """Read an image file into a :class:`Frame`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty, unreadable or not an image.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not an image")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    data = np.fromfile(path, dtype=np.uint8)
    image = _decode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, path)
    if image is not None and image.dtype == np.uint16:
        image = to_8bit(np.asarray(image, np.uint16))
    elif image is not None and image.dtype != np.uint8:  # floating point (TIFF): OpenCV's own conversion
        image = _decode(data, cv2.IMREAD_COLOR, path)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return Frame(image=np.ascontiguousarray(image, dtype=np.uint8), source=str(path))


def _decode(data: UInt8Array, flags: int, path: Path) -> npt.NDArray[Any] | None:
    """``cv2.imdecode`` of a file's bytes, ``None`` when OpenCV cannot read them.

    OpenCV refuses some files with an exception rather than ``None``: a header claiming more pixels than it will
    decode (over 2^30, a corrupt or oversized file), or a size its codec rejects. Those are files that cannot be
    read, named as such, not a crash of the command reading them.

    Raises:
        ValueError: OpenCV refused the file (its reason given).
    """
    try:
        return cv2.imdecode(data, flags)
    except cv2.error as err:
        reason = (err.err or str(err)).strip()
        if "MAX_IMAGE_PIXELS" in reason:
            reason = (
                "its header claims more than 2^30 pixels: a corrupt file, or a picture far larger than a station "
                "photo; take or export it again at the camera's size"
            )
        raise ValueError(f"{path}: not a readable image (OpenCV refused it: {reason})") from err


def to_8bit(image: npt.NDArray[np.uint16]) -> UInt8Array:
    """A 16-bit image as 8 bits, scaled by the bit depth its largest value needs.

    A 16-bit PNG or TIFF often holds a 10- or 12-bit sensor's values (up to 1023 or 4095): keeping the top 8 of 16
    bits, as OpenCV does, would make it nearly black and every coin in it unseen. A photo using the full 16 bits
    reads as OpenCV reads it (the top 8 bits).

    Args:
        image: ``(H, W, 3)`` or ``(H, W)`` uint16.

    Returns:
        The same shape, uint8.
    """
    shift = max(0, int(image.max()).bit_length() - 8)
    return np.asarray(image >> shift, dtype=np.uint8)


def instance_record(inst: CoinInstance) -> dict[str, Any]:
    """A JSON-safe summary of one instance (the ``cupcheck detect --json`` coin schema)."""
    x1, y1, x2, y2 = (round(float(v), 2) for v in inst.bbox)
    return {
        "bbox": [x1, y1, x2, y2],
        "confidence": round(float(inst.confidence), 4),
        "center": [round(inst.center[0], 2), round(inst.center[1], 2)],
        "diameter_px": round(inst.diameter_px, 2),
        "diameter_mm": None if inst.diameter_mm is None else round(float(inst.diameter_mm), 3),
        "partial": bool(inst.partial),
    }


def draw_overlay(
    image: UInt8Array, instances: list[CoinInstance], label: str = "", names: Sequence[str] | None = None
) -> UInt8Array:
    """Draw masks (tinted), fitted ellipses, centres, numbers and diameters on a copy of a BGR image.

    Every instance is numbered from 1 in its order in ``instances``, objects too: the numbering of a verdict's
    reasons ("coin 3 looks like ...", "object 2 is not a coin"), ``cupcheck detect``'s table and ``cupcheck
    identify``'s list.

    Args:
        image: ``(H, W, 3)`` uint8 BGR.
        instances: what to draw; coins green (partial ones yellow), foreign objects red.
        label: text for the top-left corner.
        names: one text per coin, in order, to write after its number instead of its diameter (the type
            ``cupcheck identify`` found).

    Returns:
        ``(H, W, 3)`` uint8 BGR.

    Raises:
        ValueError: ``names`` does not hold one text per coin.
    """
    n_coins = sum(1 for i in instances if i.is_coin)
    if names is not None and len(names) != n_coins:
        raise ValueError(f"{len(names)} names for {n_coins} coins")
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 640))
    tint = out.copy()
    for inst in instances:
        color = (0, 200, 0) if inst.is_coin else (0, 0, 230)
        if inst.is_coin and inst.partial:
            color = (0, 210, 230)
        full = instance_full_mask(inst, w, h)
        tint[full] = color
    out = np.asarray(cv2.addWeighted(tint, 0.35, out, 0.65, 0.0), dtype=np.uint8)
    n = 0  # coins named so far
    for k, inst in enumerate(instances):
        color = (0, 255, 0) if inst.is_coin else (0, 0, 255)
        if inst.is_coin and inst.partial:
            color = (0, 230, 255)
        center = (round(inst.center[0]), round(inst.center[1]))
        axes = (max(1, round(inst.axes[0] / 2)), max(1, round(inst.axes[1] / 2)))
        cv2.ellipse(out, center, axes, inst.angle, 0, 360, color, thick, cv2.LINE_AA)
        cv2.circle(out, center, thick + 1, color, -1, cv2.LINE_AA)
        if inst.is_coin:
            size = f"{inst.diameter_mm:.1f}mm" if inst.diameter_mm is not None else f"{inst.diameter_px:.0f}px"
            text = f"{k + 1} {names[n] if names is not None else size}"
            n += 1
        else:
            text = f"{k + 1} object"
        org = (center[0] - 20 * thick, center[1] - 6 * thick)
        for colour, width in (((0, 0, 0), thick + 2), ((255, 255, 255), thick)):  # white on a dark edge
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, colour, width, cv2.LINE_AA)
    if label:
        cv2.putText(
            out, label, (8, 20 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * thick, (255, 255, 255), thick, cv2.LINE_AA
        )
    return np.asarray(out, dtype=np.uint8)
