"""A procedural mint: coin types with two designed sides, in families that share one obverse.

A :class:`Mint` is a catalogue of :class:`CoinType` s grouped in families (like a series of commemorative
quarters): all members of a family share one obverse :class:`Design`, one diameter and one metal, and differ on
the reverse. Some members are near-twins: their reverse is a copy of another member's reverse except for one
small detail (a digit of the date, a small emblem, or a mint-mark letter).

:func:`render_face` draws a face top-down as a lit relief: every design becomes a height map
(:func:`models.synth.motifs.draw_design`, cached per design at a base resolution), which is resized, optionally
worn (softened, flattened, scratched), turned into normals, lit from one direction and coloured by the metal
(optionally toned).
"""

from __future__ import annotations

import functools
import json
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from models.synth.motifs import draw_design
from models.synth.relief import BASE_PX
from models.types import FloatArray, Side, UInt8Array

MIN_SIZE_PX = 16
"""Smallest face :func:`render_face` draws."""

METALS: dict[str, tuple[int, int, int]] = {
    "silver": (206, 204, 200),
    "nickel": (184, 186, 182),
    "copper": (72, 112, 184),
    "brass": (86, 170, 208),
    "bronze": (78, 122, 160),
}
"""Base BGR colour of each plain metal; ``"bimetallic"`` types use two of these (ring and centre)."""

TONE_BGR: dict[str, tuple[int, int, int]] = {
    "silver": (70, 120, 150),
    "nickel": (90, 100, 105),
    "copper": (28, 40, 70),
    "brass": (40, 80, 95),
    "bronze": (60, 80, 70),
}
"""Patina colour each metal drifts to when toned."""

MOTIFS = ("bust", "eagle", "shield", "star", "tree", "building", "rosette", "ship", "wreath", "sun", "flower")
TWIN_DETAILS = ("digit", "emblem", "mintmark")
EMBLEMS = ("star", "dot", "leaf", "cross", "ring")
MINT_MARKS = "PDSMAOCKHW"
STANDARD_DIAMETERS_MM = (15.5, 16.3, 17.9, 18.5, 19.1, 20.0, 21.2, 22.5, 23.3, 24.3, 25.0, 25.8, 26.5, 27.0, 28.4)
_LARGE_DIAMETERS_MM = (30.6, 32.5)
_SYLLABLE_TEXT = (
    "VA LO RI AN TE SA MO NA DOR KEL BRI STA VEN TAL MAR OS LU CIA NOR GAR DEN ELL ION PRA HAM RO "
    "SEL TRA BO VIA QUA ZEN TOR MI LA BER"
)
_SYLLABLES = tuple(_SYLLABLE_TEXT.split())
_STATE_WORDS = ("REPUBLIC OF", "KINGDOM OF", "UNITED STATES OF", "COMMONWEALTH OF", "FEDERATION OF", "")
_DENOMINATIONS = ("1 CENT", "5 CENTS", "10 CENTS", "25 CENTS", "50 CENTS", "ONE DOLLAR", "2 MARKS", "20 PENCE")


@dataclass(frozen=True)
class Design:
    """One side's artwork. Two types in a family share the same obverse ``Design`` (same ``id``).

    Near-twin reverses share ``seed``, ``motif`` and ``legend`` and differ in one digit of ``numeral`` or in
    ``detail`` only, so the drawing is identical apart from that mark.

    Attributes:
        id: unique design id; shared obverses share it (e.g. ``"f012-obv"``), reverses are per type.
        seed: drives the procedural drawing (layout, emblem shapes, fonts, positions).
        motif: the central emblem's kind, one of :data:`MOTIFS`.
        legend: the text around the rim; ``"TOP|BOTTOM"`` puts the second part along the lower rim.
        numeral: the date printed in the field (``""`` for none).
        detail: a small mark: ``"mm:D"`` (mint-mark letter), ``"em:star"`` (an emblem of :data:`EMBLEMS`)
            or ``""``.
    """

    id: str
    seed: int
    motif: str
    legend: str
    numeral: str
    detail: str


