"""What is in the cup that no detected instance explains: the frame against the station's empty-tray photo.

The detector only reports what it recognises. A bottle cap it never boxed, or a coin it missed under others, is
simply absent from its list, and no feature of the boxed coins can see it. A fixed camera over a fixed tray has a
better witness: the tray photographed empty. Every pixel that differs from that photo must belong to a detected
coin or object (or to its shadow); whatever is left over is something nobody checked, and the cup must go to a
person.

The comparison is built to survive what changes between two exposures of the same tray:

- sensor noise and JPEG: both images are blurred, and the threshold rises with the noise measured on the
  background itself;
- a lamp or white balance drifting: each colour channel of the empty photo is scaled to the frame's background;
- the tray put back a little off: each pixel takes its smallest difference over shifts of up to
  :attr:`ForegroundSettings.shift_px` pixels, and a band along the cup's rim is ignored;
- shadows and blurred edges of the coins: every instance's mask is grown by a share of its diameter.

:func:`unexplained_regions` returns the leftover blobs larger than a share of a coin; the pipeline flags a cup
with any of them ("something at (x, y) was not checked").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.camera import CupRoi
from models.types import CoinInstance, UInt8Array


@dataclass(frozen=True)
class ForegroundSettings:
    """How the frame is compared with the empty tray.

    Attributes:
        scale: the images are compared at this fraction of their size (speed; blobs worth flagging are large).
        blur_sigma: Gaussian blur before comparing, pixels at the working scale.
        shift_px: tolerated misalignment of the tray, full-size pixels.
        min_contrast: the smallest difference (grey levels, largest over the colour channels) that counts.
        noise_k: the threshold is at least this many times the noise of the background's differences.
        halo: each instance's mask is grown by this share of its diameter (its shadow and blurred edge).
        min_area: the smallest blob that is reported, as a share of the median coin's area.
        rim_margin_px: a band this wide inside the cup's rim is ignored (the rim moves with the tray).
        texture_gain: weight of the difference in local relief (a coin the colour of the tray still has edges)
            against the difference in colour; ``0`` compares colour only.
    """

    scale: float = 0.5
    blur_sigma: float = 1.2
    shift_px: int = 2
    min_contrast: float = 20.0
    noise_k: float = 4.5
    halo: float = 0.2
    min_area: float = 0.15
    rim_margin_px: float = 8.0
    texture_gain: float = 3.0

    def __post_init__(self) -> None:
        if not 0.1 <= self.scale <= 1.0:
            raise ValueError(f"scale must be in [0.1, 1], got {self.scale}")
        if self.shift_px < 0 or self.blur_sigma < 0 or self.halo < 0 or self.rim_margin_px < 0:
            raise ValueError("shift, blur, halo and rim margin must be >= 0")
        if self.min_contrast <= 0 or self.min_area <= 0:
            raise ValueError("min contrast and min area must be > 0")


DEFAULT_SETTINGS = ForegroundSettings()

DEFAULT_COIN_SHARE = 0.07
"""With no coin found, a coin is taken to be this share of the image's shorter side across."""


@dataclass(frozen=True)
class ForegroundRegion:
    """A part of the cup that differs from the empty tray and that no instance explains.

    Attributes:
        bbox: ``(x1, y1, x2, y2)`` integer extent in frame pixels, exclusive of ``x2, y2``.
        centre: ``(x, y)`` centroid in frame pixels.
        area_px: area in frame pixels.
        coin_share: area as a share of the median coin's area.
        contrast: the blob's median difference from the empty tray (grey levels).
    """

    bbox: tuple[int, int, int, int]
    centre: tuple[float, float]
    area_px: int
    coin_share: float
    contrast: float


def _blurred(small: UInt8Array, sigma: float) -> np.ndarray:
    f = small.astype(np.float32)
    return np.asarray(cv2.GaussianBlur(f, (0, 0), sigma) if sigma > 0 else f, np.float32)


