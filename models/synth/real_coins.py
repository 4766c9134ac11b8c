"""Real coins for synthetic scenes: the denominations whose training crops can be pasted into cups, and each crop
cut to its coin's disc (the euro, won and rupee crops under ``../shared/data/real``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.types import UInt8Array

# Real crop folders: type-id prefix, folder glob relative to the real data root, and diameters in mm.
REAL_DIAMETERS_MM: dict[str, dict[str, float]] = {
    "euro": {"1c": 16.25, "2c": 18.75, "5c": 21.25, "10c": 19.75, "20c": 22.25, "50c": 24.25, "1e": 23.25, "2e": 25.75},
    "won": {"10won": 18.0, "50won": 21.6, "100won": 24.0, "500won": 26.5},
    "rupee": {"1_rupee": 20.0, "2_rupee": 23.0, "5_rupee": 25.0},
}
REAL_DIRS: dict[str, str] = {"euro": "euro_kaa/crops", "won": "won_cho0h5/crops", "rupee": "rupee_somanna/crops"}


_CROP_NAME = re.compile(r"^(.*?)(\.(?:jpe?g|png))?[-_]\d+$", re.IGNORECASE)


def crop_photo(path: str | Path) -> str:
    """The photo a real crop was cut from, by its name: ``IMG_4187_3.jpg`` and ``IMG_4187.jpg-3.jpg`` were both cut
    from ``IMG_4187``."""
    stem = Path(path).stem
    m = _CROP_NAME.match(stem)
    return m.group(1) if m and m.group(1) else stem


def shared_photos(first: Iterable[str | Path], second: Iterable[str | Path]) -> tuple[str, ...]:
    """The photos (:func:`crop_photo`) that gave crops to both ``first`` and ``second``, sorted: empty when two sets
    of crop files are split by source photo (the euro crops), the photos they share when they are not (the won
    crops, split by crop)."""
    return tuple(sorted({crop_photo(p) for p in first} & {crop_photo(p) for p in second}))


def crop_source_photo(path: str | Path, real_root: Path | None) -> str:
    """The real photo a crop file was cut from, as ``<set>/<photo>`` (``euro_kaa/train_12``,
    ``won_cho0h5/20201011_153140``); the rupee crops name no photo, so each is its own (``rupee_somanna/<crop>``).
    ``path`` outside ``real_root``: its photo name alone."""
    p = Path(path)
    try:
        top = p.relative_to(real_root).parts[0] if real_root is not None else ""
    except ValueError:
        top = ""
    name = p.stem if top == "rupee_somanna" else crop_photo(p)
    return f"{top}/{name}" if top else name


@dataclass(frozen=True)
class RealCoinType:
    """A real denomination whose training crops can be pasted into scenes.

    Attributes:
        id: e.g. ``"real-euro-1e"``.
        currency: ``"euro"``, ``"won"`` or ``"rupee"`` (the family).
        diameter_mm: the physical diameter.
        files: the crop files used for rendering (training split only), sorted.
    """

    id: str
    currency: str
    diameter_mm: float
    files: tuple[Path, ...]


def rupee_is_train(path: Path) -> bool:
    """The deterministic 80/20 train/test split of the rupee crops, by file name hash."""
    return int(hashlib.sha1(path.name.encode()).hexdigest(), 16) % 5 != 0


def list_real_types(real_root: Path | None) -> tuple[RealCoinType, ...]:
    """The real denominations available under ``real_root`` (training crops only); empty when absent.

    Euro and won use their ``crops/train`` split; rupee has no split, so 80 % of its files by name hash.
    """
    if real_root is None or not real_root.is_dir():
        return ()
    out: list[RealCoinType] = []
    for currency, rel in REAL_DIRS.items():
        for denom, diam in REAL_DIAMETERS_MM[currency].items():
            if currency == "rupee":
                files = [p for p in sorted((real_root / rel / denom).glob("*.jpg")) if rupee_is_train(p)]
            else:
                files = sorted((real_root / rel / "train" / denom).glob("*.jpg"))
            if files:
                out.append(RealCoinType(f"real-{currency}-{denom}", currency, diam, tuple(files)))
    return tuple(out)


def fit_crop_disc(crop: UInt8Array) -> tuple[float, float, float]:
    """Estimate the coin disc in a real crop.

    Args:
        crop: ``(H, W, 3)`` uint8 BGR, the coin roughly centred.

    Returns:
        ``(cx, cy, r)`` in pixels: a Hough circle near the centre when one is found, else a centred circle with
        a 4 % margin.
    """
    h, w = crop.shape[:2]
    short = min(h, w)
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA) if short != 128 else gray
    k = short / 128.0
    circles = cv2.HoughCircles(
        cv2.GaussianBlur(small, (5, 5), 1.2),
        cv2.HOUGH_GRADIENT,
        dp=1.0,
        minDist=200,
        param1=90,
        param2=22,
        minRadius=30,
        maxRadius=66,
    )
    if circles is not None:
        for x, y, r in circles[0]:
            if abs(x - 64) < 16 and abs(y - 64) < 16:
                return float(x * k), float(y * k), float(r * k)
    return w / 2.0, h / 2.0, short * 0.46


def real_face(path: Path, size: int) -> UInt8Array:
    """A real crop cut to its fitted disc with a feathered alpha, ``(size, size, 4)`` BGRA.

    Raises:
        OSError: the crop cannot be read.
    """
    crop = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if crop is None:
        raise OSError(f"cannot read {path}")
    cx, cy, r = fit_crop_disc(np.asarray(crop, np.uint8))
    s = size
    scale = (s / 2 - 1) / r
    m = np.array([[scale, 0, s / 2 - cx * scale], [0, scale, s / 2 - cy * scale]], np.float32)
    bgr = cv2.warpAffine(crop, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    dist = np.sqrt((xx - s / 2 + 0.5) ** 2 + (yy - s / 2 + 0.5) ** 2)
    feather = s * 0.02
    alpha = np.clip((s / 2 - 1 - dist) / feather + 0.5, 0, 1)
    return np.dstack([bgr, (alpha * 255).astype(np.uint8)])