@dataclass(frozen=True)
class CoinType:
    """One coin type of the catalogue.

    Attributes:
        id: unique type id (``"t0042"``).
        name: readable name.
        family: family id; members share ``obverse``, ``diameter_mm``, ``thickness_mm``, ``metal`` and ``edge``.
        diameter_mm: coin diameter in millimetres (15-33).
        thickness_mm: coin thickness in millimetres.
        metal: ``"silver"``, ``"nickel"``, ``"copper"``, ``"brass"``, ``"bronze"`` or ``"bimetallic"``.
        metal_bgr: colour of the metal (of the centre for bimetallic coins).
        edge: ``"reeded"`` or ``"plain"``.
        obverse: the obverse design.
        reverse: the reverse design.
        twin_of: the near-twin's type id (both members of a pair name each other), else ``None``.
        twin_detail: what the pair differs in: ``"digit"``, ``"emblem"`` or ``"mintmark"``.
        ring_bgr: colour of the outer ring of a bimetallic coin, else ``None``.
        ring_metal: metal of the outer ring of a bimetallic coin, else ``None``; ``metal_bgr`` is the centre's.
        centre_metal: metal of the centre of a bimetallic coin, else ``None``.
    """

    id: str
    name: str
    family: str
    diameter_mm: float
    thickness_mm: float
    metal: str
    metal_bgr: tuple[int, int, int]
    edge: str
    obverse: Design
    reverse: Design
    twin_of: str | None = None
    twin_detail: str | None = None
    ring_bgr: tuple[int, int, int] | None = None
    ring_metal: str | None = None
    centre_metal: str | None = None

    def design(self, side: Side) -> Design:
        """The design shown on ``side``."""
        return self.obverse if side == Side.OBVERSE else self.reverse


@dataclass(frozen=True)
class Mint:
    """A generated catalogue of coin types."""

    seed: int
    types: tuple[CoinType, ...]

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {t.id: i for i, t in enumerate(self.types)}

    def by_id(self, type_id: str) -> CoinType:
        """Look a type up by id (``KeyError`` when absent)."""
        return self.types[self._index[type_id]]

    def families(self) -> dict[str, tuple[str, ...]]:
        """Family id -> the ids of its member types, in catalogue order."""
        out: dict[str, list[str]] = {}
        for t in self.types:
            out.setdefault(t.family, []).append(t.id)
        return {k: tuple(v) for k, v in out.items()}

    def shared_designs(self) -> frozenset[str]:
        """The designs more than one type shows (each family's obverse), by :attr:`Design.id`."""
        uses = Counter(t.design(side).id for t in self.types for side in (Side.OBVERSE, Side.REVERSE))
        return frozenset(d for d, n in uses.items() if n > 1)

    def twin_pairs(self) -> tuple[tuple[str, str], ...]:
        """The near-twin pairs as ``(first_id, second_id)`` in catalogue order, each pair once."""
        return tuple((t.id, t.twin_of) for t in self.types if t.twin_of is not None and t.id < t.twin_of)

    def to_json(self) -> str:
        """The catalogue as JSON text (the ``mint.json`` format read back by :meth:`from_json`)."""
        payload = {"seed": self.seed, "types": [asdict(t) for t in self.types]}
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Mint:
        """Read a catalogue written by :meth:`to_json`."""
        payload = json.loads(text)

        def coin(d: dict[str, Any]) -> CoinType:
            d = dict(d)
            d["obverse"] = Design(**d["obverse"])
            d["reverse"] = Design(**d["reverse"])
            d["metal_bgr"] = tuple(d["metal_bgr"])
            if d.get("ring_bgr") is not None:
                d["ring_bgr"] = tuple(d["ring_bgr"])
            return CoinType(**d)

        return cls(int(payload["seed"]), tuple(coin(d) for d in payload["types"]))


# ----------------------------------------------------------------------------------------------- catalogue