def _relief(small: UInt8Array) -> np.ndarray:
    """Local edge energy: the band-passed grey level's magnitude, smoothed (the texture a surface shows)."""
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
    band = cv2.GaussianBlur(grey, (0, 0), 0.8) - cv2.GaussianBlur(grey, (0, 0), 2.5)
    return np.asarray(cv2.GaussianBlur(np.abs(band), (0, 0), 2.0), np.float32)


def _shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    if dx == 0 and dy == 0:
        return image
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    h, w = image.shape[:2]
    return np.asarray(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE), np.float32)


def explained_mask(
    instances: Sequence[CoinInstance],
    shape: tuple[int, int],
    halo: float,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Every instance's visible mask grown by ``halo`` of its diameter, as a bool mask.

    Args:
        instances: detected coins and objects (frame coordinates).
        shape: ``(H, W)`` of the frame.
        halo: growth as a share of each instance's diameter.
        out_shape: ``(h, w)`` of the returned mask (the frame scaled); default ``shape``.
    """
    h, w = shape if out_shape is None else out_shape
    fx, fy = w / shape[1], h / shape[0]
    out = np.zeros((h, w), np.uint8)
    for inst in instances:
        mh, mw = inst.mask.shape
        if mh == 0 or mw == 0:
            continue
        x0, y0 = inst.mask_origin
        grow = max(1, math.ceil(halo * inst.diameter_px * fx))
        # the mask at the output scale, padded by the growth, then grown
        ax0, ay0 = math.floor(x0 * fx), math.floor(y0 * fy)
        ax1, ay1 = max(ax0 + 1, math.ceil((x0 + mw) * fx)), max(ay0 + 1, math.ceil((y0 + mh) * fy))
        small = cv2.resize(inst.mask.astype(np.uint8), (ax1 - ax0, ay1 - ay0), interpolation=cv2.INTER_NEAREST)
        pad = cv2.copyMakeBorder(small, grow, grow, grow, grow, cv2.BORDER_CONSTANT, value=0)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        big = cv2.dilate(pad, kernel)
        gx0, gy0 = ax0 - grow, ay0 - grow
        sx0, sy0 = max(0, -gx0), max(0, -gy0)
        dx0, dy0 = max(0, gx0), max(0, gy0)
        dx1, dy1 = min(w, gx0 + big.shape[1]), min(h, gy0 + big.shape[0])
        if dx1 <= dx0 or dy1 <= dy0:
            continue
        sub = big[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
        np.maximum(out[dy0:dy1, dx0:dx1], sub, out=out[dy0:dy1, dx0:dx1])
    return out > 0


def _max_channel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = cv2.absdiff(a, b)
    c0, c1, c2 = cv2.split(d)
    return np.asarray(cv2.max(cv2.max(c0, c1), c2), np.float32)


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.absdiff(a, b), np.float32)


def _min_over_shifts(
    a: np.ndarray, b: np.ndarray, k: int, dist: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Per pixel, the smallest ``dist(a, b shifted)`` over every shift of ``b`` by up to ``k`` pixels."""
    out = np.full(a.shape[:2], np.inf, np.float32)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            np.minimum(out, dist(a, _shifted(b, dx, dy)), out=out)
    return out


def unexplained_regions(
    frame: UInt8Array,
    empty: UInt8Array,
    instances: Sequence[CoinInstance],
    roi: CupRoi | None = None,
    settings: ForegroundSettings = DEFAULT_SETTINGS,
) -> tuple[ForegroundRegion, ...]:
    """The blobs where ``frame`` differs from the empty tray and no instance explains the difference.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR cup photo.
        empty: the station's empty-tray photo, same camera; another size is resized to the frame's.
        instances: everything the detector found (coins and objects); their grown masks are explained.
        roi: the cup's interior; only differences inside it (less the rim band) count. ``None``: the whole frame.
        settings: comparison settings.

    Returns:
        The regions, largest first; empty when everything in the cup is explained.

    Raises:
        ValueError: the images are not 3-channel colour images.
    """
    for name, im in (("frame", frame), ("empty-tray image", empty)):
        if im.ndim != 3 or im.shape[2] != 3 or im.shape[0] < 8 or im.shape[1] < 8:
            raise ValueError(f"the {name} must be a colour image, got shape {im.shape}")
    h, w = frame.shape[:2]
    if empty.shape[:2] != (h, w):
        empty = np.asarray(cv2.resize(empty, (w, h), interpolation=cv2.INTER_AREA), np.uint8)
    s = settings.scale
    sw, sh = max(8, round(w * s)), max(8, round(h * s))
    fx, fy = w / sw, h / sh
    f_small = np.asarray(cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA), np.uint8)
    e_small = np.asarray(cv2.resize(empty, (sw, sh), interpolation=cv2.INTER_AREA), np.uint8)
    f_img = _blurred(f_small, settings.blur_sigma)
    e_img = _blurred(e_small, settings.blur_sigma)

    explained = explained_mask(instances, (h, w), settings.halo, (sh, sw))
    inside = np.ones((sh, sw), bool)
    if roi is not None:
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float64)
        inside = roi.inset((xx + 0.5) * fx, (yy + 0.5) * fy) >= settings.rim_margin_px
    background = inside & ~explained
    if int(background.sum()) >= 200:
        # The lamp and white balance of the two exposures differ: match each colour channel. The median of the
        # per-pixel ratio stays inside the tight spread of the tray's own pixels even when an unexplained object
        # covers a good part of the background.
        ratio = np.median(f_img[background] / np.maximum(e_img[background], 1.0), axis=0)
        e_img = e_img * np.clip(ratio, 0.5, 2.0).astype(np.float32)[None, None, :]

    k = max(0, round(settings.shift_px * s))
    diff = _min_over_shifts(f_img, e_img, k, _max_channel_diff)
    if settings.texture_gain > 0:
        tex = _min_over_shifts(_relief(f_small), _relief(e_small), k, _abs_diff)
        np.maximum(diff, settings.texture_gain * tex, out=diff)

    bg_diff = diff[background] if int(background.sum()) >= 200 else diff[inside]
    level = settings.min_contrast
    if bg_diff.size:
        # The noise from the lower quarter of the background's differences (what an unexplained object adds lies
        # in the upper part): for half-normal noise the 25th percentile is 0.32 sigma.
        sigma = float(np.percentile(bg_diff, 25)) / 0.319
        level = max(level, settings.noise_k * sigma)
    cand = ((diff > level) & inside & ~explained).astype(np.uint8)
    cand = cv2.morphologyEx(cand, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))

    coins = [i for i in instances if i.is_coin]
    d_med = float(np.median([i.diameter_px for i in coins])) if coins else DEFAULT_COIN_SHARE * min(h, w)
    coin_area = math.pi / 4 * d_med * d_med
    n, lab, stats, cents = cv2.connectedComponentsWithStats(cand, connectivity=8)
    out: list[ForegroundRegion] = []
    for j in range(1, n):
        area = float(stats[j, cv2.CC_STAT_AREA]) * fx * fy
        if area < settings.min_area * coin_area:
            continue
        x, y, bw, bh = (int(v) for v in stats[j, :4])
        contrast = float(np.median(diff[lab == j]))
        out.append(
            ForegroundRegion(
                bbox=(
                    math.floor(x * fx),
                    math.floor(y * fy),
                    min(w, math.ceil((x + bw) * fx)),
                    min(h, math.ceil((y + bh) * fy)),
                ),
                centre=(float(cents[j, 0] * fx), float(cents[j, 1] * fy)),
                area_px=round(area),
                coin_share=round(area / coin_area, 3),
                contrast=round(contrast, 1),
            )
        )
    out.sort(key=lambda r: -r.area_px)
    return tuple(out)
