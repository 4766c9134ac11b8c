"""Synthetic cup scenes: coins in a cup or tray under a fixed top-down webcam, with exact ground truth.

One call of :func:`render_cup` draws one cup image from ``(seed, index)`` alone, so the output does not depend
on how cups are spread over worker processes. Coins are drawn bottom-to-top; a label map records which instance
owns each pixel, so every instance's mask is its *visible* part. Face renders are cached per (type, side, variant)
at a base size with an area-downsampled pyramid, and warped into place with ``cv2.warpAffine`` on a small ROI.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from calibration.camera import TRAY_CORNER, CupRoi
from models.synth.mint import CoinType, Mint, render_face
from models.synth.objects import ForeignObject, render_object, sample_object
from models.synth.real_coins import RealCoinType, real_face
from models.synth.textures import SURFACES, PatchBank, procedural_surface
from models.types import CupKind, Side, UInt8Array

BASE_FACE_PX = 256
"""Side of the cached face renders; smaller sizes come from an area-downsampled pyramid."""

VARIANTS: tuple[tuple[float, float], ...] = ((0.05, 0.0), (0.35, 0.1), (0.6, 0.3), (0.2, 0.6))
"""``(wear, toning)`` pairs a coin type is drawn with."""

BLOCK = 16
"""Consecutive cups share a small pool of types (and real crop files), so face renders are reused from the
cache; every cup is still a function of ``(seed, index)`` alone and each type is equally likely overall."""

POOL_TYPES = 6
POOL_FILES = 12

DEFAULT_KIND_WEIGHTS: dict[CupKind, float] = {
    CupKind.PURE: 0.4,
    CupKind.CONTAMINATED: 0.3,
    CupKind.OBVERSE_ONLY: 0.12,
    CupKind.FOREIGN_OBJECT: 0.12,
    CupKind.EMPTY: 0.06,
}
"""The default mix of cup kinds."""

MIN_CONTAMINATED_COINS = 3
"""The fewest coins a contaminated cup holds: at least two of the expected type beside its intruder."""


@dataclass(frozen=True)
class SceneOptions:
    """What kind of cups to draw.

    Attributes:
        image_size: output side in pixels (square images).
        kind_weights: relative frequency of each cup kind (kinds with weight 0 never occur).
        max_coins: the most coins in one cup (at least 1). A contaminated cup holds at least
            :data:`MIN_CONTAMINATED_COINS` whatever this says (``cupcheck synth`` refuses fewer for one).
        real_fraction: probability that a pure / contaminated / foreign-object cup uses real coin crops.
        reverse_share: probability that a coin of a pure or contaminated cup lies reverse up (``0.5``: tossed;
            higher: an operator who spreads the coins reverse up, as a shared obverse proves nothing).
        empty_reference: also render the same cup with nothing in it (:attr:`CupScene.empty`), as the station's
            empty-tray photo: same tray, lamp and lens, another exposure (sensor noise, JPEG, a small gain drift)
            and the tray up to :data:`EMPTY_SHIFT_PX` pixels off. The cup image does not change.
        turn: items (by :attr:`SceneInstance.label`) shown on their other side: the same cup, every coin where it
            lay, after an operator turned those coins over (synthetic coins only).
    """

    image_size: int = 640
    kind_weights: dict[CupKind, float] = field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))
    max_coins: int = 30
    real_fraction: float = 0.0
    reverse_share: float = 0.5
    empty_reference: bool = False
    turn: frozenset[int] = frozenset()


EMPTY_SHIFT_PX = 1.5
"""The most the empty-tray photo is shifted against the cup (a tray put back a little off)."""
EMPTY_GAIN_SD = 0.03
"""Per-channel gain drift of the empty-tray photo (the lamp and white balance a little different)."""


@dataclass(frozen=True)
class SceneInstance:
    """Ground truth for one visible coin or object.

    Attributes:
        label: the value of this instance in :attr:`CupScene.labels`.
        type_id: coin type id (``"t0003"``, ``"real-euro-1e"``) or ``"object-<kind>"``.
        side: ``"obverse"``/``"reverse"``; ``"unknown"`` for real crops and objects.
        design_id: the design shown (shared obverse id, reverse id; the type id for real crops and objects).
        family: the type's family (the currency for real coins, ``"object"`` for objects).
        source: ``"synthetic"``, ``"real"`` or ``"object"``.
        is_coin: false for foreign objects.
        bbox: ``(x1, y1, x2, y2)`` integer extent of the visible mask, exclusive of ``x2, y2``.
        center: the true centre ``(x, y)`` in pixels.
        diameter_mm: physical diameter.
        diameter_px: the true diameter in pixels (major axis of the tilted ellipse).
        occlusion: hidden fraction of the instance's footprint in ``[0, 1]`` (other coins, rim, image edge).
        partial: cut by the cup rim or the image edge.
        polygon: ``(k, 2)`` int32 outline of the largest visible part, pixel coordinates.
    """

    label: int
    type_id: str
    side: str
    design_id: str
    family: str
    source: str
    is_coin: bool
    bbox: tuple[int, int, int, int]
    center: tuple[float, float]
    diameter_mm: float
    diameter_px: float
    occlusion: float
    partial: bool
    polygon: np.ndarray


@dataclass(frozen=True)
class CupScene:
    """One rendered cup.

    Attributes:
        image: ``(S, S, 3)`` uint8 BGR, the decoded JPEG.
        jpeg: the encoded JPEG bytes of ``image``.
        labels: ``(S, S)`` int16; ``k >= 0`` for pixels of the instance with ``label == k``, ``-1`` elsewhere.
        instances: the visible instances, bottom to top.
        kind: the cup kind.
        expected_type: the type the cup should hold.
        contaminant: for contaminated cups what the intruders are to the expected type: ``"twin"`` (its near-twin
            alone), ``"family"`` (another member of its family, or its currency's other denominations), ``"other"``;
            else ``None``.
        px_per_mm: the camera scale at the cup floor.
        cup_diameter_mm: the interior diameter (side for trays) in mm.
        tray: the cup's interior region in pixels (a circle or a rounded-square tray), ``None`` on a flat table.
        empty: the same tray photographed with nothing in it (decoded JPEG), when
            :attr:`SceneOptions.empty_reference` asked for it.
        empty_jpeg: its encoded JPEG bytes.
        real_crops: the real coin crops drawn into the cup (their files, as :class:`RealCoinType` lists them; a
            crop drawn and then hidden under others too), in drawing order.
        real_backgrounds: the real photos the table or cup floor were cut from (:attr:`PatchBank.sources`).
    """

    image: UInt8Array
    jpeg: bytes
    labels: np.ndarray
    instances: tuple[SceneInstance, ...]
    kind: CupKind
    expected_type: str
    contaminant: str | None
    px_per_mm: float
    cup_diameter_mm: float
    tray: CupRoi | None = None
    empty: UInt8Array | None = None
    empty_jpeg: bytes | None = None
    real_crops: tuple[str, ...] = ()
    real_backgrounds: tuple[str, ...] = ()

    def mask(self, inst: SceneInstance) -> np.ndarray:
        """The instance's visible mask, ``(S, S)`` bool."""
        return np.asarray(self.labels == inst.label)

    def coin_at(self, point: tuple[float, float]) -> SceneInstance | None:
        """The coin whose visible pixels hold ``point`` (a detection's centre, ``x, y``; clipped to the image);
        ``None``: a foreign object or nothing."""
        h, w = self.labels.shape
        label = int(self.labels[int(np.clip(point[1], 0, h - 1)), int(np.clip(point[0], 0, w - 1))])
        return next((inst for inst in self.instances if inst.label == label and inst.is_coin), None)

    @property
    def holds_only_expected(self) -> bool:
        """Whether a PASS of the cup would be right: coins of the expected type and nothing else. A pure cup, or an
        obverse-only one (every coin the expected type, all on the family's shared side: it may not pass as it
        lies, but once its coins are turned over it is a clean cup)."""
        return self.kind in (CupKind.PURE, CupKind.OBVERSE_ONLY)


class _LRU:
    """A tiny least-recently-used cache bounded by entry count."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data: OrderedDict[object, list[UInt8Array]] = OrderedDict()

    def get(self, key: object) -> list[UInt8Array] | None:
        val = self.data.get(key)
        if val is not None:
            self.data.move_to_end(key)
        return val

    def put(self, key: object, val: list[UInt8Array]) -> None:
        self.data[key] = val
        if len(self.data) > self.capacity:
            self.data.popitem(last=False)


def _pyramid(face: UInt8Array) -> list[UInt8Array]:
    """``face`` plus area-downsampled halves down to 32 px; BGRA."""
    levels = [face]
    while levels[-1].shape[0] >= 64:
        s = levels[-1].shape[0] // 2
        levels.append(np.asarray(cv2.resize(levels[-1], (s, s), interpolation=cv2.INTER_AREA), np.uint8))
    return levels


def shares_an_obverse(mint: Mint) -> bool:
    """Whether two or more of the mint's types share an obverse design (a family of two or more)."""
    seen: set[str] = set()
    for t in mint.types:
        if t.obverse.id in seen:
            return True
        seen.add(t.obverse.id)
    return False


class SceneAssets:
    """Everything a worker needs to draw cups: the mint, real types, surface patches, and render caches."""

    def __init__(
        self,
        mint: Mint,
        real_types: tuple[RealCoinType, ...] = (),
        patches: PatchBank | None = None,
        cache_entries: int = 240,
    ) -> None:
        self.mint = mint
        self.real_types = real_types
        self.real_by_id = {t.id: t for t in real_types}
        self.patches = patches
        self._faces = _LRU(cache_entries)
        self.families: dict[str, list[CoinType]] = {}
        for t in mint.types:
            self.families.setdefault(t.family, []).append(t)
        self.twins: dict[str, list[CoinType]] = {}
        for t in mint.types:
            if t.twin_of:
                self.twins.setdefault(t.id, []).append(mint.by_id(t.twin_of))
                self.twins.setdefault(t.twin_of, []).append(t)
        self._noise: dict[int, np.ndarray] = {}
        self.shared_obverse = shares_an_obverse(mint)
        """Whether two or more types share an obverse design (an obverse-only cup needs one)."""

    def noise(self, s: int) -> np.ndarray:
        """A fixed tile of unit Gaussian noise, ``(s + 128, s, 3)`` float32; row slices of ``s`` rows are contiguous."""
        tile = self._noise.get(s)
        if tile is None:
            tile = np.random.default_rng(12345).standard_normal((s + 128, s, 3), dtype=np.float32)
            self._noise[s] = tile
        return tile

    def face_levels(self, coin: CoinType, side: Side, variant: int) -> list[UInt8Array]:
        """The cached pyramid of one synthetic face (BGRA, largest first) in one ``VARIANTS`` entry."""
        key = ("syn", coin.id, side.value, variant)
        levels = self._faces.get(key)
        if levels is None:
            wear, toning = VARIANTS[variant]
            face = render_face(coin, side, BASE_FACE_PX, wear=wear, toning=toning)
            levels = _pyramid(np.ascontiguousarray(face))
            self._faces.put(key, levels)
        return levels

    def real_levels(self, path: Path) -> list[UInt8Array]:
        """The cached pyramid of one real crop cut to its disc (BGRA, largest first)."""
        key = ("real", str(path))
        levels = self._faces.get(key)
        if levels is None:
            levels = _pyramid(real_face(path, BASE_FACE_PX))
            self._faces.put(key, levels)
        return levels


@dataclass
class _Item:
    """One thing to draw (internal)."""

    type_id: str
    side: str
    design_id: str
    family: str
    source: str
    is_coin: bool
    diameter_mm: float
    levels: list[UInt8Array] | None = None
    obj: ForeignObject | None = None
    file: str = ""
    x: float = 0.0
    y: float = 0.0


# ---------------------------------------------------------------------------------------------- cup contents


def drawable_kinds(weights: dict[CupKind, float], shared_obverse: bool) -> dict[CupKind, float]:
    """The kinds a mint can show, with their weights: those of positive weight, less obverse-only when no two types
    share an obverse design (every coin on a design that proves nothing needs such a design).

    Raises:
        ValueError: a weight that is not a finite number >= 0, or no kind left to draw.
    """
    bad = {k.value: v for k, v in weights.items() if not (np.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"kind weights must be finite numbers >= 0, got {bad}")
    out = {k: float(weights[k]) for k in CupKind if weights.get(k, 0.0) > 0}
    if not shared_obverse and CupKind.OBVERSE_ONLY in out:
        del out[CupKind.OBVERSE_ONLY]
        if not out:
            raise ValueError(
                "obverse_only cups need two types that share an obverse design, and no family of this mint has two "
                "types: draw more types, or other kinds too"
            )
    if not out or not np.isfinite(sum(out.values())):
        raise ValueError(f"kind weights must have a positive, finite sum, got {weights}")
    return out


def _pick_kind(rng: np.random.Generator, weights: dict[CupKind, float]) -> CupKind:
    kinds = list(weights)
    w = np.array([weights[k] for k in kinds], np.float64)
    return kinds[int(rng.choice(len(kinds), p=w / w.sum()))]


def _n_coins(rng: np.random.Generator, max_coins: int, lo: int = 1) -> int:
    if max_coins <= lo:
        return lo
    return lo + int(rng.beta(1.2, 1.8) * (max_coins - lo + 1) * 0.999)


@dataclass(frozen=True)
class _Block:
    """What a block of consecutive cups shares: a pool of expected types and per-type variants."""

    seed: int
    block: int
    pool: tuple[int, ...]

    def variant(self, type_id: str) -> int:
        h = zlib.crc32(f"{self.seed}:{self.block}:{type_id}".encode())
        return h % len(VARIANTS)

    def files(self, t: RealCoinType) -> tuple[Path, ...]:
        h = zlib.crc32(f"{self.seed}:{self.block}:{t.id}".encode())
        r = np.random.default_rng(h)
        k = min(POOL_FILES, len(t.files))
        return tuple(t.files[int(i)] for i in r.choice(len(t.files), k, replace=False))


def _block(seed: int, index: int, n_types: int) -> _Block:
    b = index // BLOCK
    r = np.random.default_rng([seed, b, 7])
    pool = r.choice(n_types, min(POOL_TYPES, n_types), replace=False)
    return _Block(seed, b, tuple(int(i) for i in pool))


def _syn_item(assets: SceneAssets, t: CoinType, side: Side, blk: _Block) -> _Item:
    variant = blk.variant(t.id)
    return _Item(
        t.id,
        side.value,
        t.design(side).id,
        t.family,
        "synthetic",
        True,
        t.diameter_mm,
        assets.face_levels(t, side, variant),
    )


def _turned(assets: SceneAssets, it: _Item, blk: _Block) -> _Item:
    """A synthetic coin lying on its other side (anything else as it is)."""
    if it.source != "synthetic" or not it.is_coin or it.side not in (Side.OBVERSE.value, Side.REVERSE.value):
        return it
    other = Side.REVERSE if it.side == Side.OBVERSE.value else Side.OBVERSE
    return _syn_item(assets, assets.mint.by_id(it.type_id), other, blk)


def _real_item(assets: SceneAssets, t: RealCoinType, rng: np.random.Generator, blk: _Block) -> _Item:
    files = blk.files(t)
    path = files[int(rng.integers(len(files)))]
    return _Item(
        t.id, "unknown", t.id, t.currency, "real", True, t.diameter_mm, assets.real_levels(path), file=str(path)
    )


def _side(rng: np.random.Generator, reverse_share: float = 0.5) -> Side:
    return Side.OBVERSE if rng.random() < 1.0 - reverse_share else Side.REVERSE


def _relation(drawn_from: str, intruders: list[CoinType], twins: list[CoinType]) -> str:
    """The contaminant relation of the intruders drawn: ``drawn_from`` (the pool they came from), except
    ``"twin"`` when the family pool gave only the expected type's near-twin. The family pool holds the twin too (so
    that what a seed draws stays as it was), while a ``"family"`` intruder means another member of the family, as
    the virtual cups and the pair labels count it."""
    twin_ids = {t.id for t in twins}
    if drawn_from == "family" and intruders and all(t.id in twin_ids for t in intruders):
        return "twin"
    return drawn_from


def _contents(
    assets: SceneAssets, rng: np.random.Generator, kind: CupKind, opts: SceneOptions, blk: _Block
) -> tuple[list[_Item], str, str | None]:
    """Sample the cup's items (in stacking order), expected type and contaminant relation."""
    mint = assets.mint
    pool_types = [mint.types[i] for i in blk.pool]
    use_real = (
        kind in (CupKind.PURE, CupKind.CONTAMINATED, CupKind.FOREIGN_OBJECT)
        and len(assets.real_types) >= 2
        and rng.random() < opts.real_fraction
    )
    items: list[_Item] = []
    contaminant: str | None = None
    if use_real:
        rt = assets.real_types[int(rng.integers(len(assets.real_types)))]
        expected = rt.id
        lo = MIN_CONTAMINATED_COINS if kind == CupKind.CONTAMINATED else 1
        n = _n_coins(rng, max(opts.max_coins, lo), lo)
        n_bad = (2 if n >= 4 and rng.random() < 0.35 else 1) if kind == CupKind.CONTAMINATED else 0
        items = [_real_item(assets, rt, rng, blk) for _ in range(n - n_bad)]
        if n_bad:
            same = [t for t in assets.real_types if t.currency == rt.currency and t.id != rt.id]
            real_pool = same if same else [t for t in assets.real_types if t.id != rt.id]
            contaminant = "family" if same else "other"
            for _ in range(n_bad):
                bad = real_pool[int(rng.integers(len(real_pool)))]
                pos = int(rng.integers(len(items) // 2, len(items) + 1))
                items.insert(pos, _real_item(assets, bad, rng, blk))
    elif kind == CupKind.EMPTY:
        expected = pool_types[int(rng.integers(len(pool_types)))].id
    elif kind == CupKind.OBVERSE_ONLY:
        # Only types whose obverse another type shares (render_cup never asks for this kind in a mint without one).
        fams = sorted({t.family for t in pool_types if len(assets.families[t.family]) >= 2})
        if not fams:
            fams = sorted(f for f, ts in assets.families.items() if len(ts) >= 2)
        fam = fams[int(rng.integers(len(fams)))]
        t = assets.families[fam][int(rng.integers(len(assets.families[fam])))]
        expected = t.id
        items = [_syn_item(assets, t, Side.OBVERSE, blk) for _ in range(_n_coins(rng, opts.max_coins))]
    else:
        t = pool_types[int(rng.integers(len(pool_types)))]
        expected = t.id
        lo = MIN_CONTAMINATED_COINS if kind == CupKind.CONTAMINATED else 1
        n = _n_coins(rng, max(opts.max_coins, lo), lo)
        if kind == CupKind.CONTAMINATED:
            n_bad = 2 if n >= 4 and rng.random() < 0.35 else 1
            n_good = n - n_bad
        else:
            n_bad, n_good = 0, n
        items = [_syn_item(assets, t, _side(rng, opts.reverse_share), blk) for _ in range(n_good)]
        if n_bad:
            twins = assets.twins.get(t.id, [])
            family = [o for o in assets.families[t.family] if o.id != t.id]
            r = rng.random()
            if twins and r < 0.45:
                contaminant, pool = "twin", twins
            elif family and r < 0.8:
                contaminant, pool = "family", family
            else:
                contaminant = "other"
                # Prefer the block's other types (their faces are cached), else any other family.
                pool = [o for o in pool_types if o.family != t.family] or [
                    o for o in mint.types if o.family != t.family
                ]
                pool = pool or [o for o in mint.types if o.id != t.id]
            drawn: list[CoinType] = []
            for _ in range(n_bad):
                bad_t = pool[int(rng.integers(len(pool)))]
                drawn.append(bad_t)
                # Contaminants sit in the upper half of the pile so they stay mostly visible.
                pos = int(rng.integers(len(items) // 2, len(items) + 1))
                items.insert(pos, _syn_item(assets, bad_t, _side(rng, opts.reverse_share), blk))
            contaminant = _relation(contaminant, drawn, twins)
    if kind == CupKind.FOREIGN_OBJECT:
        for _ in range(1 if rng.random() < 0.75 else 2):
            obj = sample_object(rng)
            pos = int(rng.integers(len(items) // 2, len(items) + 1))
            items.insert(
                pos, _Item(obj.type_id, "unknown", obj.type_id, "object", "object", False, obj.diameter_mm, obj=obj)
            )
    return items, expected, contaminant


# ---------------------------------------------------------------------------------------------- drawing


def _surface(rng: np.random.Generator, assets: SceneAssets, s: int, real_p: float, used: list[str]) -> UInt8Array:
    """A table or cup floor: a real patch with chance ``real_p`` when the assets hold any (its photo appended to
    ``used``), else a procedural surface."""
    if assets.patches is not None and rng.random() < real_p:
        patch, source = assets.patches.sample_with_source(rng, s, s)
        used.append(source)
        return patch
    return procedural_surface(SURFACES[int(rng.integers(len(SURFACES)))], rng, s, s)


def _shape_mask(s: int, shape: str, cx: float, cy: float, half: float) -> np.ndarray:
    """Anti-aliased ``(s, s)`` float32 coverage of a disc or rounded square of half-size ``half``."""
    m = np.zeros((s, s), np.uint8)
    sh = 16
    if shape == "round":
        cv2.circle(m, (int(cx * sh), int(cy * sh)), int(half * sh), 255, -1, cv2.LINE_AA, 4)
    else:
        rad = half * TRAY_CORNER
        x1, y1, x2, y2 = cx - half, cy - half, cx + half, cy + half
        cv2.rectangle(
            m, (int((x1 + rad) * sh), int(y1 * sh)), (int((x2 - rad) * sh), int(y2 * sh)), 255, -1, cv2.LINE_AA, 4
        )
        cv2.rectangle(
            m, (int(x1 * sh), int((y1 + rad) * sh)), (int(x2 * sh), int((y2 - rad) * sh)), 255, -1, cv2.LINE_AA, 4
        )
        for px, py in ((x1 + rad, y1 + rad), (x2 - rad, y1 + rad), (x1 + rad, y2 - rad), (x2 - rad, y2 - rad)):
            cv2.circle(m, (int(px * sh), int(py * sh)), int(rad * sh), 255, -1, cv2.LINE_AA, 4)
    return m.astype(np.float32) / 255.0


def _place(
    rng: np.random.Generator, items: list[_Item], ppm: float, cx: float, cy: float, half: float, shape: str
) -> None:
    """Choose each item's centre: a loose pile around the cup centre with bounded overlap."""
    if not items:
        return
    # Three ways coins lie in a cup: scattered, packed edge to edge, or piled on each other.
    mode = int(rng.choice(3, p=[0.35, 0.3, 0.35]))
    spread = rng.uniform(*((0.45, 0.8), (0.25, 0.45), (0.15, 0.4))[mode]) * half
    max_overlap = rng.uniform(*((0.0, 0.08), (0.0, 0.04), (0.2, 0.7))[mode])
    pcx = cx + rng.uniform(-0.2, 0.2) * half
    pcy = cy + rng.uniform(-0.2, 0.2) * half
    placed: list[tuple[float, float, float]] = []
    for it in items:
        r = it.diameter_mm * ppm / 2
        best: tuple[float, float] | None = None
        best_ov = 1e9
        for _ in range(20):
            x = pcx + rng.normal(0, spread)
            y = pcy + rng.normal(0, spread)
            # Allow a coin to slide up to ~35 % of its radius under the rim.
            lim = half - r * rng.uniform(0.65, 1.05)
            if shape == "round":
                d = np.hypot(x - cx, y - cy)
                if d > lim:
                    x, y = cx + (x - cx) * lim / d, cy + (y - cy) * lim / d
            else:
                x, y = float(np.clip(x, cx - lim, cx + lim)), float(np.clip(y, cy - lim, cy + lim))
            ov = 0.0
            for px, py, pr in placed:
                depth = (r + pr - np.hypot(x - px, y - py)) / (2 * min(r, pr))
                ov = max(ov, depth)
            if ov <= max_overlap:
                best = (x, y)
                break
            if ov < best_ov:
                best_ov, best = ov, (x, y)
        assert best is not None
        it.x, it.y = best
        placed.append((best[0], best[1], r))


def _level_for(levels: list[UInt8Array], d_px: float) -> UInt8Array:
    """The smallest pyramid level at least ``d_px`` wide (or the largest)."""
    chosen = levels[0]
    for lv in levels:
        if lv.shape[0] >= d_px * 0.95:
            chosen = lv
    return chosen


_MAP_N = 48
_MAP_UV = np.stack(
    np.meshgrid(np.linspace(-1, 1, _MAP_N, dtype=np.float32), np.linspace(-1, 1, _MAP_N, dtype=np.float32))
)
_SHADOW_T = 160
_SHADOW_D = 96
_SHADOW_SOFTNESS: tuple[float, ...] = (0.03, 0.05, 0.075, 0.1)


@lru_cache(maxsize=len(_SHADOW_SOFTNESS))
def _shadow_template(soft_idx: int) -> np.ndarray:
    """A blurred disc of diameter ``_SHADOW_D`` centred in a ``(_SHADOW_T, _SHADOW_T)`` float32 canvas."""
    t = np.zeros((_SHADOW_T, _SHADOW_T), np.uint8)
    c = (_SHADOW_T - 1) / 2
    cv2.circle(t, (int(c * 16), int(c * 16)), int(_SHADOW_D / 2 * 16), 255, -1, cv2.LINE_AA, 4)
    tf = t.astype(np.float32) / 255.0
    return cv2.GaussianBlur(tf, (0, 0), _SHADOW_SOFTNESS[soft_idx] * _SHADOW_D)


def _shading_map(
    lu: float, lv: float, grad: float, bevel: float, glare: tuple[float, float, float, float] | None
) -> np.ndarray:
    """Multiplicative and additive shading in face coordinates, ``(_MAP_N, _MAP_N, 2)`` float32."""
    u, v = _MAP_UV[0], _MAP_UV[1]
    rho2 = u * u + v * v
    mult = 1.0 + grad * (u * lu + v * lv) - bevel * np.clip((rho2 - 0.86) / 0.14, 0, 1)
    add = np.zeros_like(u)
    if glare is not None:
        gx, gy, sig, amp = glare
        add = amp * np.exp(-((u - gx) ** 2 + (v - gy) ** 2) / (2 * sig * sig))
    return np.dstack([mult, add]).astype(np.float32)


def _draw_items(
    img: np.ndarray,
    labels: np.ndarray,
    items: list[_Item],
    ppm: float,
    rng: np.random.Generator,
    light: tuple[float, float],
) -> list[dict[str, float]]:
    """Composite items onto ``img`` (float32 ``(S, S, 3)``) bottom to top; return per-item geometry."""
    s = img.shape[0]
    lx, ly = light
    geo: list[dict[str, float]] = []
    shadow_strength = rng.uniform(0.2, 0.55)
    shadow_len = rng.uniform(0.02, 0.08)
    soft_idx = int(rng.integers(len(_SHADOW_SOFTNESS)))
    shadow_soft = _SHADOW_SOFTNESS[soft_idx]
    template = _shadow_template(soft_idx)
    glare_p = rng.uniform(0.1, 0.9)
    glare_amp = rng.uniform(10, 90)
    for k, it in enumerate(items):
        d = it.diameter_mm * ppm * rng.uniform(0.985, 1.015)
        if it.obj is not None:
            face = render_object(it.obj, max(16, int(np.ceil(d))))
        else:
            assert it.levels is not None
            face = _level_for(it.levels, d)
        fs = face.shape[0]
        theta = rng.uniform(0, 2 * np.pi)
        tilt = min(np.arccos(1 - abs(rng.normal(0, 0.03))), 0.35)  # mostly flat, up to ~20 degrees
        kf = float(np.cos(tilt))
        phi = rng.uniform(0, np.pi)
        sc = d / fs
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) * sc
        rp = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
        a = rp @ np.diag([1.0, kf]) @ rp.T @ rot
        # Half extents of the ellipse's bounding box.
        hx = d / 2 * np.hypot(a[0, 0], a[0, 1]) / sc
        hy = d / 2 * np.hypot(a[1, 0], a[1, 1]) / sc
        off = shadow_len * d
        marg = off + 3 * shadow_soft * d + 2
        x0 = max(0, int(np.floor(it.x - hx - marg)))
        y0 = max(0, int(np.floor(it.y - hy - marg)))
        x1 = min(s, int(np.ceil(it.x + hx + marg)) + 1)
        y1 = min(s, int(np.ceil(it.y + hy + marg)) + 1)
        g = {"x": it.x, "y": it.y, "d": d, "area": np.pi / 4 * d * d * kf, "hx": hx, "hy": hy}
        g.update({"x0": x0, "y0": y0, "x1": x1, "y1": y1, "kf": kf, "phi": phi})
        geo.append(g)
        is_real = it.source == "real"
        ainv = np.linalg.inv(a)
        lu, lv = float(ainv[0, 0] * lx + ainv[0, 1] * ly), float(ainv[1, 0] * lx + ainv[1, 1] * ly)
        nrm = max(1e-9, float(np.hypot(lu, lv)))
        lu, lv = lu / nrm, lv / nrm
        grad = rng.uniform(0.04, 0.14) * (0.5 if is_real else 1.0)
        bevel = 0.18 * (0.4 if is_real else 1.0)
        glare = None
        if it.is_coin and rng.random() < glare_p:
            f = rng.uniform(0.1, 0.6)
            amp = glare_amp * rng.uniform(0.5, 1.2) * (0.5 if is_real else 1.0)
            glare = (lu * f, lv * f, rng.uniform(0.15, 0.45), amp)
        if x1 <= x0 or y1 <= y0:
            continue
        # Soft shadow over the outer box: a pre-blurred disc under the coin, shifted away from the light.
        ft = fs / _SHADOW_D
        ct = (_SHADOW_T - 1) / 2.0
        ts = np.array([it.x - x0 - lx * off, it.y - y0 - ly * off]) - a * ft @ np.array([ct, ct])
        ms = np.hstack([a * ft, ts[:, None]]).astype(np.float32)
        sh = cv2.warpAffine(template, ms, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        roi = img[y0:y1, x0:x1]
        roi *= (1.0 - shadow_strength * sh)[:, :, None]
        # The coin itself over its own (smaller) box.
        ix0, iy0 = max(0, int(np.floor(it.x - hx - 1))), max(0, int(np.floor(it.y - hy - 1)))
        ix1, iy1 = min(s, int(np.ceil(it.x + hx + 1)) + 1), min(s, int(np.ceil(it.y + hy + 1)) + 1)
        if ix1 <= ix0 or iy1 <= iy0:
            continue
        w, h = ix1 - ix0, iy1 - iy0
        c = (fs - 1) / 2.0
        t = np.array([it.x - ix0, it.y - iy0]) - a @ np.array([c, c])
        m = np.hstack([a, t[:, None]]).astype(np.float32)
        warped = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        # Shading maps live in face coordinates at low resolution: map pixel j is face pixel j * c / cm.
        fm = c / ((_MAP_N - 1) / 2.0)
        mm = np.hstack([a * fm, t[:, None]]).astype(np.float32)
        smap = _shading_map(lu, lv, grad, bevel, glare)
        shade = cv2.warpAffine(smap, mm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        roi = img[iy0:iy1, ix0:ix1]
        alpha = warped[:, :, 3].astype(np.float32) * (1.0 / 255.0)
        coin = warped[:, :, :3].astype(np.float32) * shade[:, :, :1] + shade[:, :, 1:]
        roi += (coin - roi) * alpha[:, :, None]
        labels[iy0:iy1, ix0:ix1][alpha > 0.5] = k
    return geo


def _field(
    rng: np.random.Generator, n: int, light: tuple[float, float], inner: np.ndarray | None, wall: np.ndarray
) -> np.ndarray:
    """Illumination at ``(n, n)``: light gradient, vignetting, blotches, and the wall's shadow inside the cup."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    u = (xx - (n - 1) / 2) / (n / 2)
    v = (yy - (n - 1) / 2) / (n / 2)
    grad = 1.0 + rng.uniform(0.0, 0.25) * (u * light[0] + v * light[1])
    vig = 1.0 - rng.uniform(0.0, 0.3) * (u * u + v * v) / 2
    blot = 1.0 + rng.uniform(0.0, 0.08) * cv2.resize(rng.uniform(-1, 1, (4, 4)).astype(np.float32), (n, n))
    field = grad * vig * blot * rng.uniform(0.8, 1.15)
    if inner is not None:
        field = field * (1.0 - rng.uniform(0.2, 0.5) * wall * inner)
    return field.astype(np.float32)


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return k / max(k.sum(), 1e-6)


_RIM_COLORS: tuple[tuple[int, int, int], ...] = (
    (45, 45, 45),
    (215, 215, 215),
    (150, 110, 60),
    (60, 60, 150),
    (80, 130, 80),
    (190, 195, 200),
    (120, 120, 120),
    (30, 30, 30),
)


def rules_allow(
    scene: CupScene, shared: frozenset[str], min_coins: int, lookalikes: frozenset[str] = frozenset()
) -> bool:
    """Whether the hard rules can let a clean cup pass, from its ground truth: at least ``min_coins`` coins in
    view, none of them showing a ``shared`` design, and an expected type with no declared lookalike."""
    coins = [inst for inst in scene.instances if inst.is_coin]
    if scene.expected_type in lookalikes:
        return False
    return len(coins) >= min_coins and not any(inst.design_id in shared for inst in coins)


def render_cup(assets: SceneAssets, seed: int, index: int, opts: SceneOptions) -> CupScene:
    """Draw cup ``index`` of the data set seeded by ``seed``.

    Args:
        assets: the mint, real types, surface patches and caches.
        seed: the data set seed.
        index: the cup's index; with ``seed`` it fully determines the output.
        opts: scene options.

    Returns:
        The rendered cup with its ground truth.
    """
    rng = np.random.default_rng([seed, index])
    s = opts.image_size
    q = max(8, s // 4)
    kind = _pick_kind(rng, drawable_kinds(opts.kind_weights, assets.shared_obverse))
    blk = _block(seed, index, len(assets.mint.types))
    items, expected, contaminant = _contents(assets, rng, kind, opts, blk)
    if opts.turn:  # after the draw, so that every random choice of the cup stays the same
        items = [_turned(assets, it, blk) if k in opts.turn else it for k, it in enumerate(items)]

    # Geometry: choose the cup so the pile has a plausible density, then the camera scale.
    d_mean = float(np.mean([it.diameter_mm for it in items])) if items else 22.0
    density = rng.uniform(0.2, 0.85)
    cup_mm = float(np.clip(np.sqrt(max(len(items), 1) * d_mean**2 / density), 70.0, 140.0))
    style = str(rng.choice(["round", "tray", "flat"], p=[0.6, 0.25, 0.15]))
    frac = rng.uniform(0.72, 1.02) if style != "flat" else rng.uniform(0.9, 1.15)
    half = frac * s / 2
    ppm = 2 * half / cup_mm
    cx = s / 2 + rng.uniform(-0.05, 0.05) * s
    cy = s / 2 + rng.uniform(-0.05, 0.05) * s
    shape = "round" if style == "round" else "square"
    _place(rng, items, ppm, cx, cy, half, shape)

    # Background: table, cup floor.
    backgrounds: list[str] = []
    table = _surface(rng, assets, s, 0.5, backgrounds)
    angle = rng.uniform(0, 2 * np.pi)
    light = (float(np.cos(angle)), float(np.sin(angle)))
    labels = np.full((s, s), -1, np.int16)
    rim_px = rng.uniform(2.5, 7.0) * ppm
    inner_q: np.ndarray | None = None
    wall_q = np.zeros((q, q), np.float32)
    img: np.ndarray
    if style == "flat":
        img = table.astype(np.float32)
        rim = np.zeros((s, s), np.float32)
    else:
        floor = _surface(rng, assets, s, 0.35, backgrounds)
        outer = _shape_mask(s, shape, cx, cy, half + rim_px)
        inner = _shape_mask(s, shape, cx, cy, half)
        rim = np.asarray(cv2.subtract(outer, inner), np.float32)
        # A hard floor/table split is enough: the anti-aliased rim is drawn over the boundary.
        cv2.copyTo(floor, (outer > 0.5).view(np.uint8), table)
        img = table.astype(np.float32)
        f = q / s
        inner_q = _shape_mask(q, shape, cx * f, cy * f, half * f)
        shift = np.array([[1, 0, -light[0] * rim_px * f * 0.8], [0, 1, -light[1] * rim_px * f * 0.8]], np.float32)
        wall_q = np.asarray(cv2.warpAffine(1.0 - inner_q, shift, (q, q), borderMode=cv2.BORDER_REPLICATE), np.float32)
        wall_q = np.asarray(cv2.GaussianBlur(wall_q, (0, 0), max(0.8, rim_px * f / 2)), np.float32)
    bg = img.copy() if opts.empty_reference else None
    geo = _draw_items(img, labels, items, ppm, rng, light)
    layers = [img] if bg is None else [img, bg]
    if style != "flat":
        # The rim on top: its colour lit from one side, a darker inner wall band.
        base = np.array(_RIM_COLORS[int(rng.integers(len(_RIM_COLORS)))], np.float32) + rng.normal(0, 8, 3)
        f = q / s
        yy, xx = np.mgrid[0:q, 0:q].astype(np.float32)
        radial = ((xx - cx * f) * light[0] + (yy - cy * f) * light[1]) / max(half * f, 1.0)
        band = _shape_mask(q, shape, cx * f, cy * f, (half + rim_px * 0.35) * f)
        rim_q = ((1.0 + 0.2 * radial) * (1.0 - 0.25 * band)).astype(np.float32)
        rim_shade = cv2.resize(rim_q, (s, s), interpolation=cv2.INTER_LINEAR)
        idx = np.flatnonzero(rim > 0.0)
        ra = rim.reshape(-1)[idx, None]
        rc = rim_shade.reshape(-1)[idx, None] * base[None, :]
        for layer in layers:
            flat = layer.reshape(-1, 3)
            flat[idx] += (rc - flat[idx]) * ra
        labels[rim > 0.5] = -1

    # Camera: uneven light and white balance, blur, noise, JPEG.
    field_q = _field(rng, q, light, inner_q, wall_q)
    wb = rng.normal(1.0, 0.05, 3).astype(np.float32)
    field = cv2.resize(field_q[:, :, None] * wb[None, None, :], (s, s), interpolation=cv2.INTER_LINEAR)
    lens = _Lens(
        blur=rng.uniform(0.4, 1.6) if rng.random() < 0.4 else 0.0,
        motion=_motion_kernel(int(rng.integers(3, 10)), rng.uniform(0, np.pi)) if rng.random() < 0.15 else None,
        sigma=rng.uniform(1.0, 6.0),
    )
    tile = assets.noise(s)
    oy = int(rng.integers(0, tile.shape[0] - s + 1))
    image, jpeg = _expose(img, field, lens, tile, oy, int(rng.integers(60, 96)))
    empty: UInt8Array | None = None
    empty_jpeg: bytes | None = None
    if bg is not None:
        # Another exposure of the same tray: its own noise and JPEG, a small gain drift, the tray a little off.
        erng = np.random.default_rng([seed, index, 0x454D5054])
        dx, dy = erng.uniform(-EMPTY_SHIFT_PX, EMPTY_SHIFT_PX, 2)
        moved = cv2.warpAffine(
            bg, np.array([[1, 0, dx], [0, 1, dy]], np.float32), (s, s), borderMode=cv2.BORDER_REPLICATE
        )
        gain = erng.normal(1.0, EMPTY_GAIN_SD, 3).astype(np.float32)
        oy = int(erng.integers(0, tile.shape[0] - s + 1))
        empty, empty_jpeg = _expose(moved, field * gain[None, None, :], lens, tile, oy, int(erng.integers(60, 96)))

    instances = _instances(items, geo, labels, rim, s)
    return CupScene(
        image,
        jpeg,
        labels,
        tuple(instances),
        kind,
        expected,
        contaminant,
        float(ppm),
        cup_mm,
        None if style == "flat" else CupRoi(float(cx), float(cy), float(half), shape, TRAY_CORNER),
        empty,
        empty_jpeg,
        tuple(it.file for it in items if it.file),
        tuple(backgrounds),
    )


@dataclass(frozen=True)
class _Lens:
    """One exposure's optics: defocus blur (``0``: sharp), a motion kernel or ``None``, sensor noise sigma."""

    blur: float
    motion: np.ndarray | None
    sigma: float


def _expose(
    img: np.ndarray, field: np.ndarray, lens: _Lens, tile: np.ndarray, oy: int, quality: int
) -> tuple[UInt8Array, bytes]:
    """Light, blur, noise and JPEG-encode a float scene; returns the decoded image and its JPEG bytes."""
    s = img.shape[0]
    out = cv2.multiply(img, field)
    if lens.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), lens.blur)
    if lens.motion is not None:
        out = cv2.filter2D(out, -1, lens.motion)
    out = cv2.scaleAdd(tile[oy : oy + s], lens.sigma, out)
    # Saturating conversion; the rare negative values (noise on black) are folded back by the absolute value.
    ok, enc = cv2.imencode(".jpg", cv2.convertScaleAbs(out), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(enc, cv2.IMREAD_COLOR), np.uint8), enc.tobytes()


def _instances(
    items: list[_Item], geo: list[dict[str, float]], labels: np.ndarray, rim: np.ndarray, s: int
) -> list[SceneInstance]:
    out: list[SceneInstance] = []
    has_rim = bool(rim.any())
    for k, (it, g) in enumerate(zip(items, geo, strict=True)):
        x0, y0, x1, y1 = int(g["x0"]), int(g["y0"]), int(g["x1"]), int(g["y1"])
        if x1 <= x0 or y1 <= y0:
            continue
        sub = (labels[y0:y1, x0:x1] == k).view(np.uint8)
        vis = int(cv2.countNonZero(sub))
        if vis < max(12.0, 0.02 * g["area"]):
            # Hidden (or nearly): not a visible instance; its pixels go back to the background.
            labels[y0:y1, x0:x1][sub > 0] = -1
            continue
        contours, _ = cv2.findContours(sub, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        big = max(contours, key=cv2.contourArea)
        poly = cv2.approxPolyDP(big, 0.6, True).reshape(-1, 2) + np.array([x0, y0])
        if len(poly) < 3:  # a sliver with no area to outline: treat as hidden
            labels[y0:y1, x0:x1][sub > 0] = -1
            continue
        bx, by, bw, bh = cv2.boundingRect(sub)
        bbox = (x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh)
        off_image = (
            g["x"] - g["hx"] < -0.5
            or g["y"] - g["hy"] < -0.5
            or g["x"] + g["hx"] > s + 0.5
            or g["y"] + g["hy"] > s + 0.5
        )
        rim_cut = False
        if has_rim:
            foot = np.zeros((y1 - y0, x1 - x0), np.uint8)
            axes = (max(1, int(g["d"] / 2 * 0.97)), max(1, int(g["d"] / 2 * 0.97 * g["kf"])))
            center = (round(g["x"] - x0), round(g["y"] - y0))
            cv2.ellipse(foot, center, axes, float(np.degrees(g["phi"])), 0, 360, 1, -1)
            under = cv2.countNonZero(foot & (rim[y0:y1, x0:x1] > 0.5).view(np.uint8))
            rim_cut = under > 0.01 * g["area"]
        occl = float(np.clip(1.0 - vis / g["area"], 0.0, 1.0))
        out.append(
            SceneInstance(
                label=k,
                type_id=it.type_id,
                side=it.side,
                design_id=it.design_id,
                family=it.family,
                source=it.source,
                is_coin=it.is_coin,
                bbox=bbox,
                center=(float(g["x"]), float(g["y"])),
                diameter_mm=float(it.diameter_mm),
                diameter_px=float(g["d"]),
                occlusion=round(occl, 4),
                partial=bool(off_image or rim_cut),
                polygon=poly.astype(np.int32),
            )
        )
    return out