def _word(rng: np.random.Generator, lo: int = 2, hi: int = 3) -> str:
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(lo, hi + 1))))


def _family_sizes(n_types: int, rng: np.random.Generator) -> list[int]:
    sizes: list[int] = []
    left = n_types
    while left > 0:
        u = rng.random()
        if u < 0.55:
            s = int(rng.integers(1, 4))
        elif u < 0.8:
            s = int(rng.integers(4, 10))
        else:
            s = int(rng.integers(10, 51))
        s = min(s, left)
        sizes.append(s)
        left -= s
    return sizes


def _detail_for(rng: np.random.Generator) -> str:
    u = rng.random()
    if u < 0.4:
        return "mm:" + str(rng.choice(list(MINT_MARKS)))
    if u < 0.75:
        return "em:" + str(rng.choice(EMBLEMS))
    return ""


TWIN_SHARE = 0.18
"""Target share of the types that belong to a near-twin pair."""


def _twin_compatible(base: Design, kind: str) -> bool:
    """Whether ``base`` can get a twin differing in ``kind`` alone (a reverse carries at most one mark)."""
    if kind == "mintmark":
        return not base.detail.startswith("em:")
    if kind == "emblem":
        return not base.detail.startswith("mm:")
    return True


def _twin_reverse(base: Design, new_id: str, kind: str, rng: np.random.Generator) -> Design:
    """A copy of ``base`` with one digit of the date, the mint mark, or the emblem changed."""
    if kind == "digit":
        pos = int(rng.integers(len(base.numeral) - 2, len(base.numeral)))
        new = (int(base.numeral[pos]) + int(rng.integers(1, 10))) % 10
        return replace(base, id=new_id, numeral=base.numeral[:pos] + str(new) + base.numeral[pos + 1 :])
    if kind == "mintmark":
        marks = [m for m in MINT_MARKS if base.detail != f"mm:{m}"]
        return replace(base, id=new_id, detail="mm:" + str(rng.choice(marks)))
    emblems = [e for e in EMBLEMS if base.detail != f"em:{e}"]
    return replace(base, id=new_id, detail="em:" + str(rng.choice(emblems)))


