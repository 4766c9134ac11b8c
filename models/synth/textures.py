"""Backgrounds for synthetic cup scenes: procedural surfaces and real table/paper patches.

Procedural surfaces (paper, wood, felt, plastic) are drawn at low resolution and upsampled, so one costs a few
milliseconds at 640 px. Real patches are cut once from the borders of the real coin photos (regions with no
detected coin) and cached as a compressed ``.npz`` file; everything works without the real data folder. Those photos
are the ones the real-photo evaluations judge (``eval detect``, ``eval verdict --real``), so a data set takes real
patches only when asked (``cupcheck synth --real-backgrounds``) and names every photo a patch came from.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.files import default_cache_dir
from models.types import UInt8Array

SURFACES: tuple[str, ...] = ("paper", "wood", "felt", "plastic", "stone")
"""Procedural surface kinds."""

PATCH_SIZE = 256
"""Side of a cached real patch in pixels."""

_PHOTO_GLOBS: tuple[str, ...] = ("euro_kaa/photos/*/*.jpg", "won_cho0h5/photos/*.jpg")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in ``[-1, 1]``, ``(h, w)`` float32, about ``cells`` blobs across."""
    small = rng.uniform(-1.0, 1.0, size=(max(2, cells), max(2, cells))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _grain(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Fine per-pixel grain, ``(h, w)`` float32 with standard deviation ``sigma``."""
    return rng.normal(0.0, sigma, size=(h, w)).astype(np.float32)


def _colorize(base_bgr: np.ndarray, shade: np.ndarray) -> UInt8Array:
    """``base_bgr`` (3,) modulated by ``shade`` ``(h, w)`` additive intensity → ``(h, w, 3)`` uint8."""
    out = base_bgr[None, None, :].astype(np.float32) + shade[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8)


def procedural_surface(kind: str, rng: np.random.Generator, h: int, w: int) -> UInt8Array:
    """Draw one procedural surface (at half resolution, upsampled: the camera's own noise adds the grain).

    Args:
        kind: one of :data:`SURFACES`.
        rng: the random source.
        h: height in pixels.
        w: width in pixels.

    Returns:
        ``(h, w, 3)`` uint8 BGR.
    """
    small = _surface_small(kind, rng, max(2, h // 2), max(2, w // 2))
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)


def _surface_small(kind: str, rng: np.random.Generator, h: int, w: int) -> UInt8Array:
    """Draw one procedural surface at full given size.

    Args:
        kind: one of :data:`SURFACES`.
        rng: the random source.
        h: height in pixels.
        w: width in pixels.

    Returns:
        ``(h, w, 3)`` uint8 BGR.
    """
    if kind == "paper":
        tone = rng.uniform(200, 248)
        tint = rng.normal(0, 4, size=3)
        base = np.array([tone + tint[0] + 3, tone + tint[1], tone + tint[2] - 3])
        shade = _smooth_noise(rng, h, w, 5) * rng.uniform(2, 7) + _grain(rng, h, w, rng.uniform(1.5, 4))
        return _colorize(base, shade)
    if kind == "wood":
        palettes = [(40, 75, 125), (60, 105, 160), (30, 50, 85), (90, 140, 190), (25, 40, 70)]
        base = np.array(palettes[int(rng.integers(len(palettes)))], np.float32) + rng.normal(0, 8, 3)
        freq = rng.uniform(0.01, 0.04)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        # Growth rings meander slowly; fibres are fine parallel streaks along the grain.
        warp = _smooth_noise(rng, h, w, 3) * rng.uniform(4, 15) + _smooth_noise(rng, h, w, 12) * 1.5
        rings = np.sin((u + warp) * freq * 2 * np.pi) ** 3
        n_fib = 4096
        fibres = np.asarray(
            cv2.GaussianBlur(rng.normal(0, 1, (1, n_fib)).astype(np.float32), (0, 0), 1.0), np.float32
        ).ravel()
        fibres = fibres / max(1e-6, float(fibres.std()))
        idx = ((u + warp) * rng.uniform(0.8, 1.6)).astype(np.int64) % n_fib
        shade = rings * rng.uniform(8, 20) + fibres[idx] * rng.uniform(3, 7) + _grain(rng, h, w, 1.5)
        out = _colorize(base, shade)
        return out
    if kind == "felt":
        palettes = [(40, 90, 30), (90, 40, 20), (30, 30, 120), (45, 45, 45), (20, 20, 20), (110, 70, 60)]
        base = np.array(palettes[int(rng.integers(len(palettes)))], np.float32) + rng.normal(0, 6, 3)
        g = rng.normal(0, 9, size=(h, w)).astype(np.float32)
        g = np.asarray(cv2.GaussianBlur(g, (0, 0), 0.8), np.float32)
        shade = g + _smooth_noise(rng, h, w, 6) * 5
        return _colorize(base, shade)
    if kind == "plastic":
        palettes = [
            (35, 35, 35),
            (200, 200, 200),
            (150, 90, 30),
            (40, 40, 170),
            (60, 140, 60),
            (230, 230, 235),
            (110, 110, 110),
            (20, 140, 210),
        ]
        base = np.array(palettes[int(rng.integers(len(palettes)))], np.float32) + rng.normal(0, 6, 3)
        shade = _smooth_noise(rng, h, w, 3) * rng.uniform(3, 12) + _grain(rng, h, w, 1.2)
        return _colorize(base, shade)
    if kind == "stone":
        # A speckled counter top: a light or dark base with sparse flecks of other colours.
        tone = rng.uniform(60, 220)
        base = np.array([tone, tone + rng.normal(0, 5), tone + rng.normal(4, 6)], np.float32)
        out = _colorize(base, _smooth_noise(rng, h, w, 6) * 6 + _grain(rng, h, w, 3.0)).astype(np.float32)
        for _ in range(int(rng.integers(2, 4))):
            fleck = np.asarray(
                cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), rng.uniform(0.6, 1.2)), np.float32
            )
            fleck = fleck / max(1e-6, float(fleck.std()))
            m = np.clip((fleck - rng.uniform(1.2, 2.2)) * 2.0, 0, 1)[:, :, None]
            col = np.clip(rng.normal(tone, 80) + rng.normal(0, 10, 3), 0, 255).astype(np.float32)
            out = out * (1 - m) + col[None, None, :] * m
        return np.clip(out, 0, 255).astype(np.uint8)
    raise ValueError(f"unknown surface {kind!r}; expected one of {SURFACES}")


@dataclass(frozen=True)
class PatchBank:
    """Real surface patches cut from coin-free regions of real photos.

    Attributes:
        patches: ``(n, PATCH_SIZE, PATCH_SIZE, 3)`` uint8 BGR.
        sources: each patch's photo, relative to the real data folder (``euro_kaa/photos/mixed/test_3.jpg``); empty
            when unknown.
    """

    patches: UInt8Array
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    def sample(self, rng: np.random.Generator, h: int, w: int) -> UInt8Array:
        """A random patch, rotated/flipped, a random window of it resized to ``(h, w, 3)`` uint8 BGR.

        A patch spans about 6 cm of table and a scene 10-15 cm, so textures come out up to ~2x coarse; mirror
        tiling would fix the scale but its kaleidoscope seams look far less natural.
        """
        return self.sample_with_source(rng, h, w)[0]

    def sample_with_source(self, rng: np.random.Generator, h: int, w: int) -> tuple[UInt8Array, str]:
        """:meth:`sample`, with the photo the patch was cut from (``""`` when unknown)."""
        k = int(rng.integers(len(self)))
        p = self.patches[k]
        p = np.rot90(p, int(rng.integers(4)))
        if rng.random() < 0.5:
            p = p[:, ::-1]
        n = p.shape[0]
        s = int(n * rng.uniform(0.8, 1.0))
        y = int(rng.integers(n - s + 1))
        x = int(rng.integers(n - s + 1))
        p = np.ascontiguousarray(p[y : y + s, x : x + s])
        source = self.sources[k] if k < len(self.sources) else ""
        return np.asarray(cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8), source


def _coin_mask(gray_small: np.ndarray) -> np.ndarray:
    """Pixels near a coin in a downscaled photo: Hough circles plus strong-edge blobs, dilated. Bool ``(h, w)``."""
    h, w = gray_small.shape
    mask = np.zeros((h, w), np.uint8)
    blur = cv2.medianBlur(gray_small, 5)
    short = min(h, w)
    circles = cv2.HoughCircles(
        blur,
        cv2.HOUGH_GRADIENT,
        dp=1.2,
        minDist=short / 30,
        param1=100,
        param2=28,
        minRadius=int(short / 60),
        maxRadius=int(short / 6),
    )
    if circles is not None:
        for x, y, r in circles[0]:
            cv2.circle(mask, (int(x), int(y)), int(r * 1.6), 255, -1)
    # Coins are the high-contrast objects here; paper/wood edges are weak after a median blur.
    edges = cv2.Canny(blur, 60, 160)
    edges = cv2.dilate(edges, np.ones((9, 9), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(edges)
    for i in range(1, n):
        bw, bh = stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]
        # Long components are table/paper borders, specks are stone or wood texture; coin-sized ones are coins.
        if short / 40 < max(bw, bh) < short / 4:
            mask[labels == i] = 255
    mask = np.asarray(cv2.dilate(mask, np.ones((15, 15), np.uint8)), np.uint8)
    return mask > 0


def cut_patches(photo: UInt8Array, max_patches: int = 6) -> list[UInt8Array]:
    """Cut coin-free patches from the border of one real photo.

    Args:
        photo: ``(H, W, 3)`` uint8 BGR.
        max_patches: at most this many patches.

    Returns:
        Patches, each ``(PATCH_SIZE, PATCH_SIZE, 3)`` uint8 BGR (downscaled so a patch spans ~1/5 of the photo).
    """
    h, w = photo.shape[:2]
    scale = 800.0 / max(h, w)
    small = cv2.resize(photo, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    busy = _coin_mask(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    side = min(sh, sw) // 5
    out: list[UInt8Array] = []
    # Candidate windows along the border, then a second ring inside it.
    cands: list[tuple[int, int]] = []
    for ring in (0, side):
        for x in range(ring, sw - side - ring + 1, side // 2):
            cands += [(x, ring), (x, sh - side - ring)]
        for y in range(ring, sh - side - ring + 1, side // 2):
            cands += [(ring, y), (sw - side - ring, y)]
    taken = np.zeros_like(busy)
    for x, y in cands:
        if busy[y : y + side, x : x + side].any() or taken[y : y + side, x : x + side].mean() > 0.3:
            continue
        taken[y : y + side, x : x + side] = True
        patch = cv2.resize(small[y : y + side, x : x + side], (PATCH_SIZE, PATCH_SIZE), interpolation=cv2.INTER_AREA)
        out.append(np.asarray(patch, np.uint8))
        if len(out) >= max_patches:
            break
    return out


def load_patch_bank(real_root: Path | None, cache_dir: Path | None = None) -> PatchBank | None:
    """Load (or build and cache) the real surface patches.

    Args:
        real_root: the real data folder (``.../shared/data/real``); ``None`` or absent → ``None``.
        cache_dir: where the ``.npz`` cache lives (default :func:`default_cache_dir`).

    Returns:
        The bank, or ``None`` when there are no photos or no coin-free patch was found.
    """
    if real_root is None or not real_root.is_dir():
        return None
    photos = sorted(p for g in _PHOTO_GLOBS for p in real_root.glob(g))
    if not photos:
        return None
    key = hashlib.sha1("\n".join(f"{p.relative_to(real_root)}:{p.stat().st_size}" for p in photos).encode())
    cache = (cache_dir or default_cache_dir()) / f"surface_patches_v2_{key.hexdigest()[:12]}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            arr, names = data["patches"], tuple(str(n) for n in data["sources"])
        return PatchBank(arr, names) if len(arr) else None
    patches: list[UInt8Array] = []
    sources: list[str] = []
    for p in photos:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            cut = cut_patches(np.asarray(img, np.uint8))
            patches += cut
            sources += [p.relative_to(real_root).as_posix()] * len(cut)
    arr = np.stack(patches) if patches else np.zeros((0, PATCH_SIZE, PATCH_SIZE, 3), np.uint8)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, patches=arr, sources=np.array(sources, dtype=str))
        tmp.replace(cache)
    except OSError:
        pass
    return PatchBank(arr, tuple(sources)) if len(arr) else None