def _twins_per_family(sizes: list[int], n_types: int, rng: np.random.Generator) -> list[int]:
    """How many near-twin pairs each family holds (at most half its members), ``TWIN_SHARE`` overall."""
    pool = [f for f, s in enumerate(sizes) for _ in range(s // 2)]
    n_pairs = min(round(TWIN_SHARE * n_types / 2), len(pool))
    counts = [0] * len(sizes)
    for f in rng.permutation(pool)[:n_pairs]:
        counts[int(f)] += 1
    return counts


def generate_mint(n_types: int, seed: int) -> Mint:
    """Generate ``n_types`` coin types deterministically from ``seed``.

    Families mix sizes (1-3, 4-9 and 10-50 members); about ``TWIN_SHARE`` of the types belong to a
    near-twin pair, the three kinds of difference in turn.

    Args:
        n_types: number of coin types, at least 1.
        seed: the catalogue's seed; the same ``(n_types, seed)`` always gives an equal :class:`Mint`.

    Returns:
        The catalogue, types ordered by id ``t0000``, ``t0001``, ...

    Raises:
        ValueError: when ``n_types < 1``.
    """
    if n_types < 1:
        raise ValueError(f"n_types must be at least 1, got {n_types}")
    rng = np.random.default_rng([seed, 0x4D494E54])
    types: list[CoinType] = []
    sizes = _family_sizes(n_types, rng)
    twins_in = _twins_per_family(sizes, n_types, rng)
    kind_cycle = [str(k) for k in rng.permutation(TWIN_DETAILS)]
    n_twins = 0
    for fi, size in enumerate(sizes):
        fam = f"f{fi:03d}"
        country = _word(rng)
        state = str(rng.choice(_STATE_WORDS))
        country_legend = f"{state} {country}".strip()
        obv_motif = "bust" if rng.random() < 0.7 else str(rng.choice(["shield", "eagle", "rosette", "star"]))
        obv_date = str(int(rng.integers(1950, 2025))) if rng.random() < 0.5 else ""
        ruler = _word(rng, 2, 2) if obv_motif == "bust" and rng.random() < 0.6 else ""
        obv_legend = f"{ruler} {country_legend}".strip() if ruler else country_legend
        obverse = Design(f"{fam}-obv", int(rng.integers(2**31)), obv_motif, obv_legend, obv_date, "")
        big = rng.random() < 0.12
        diameter = float(rng.choice(_LARGE_DIAMETERS_MM if big else STANDARD_DIAMETERS_MM))
        diameter = round(diameter + float(rng.uniform(-0.25, 0.25)), 2)
        thickness = round(diameter * float(rng.uniform(0.06, 0.09)), 2)
        metal = str(rng.choice(["silver", "nickel", "copper", "brass", "bronze", "bimetallic"]))
        ring_bgr: tuple[int, int, int] | None = None
        ring_metal: str | None = None
        centre_metal: str | None = None
        if metal == "bimetallic":
            ring_metal, centre_metal = (
                ("nickel", "brass") if rng.random() < 0.5 else ("brass", str(rng.choice(["nickel", "silver"])))
            )
            ring_bgr = _jitter(METALS[ring_metal], rng)
            metal_bgr = _jitter(METALS[centre_metal], rng)
        else:
            metal_bgr = _jitter(METALS[metal], rng)
        edge = "reeded" if rng.random() < 0.55 else "plain"
        denomination = str(rng.choice(_DENOMINATIONS))
        start = len(types)
        for member in range(size):
            ti = len(types)
            tid = f"t{ti:04d}"
            # the last ``twins_in[fi]`` members are twins of earlier unpaired members of the family
            if member >= size - twins_in[fi]:
                kind = kind_cycle[n_twins % len(kind_cycle)]
                n_twins += 1
                unpaired = [j for j in range(start, ti) if types[j].twin_of is None]
                fitting = [j for j in unpaired if _twin_compatible(types[j].reverse, kind)]
                if not fitting:
                    kind, fitting = "digit", unpaired
                j = int(rng.choice(fitting))
                reverse = _twin_reverse(types[j].reverse, f"{tid}-rev", kind, rng)
                types[j] = replace(types[j], twin_of=tid, twin_detail=kind)
                twin: tuple[str | None, str | None] = (types[j].id, kind)
            else:
                place = _word(rng)
                bottom = denomination if rng.random() < 0.6 else ""
                legend = f"{place}|{bottom}" if bottom else place
                motif = str(rng.choice(MOTIFS[1:] if rng.random() < 0.9 else MOTIFS))
                date = str(int(rng.integers(1950, 2025)))
                reverse = Design(f"{tid}-rev", int(rng.integers(2**31)), motif, legend, date, _detail_for(rng))
                twin = (None, None)
            mark = reverse.detail[3:] if reverse.detail.startswith("mm:") else ""
            emblem = f" ({reverse.detail[3:]})" if reverse.detail.startswith("em:") else ""
            name = f"{country.title()} {denomination.lower()} {reverse.legend.split('|')[0].title()} "
            name += f"{reverse.numeral}{'-' + mark if mark else ''}{emblem}"
            types.append(
                CoinType(
                    tid,
                    name,
                    fam,
                    diameter,
                    thickness,
                    metal,
                    metal_bgr,
                    edge,
                    obverse,
                    reverse,
                    twin[0],
                    twin[1],
                    ring_bgr,
                    ring_metal,
                    centre_metal,
                )
            )
    return Mint(seed, tuple(types))


def _jitter(bgr: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    d = rng.integers(-7, 8, size=3)
    b, g, r = (int(np.clip(c + int(x), 0, 255)) for c, x in zip(bgr, d, strict=True))
    return (b, g, r)


_SEAM = 0.66
"""Radius (coin-radius units) of a bimetallic coin's seam between ring and centre."""


@functools.lru_cache(maxsize=128)
def _design_height(design: Design) -> npt.NDArray[np.float16]:
    """:func:`draw_design` kept as float16 (0.5 MB per design)."""
    h = draw_design(design).astype(np.float16)
    h.setflags(write=False)
    return h


@functools.lru_cache(maxsize=16)
def _coin_layer(edge: str, n_reeds: int, seam: float) -> FloatArray:
    """Rim, reeding ticks and bimetallic seam, ``(BASE_PX, BASE_PX)`` float32 heights; a negative value cuts."""
    n = BASE_PX
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    r = np.hypot(xx - c, yy - c) / (n / 2.0)
    theta = np.arctan2(yy - c, xx - c)
    rim = 6.0 * np.clip((r - 0.935) / 0.025, 0.0, 1.0)
    rim -= 3.0 * np.clip((r - 0.985) / 0.015, 0.0, 1.0) ** 2
    if edge == "reeded":
        band = np.clip((r - 0.952) / 0.012, 0.0, 1.0)
        rim -= 3.5 * band * (0.5 + 0.5 * np.cos(n_reeds * theta)) ** 3
    if seam > 0:
        rim -= 2.0 * np.exp(-(((r - seam) / 0.006) ** 2))
    out = rim.astype(np.float32)
    out.setflags(write=False)
    return out


def _coin_key(coin: CoinType) -> tuple[str, int, float]:
    n_reeds = round(coin.diameter_mm * 5.5)
    seam = _SEAM if coin.ring_bgr is not None else 0.0
    return coin.edge, n_reeds, seam


@functools.lru_cache(maxsize=256)
def _sized_height(design: Design, coin_key: tuple[str, int, float], size: int) -> FloatArray:
    """Design + coin layer resized to ``(size, size)``, in output-pixel units."""
    layer = _coin_layer(*coin_key)
    d = _design_height(design).astype(np.float32)
    h = np.maximum(d, layer) + np.minimum(layer, 0.0)
    k = size / BASE_PX
    if size != BASE_PX:
        interp = cv2.INTER_AREA if size < BASE_PX else cv2.INTER_CUBIC
        h = cv2.resize(h, (size, size), interpolation=interp)
    out = np.asarray(h * k, np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=256)
def _sized_cavity(design: Design, coin_key: tuple[str, int, float], size: int) -> FloatArray:
    """How far each pixel lies below its surroundings (recesses collect shadow and dirt), ``(size, size)``."""
    h = _sized_height(design, coin_key, size)
    sigma = max(1.0, 12.0 * size / BASE_PX)
    out = np.asarray(np.clip(cv2.GaussianBlur(h, (0, 0), sigma) - h, 0.0, None), np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def _grid(size: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Normalised ``x``, ``y``, radius and antialiased disc alpha (0-1) on a ``(size, size)`` grid."""
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = (xx - c) / (size / 2.0)
    y = (yy - c) / (size / 2.0)
    r = np.hypot(x, y)
    alpha = np.clip((1.0 - r) * size / 2.0 + 0.5, 0.0, 1.0)
    out = (x, y, r, alpha)
    for a in out:
        a.setflags(write=False)
    return out


def _stable_seed(*parts: object) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


@functools.lru_cache(maxsize=32)
def _grain(size: int) -> FloatArray:
    """Fixed fine multiplicative grain of the metal surface, ``(size, size)`` around 1."""
    g = np.random.default_rng([size, 0x4752]).standard_normal((size, size)).astype(np.float32)
    out = np.asarray(1.0 + 0.025 * cv2.GaussianBlur(g, (0, 0), 0.7), np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=32)
def _lustre(size: int, light_deg: float) -> FloatArray:
    """Mint lustre: the faint 'cartwheel' of a struck field, bright along the light's axis, ``(size, size)``."""
    x, y, r, _ = _grid(size)
    az = np.radians(light_deg)
    r2 = np.maximum(r * r, 1e-6)
    cos2 = ((x * x - y * y) * np.cos(2 * az) + 2 * x * y * np.sin(2 * az)) / r2
    out = np.asarray(0.07 * cos2 * np.clip(r * 1.5, 0.0, 1.0), np.float32)
    out.setflags(write=False)
    return out


def _noise(rng: np.random.Generator, size: int, cells: int) -> FloatArray:
    g = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC), np.float32)


def render_face(
    coin: CoinType,
    side: Side,
    size_px: int,
    *,
    wear: float = 0.0,
    toning: float = 0.0,
    light_deg: float = 225.0,
    seed: int = 0,
) -> UInt8Array:
    """Draw one face of ``coin`` top-down as lit metal relief.

    Args:
        coin: the coin type.
        side: which face.
        size_px: output side; the coin's disc fills the square (diameter ``size_px``).
        wear: 0 (mint state) to 1 (worn smooth): softens relief, flattens high points, adds scratches.
        toning: 0 (bright) to 1 (dark patina): blotchy colour shift towards the metal's tone colour.
        light_deg: direction towards the light in image coordinates (x right, y down), degrees:
            0 = from the right, 90 = from below, 180 = from the left, 225 (default) = from the upper left.
        seed: varies the scratches and toning blotches between coins of the same type.

    Returns:
        ``(size_px, size_px, 4)`` uint8 BGRA; alpha is the antialiased coin disc, colour is 0 outside it.
        The same arguments always give the same bytes.

    Raises:
        ValueError: on ``size_px < MIN_SIZE_PX`` or ``wear``/``toning`` outside [0, 1].
    """
    if size_px < MIN_SIZE_PX:
        raise ValueError(f"size_px must be at least {MIN_SIZE_PX}, got {size_px}")
    if not 0.0 <= wear <= 1.0:
        raise ValueError(f"wear must be in [0, 1], got {wear}")
    if not 0.0 <= toning <= 1.0:
        raise ValueError(f"toning must be in [0, 1], got {toning}")
    design = coin.design(side)
    size = int(size_px)
    k = size / BASE_PX
    h = _sized_height(design, _coin_key(coin), size)
    x, y, r, alpha = _grid(size)
    rng = np.random.default_rng([_stable_seed(coin.id, Side(side).value, seed, round(wear, 6), round(toning, 6))])
    polish = None
    if wear > 0:
        h = np.asarray(cv2.GaussianBlur(h, (0, 0), max(0.3, wear * 5.0 * k)), np.float32) * (1.0 - 0.3 * wear)
        top = float(h[r < 0.9].max()) if (r < 0.9).any() else 1.0
        t = top * (1.0 - 0.55 * wear)
        polish = np.clip((h - t) / max(top - t, 1e-3), 0.0, 1.0)
        h = np.where(h > t, t + (h - t) * (1.0 - 0.8 * wear), h)
        sc = np.zeros((size, size), np.float32)
        for _ in range(int(2 + 30 * wear)):
            p0 = rng.uniform(0.1, 0.9, 2) * size
            ang = rng.uniform(0, np.pi)
            ln = rng.uniform(0.03, 0.2) * size
            p1 = p0 + ln * np.array([np.cos(ang), np.sin(ang)])
            cv2.line(
                sc,
                (int(p0[0]), int(p0[1])),
                (int(p1[0]), int(p1[1])),
                float(rng.uniform(0.3, 1.0)) * min(1.0, size / 200.0),
                1,
                cv2.LINE_AA,
            )
        h = h - sc * (0.6 * k * 2.0)
    h = np.asarray(h, np.float32)
    gx = cv2.Sobel(h, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(h, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    relief = 1.6
    nx, ny = -gx * relief, -gy * relief
    inv = 1.0 / np.sqrt(nx * nx + ny * ny + 1.0)
    # python floats keep every array float32 (numpy scalars would promote them to float64)
    az, el = float(np.radians(light_deg)), float(np.radians(42.0))
    lx, ly, lz = float(np.cos(az) * np.cos(el)), float(np.sin(az) * np.cos(el)), float(np.sin(el))
    ndl = (nx * lx + ny * ly + lz) * inv
    hx, hy, hz = lx, ly, lz + 1.0
    hn = float(np.sqrt(hx * hx + hy * hy + hz * hz))
    ndh = np.clip((nx * hx + ny * hy + hz) * inv / hn, 0.0, 1.0)
    spec = ndh**24
    # broad sheen across the disc (slightly domed field reflecting the room) and recess darkening
    sheen = (x * lx + y * ly) * (0.1 / float(np.cos(el)))
    ao = _sized_cavity(design, _coin_key(coin), size)
    ao_k = 0.25 / max(k * 2.0, 0.25)
    diffuse = 0.28 + 0.85 * np.clip(ndl, 0.0, None) + sheen - ao_k * ao
    diffuse = diffuse * _grain(size) + (1.0 - wear) * (1.0 - toning) * _lustre(size, round(light_deg, 3))
    if polish is not None:
        diffuse = diffuse + 0.18 * wear * polish
    base = _metal_map(coin.metal_bgr, coin.ring_bgr, size)
    col = base * diffuse[..., None] + (0.45 * base + 0.55) * (0.55 * spec)[..., None]
    if wear > 0:
        dirt = np.clip(ao * ao_k * 3.0, 0.0, 1.0) * 0.35 * wear
        col = col * (1.0 - dirt[..., None])
    if toning > 0:
        tone = _tone_map(coin, size)
        blot = _noise(rng, size, 5) * 0.5 + _noise(rng, size, 11) * 0.25
        amt = np.clip(toning * (0.75 + 0.45 * blot + 0.6 * np.clip(r - 0.8, 0.0, None) * 5 + ao * ao_k), 0.0, 1.0)
        toned = tone * (0.55 * diffuse + 0.45)[..., None] + 0.15 * (0.45 * base + 0.55) * spec[..., None]
        col = col * (1.0 - amt[..., None]) + toned * amt[..., None]
    out = np.zeros((size, size, 4), np.uint8)
    a = alpha[..., None]
    out[..., :3] = np.clip(col * 255.0 * a, 0, 255).astype(np.uint8)
    out[..., 3] = np.round(alpha * 255.0).astype(np.uint8)
    return out


@functools.lru_cache(maxsize=64)
def _metal_map(centre_bgr: tuple[int, ...], ring_bgr: tuple[int, ...] | None, size: int) -> FloatArray:
    """Metal colour (BGR, 0-1): ``(1, 1, 3)`` for one metal, ``(size, size, 3)`` with a bimetallic ring."""
    centre = np.array(centre_bgr, np.float32).reshape(1, 1, 3) / 255.0
    if ring_bgr is None:
        out = centre
    else:
        ring = np.array(ring_bgr, np.float32).reshape(1, 1, 3) / 255.0
        _, _, r, _ = _grid(size)
        w = np.clip((r - _SEAM) * size / 2.0 + 0.5, 0.0, 1.0)[..., None]
        out = np.asarray(centre * (1 - w) + ring * w, np.float32)
    out.setflags(write=False)
    return out


def _tone_bgr(metal: str | None, fallback: tuple[int, int, int]) -> tuple[int, ...]:
    return TONE_BGR.get(metal or "", tuple(c // 3 for c in fallback))


def _tone_map(coin: CoinType, size: int) -> FloatArray:
    if coin.ring_bgr is not None:
        centre = _tone_bgr(coin.centre_metal, coin.metal_bgr)
        return _metal_map(centre, _tone_bgr(coin.ring_metal, coin.ring_bgr), size)
    return _metal_map(_tone_bgr(coin.metal, coin.metal_bgr), None, size)


def clear_caches() -> None:
    """Drop the cached height maps (to free memory after rendering a dataset)."""
    for f in (_design_height, _coin_layer, _sized_height, _sized_cavity, _grid, _metal_map, _grain, _lustre):
        f.cache_clear()
