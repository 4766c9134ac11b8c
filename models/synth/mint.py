"""A procedural mint: coin types with two designed sides, in families that share one obverse.

A :class:`Mint` is a catalogue of :class:`CoinType` s grouped in families (like a series of commemorative
quarters): all members of a family share one obverse :class:`Design`, one diameter and one metal, and differ on
the reverse. Some members are near-twins: their reverse is a copy of another member's reverse except for one
small detail (a digit of the date, a small emblem, or a mint-mark letter).

:func:`render_face` draws a face top-down as a lit relief: every design becomes a height map (cached per design
at a base resolution), which is resized, optionally worn (softened, flattened, scratched), turned into normals,
lit from one direction and coloured by the metal (optionally toned).
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

from models.types import FloatArray, Side, UInt8Array

BASE_PX = 512
"""Side of the cached design height maps, in pixels."""

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
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


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


# ------------------------------------------------------------------------------------------ relief drawing


class _Relief:
    """A float32 ``(BASE_PX, BASE_PX)`` height map in base-resolution pixel units, drawn with masks."""

    def __init__(self) -> None:
        self.n = BASE_PX
        self.c = BASE_PX / 2.0
        self.r = BASE_PX / 2.0
        self.h = np.zeros((BASE_PX, BASE_PX), np.float32)

    def mask(self) -> UInt8Array:
        return np.zeros((self.n, self.n), np.uint8)

    def p(self, x: float, y: float) -> tuple[int, int]:
        """Pixel of the point ``(x, y)`` given in units of the coin radius around the centre."""
        return (round(self.c + x * self.r), round(self.c + y * self.r))

    def pts(self, xy: list[tuple[float, float]]) -> np.ndarray:
        return np.array([self.p(x, y) for x, y in xy], np.int32)

    def pillow(self, m: UInt8Array, height: float, width: float, base: float = 0.0) -> None:
        """Raise ``m`` as a rounded pillow: ``base`` at its edge up to ``base + height`` past ``width`` px."""
        if not m.any():
            return
        d = cv2.distanceTransform(m, cv2.DIST_L2, 5)
        t = np.clip(d / max(width, 1e-3), 0.0, 1.0)
        h = (base + height * np.sqrt(t * (2.0 - t))) * (m > 0)
        np.maximum(self.h, h.astype(np.float32), out=self.h)

    def flat(self, m: np.ndarray, height: float) -> None:
        np.maximum(self.h, (m > 0).astype(np.float32) * height, out=self.h)

    def groove(self, m: UInt8Array, depth: float, blur: float = 1.0) -> None:
        g = cv2.GaussianBlur((m > 0).astype(np.float32), (0, 0), blur)
        self.h -= depth * g * (self.h > 0.2)
        np.maximum(self.h, 0.0, out=self.h)

    def ridge(self, m: UInt8Array, height: float, blur: float = 1.0) -> None:
        g = cv2.GaussianBlur((m > 0).astype(np.float32), (0, 0), blur)
        self.h += height * g


def _text_size(text: str, font: int, scale: float, thick: int) -> tuple[int, int]:
    (w, h), _ = cv2.getTextSize(text, font, scale, thick)
    return int(w), int(h)


def _glyph(m: UInt8Array, ch: str, x: float, y: float, angle_deg: float, font: int, scale: float, th: int) -> None:
    """Draw ``ch`` centred on ``(x, y)`` rotated clockwise by ``angle_deg`` into ``m`` (max-composited)."""
    w, h = _text_size(ch, font, scale, th)
    s = int(2 * max(w, h) + 8)
    patch = np.zeros((s, s), np.uint8)
    cv2.putText(patch, ch, (s // 2 - w // 2, s // 2 + h // 2), font, scale, 255, th, cv2.LINE_AA)
    rot = cv2.getRotationMatrix2D((s / 2.0, s / 2.0), -angle_deg, 1.0)
    patch = np.asarray(cv2.warpAffine(patch, rot, (s, s), flags=cv2.INTER_LINEAR), np.uint8)
    x0, y0 = round(x - s / 2.0), round(y - s / 2.0)
    n = m.shape[0]
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + s, n), min(y0 + s, n)
    if xa >= xb or ya >= yb:
        return
    sub = patch[ya - y0 : yb - y0, xa - x0 : xb - x0]
    np.maximum(m[ya:yb, xa:xb], sub, out=m[ya:yb, xa:xb])


def _arc_text(
    rel: _Relief, m: UInt8Array, text: str, radius: float, font: int, scale: float, th: int, top: bool
) -> None:
    """Legend along the circle of ``radius`` px: centred on top reading clockwise, or on the bottom."""
    if not text:
        return
    widths = [
        _text_size(ch, font, scale, th)[0] if ch != " " else _text_size("I", font, scale, th)[0] * 1.4 for ch in text
    ]
    gap = 0.12 * _text_size("M", font, scale, th)[0]
    total = sum(widths) + gap * (len(text) - 1)
    max_arc = (1.75 if top else 1.1) * np.pi * radius
    if total > max_arc:
        f = max_arc / total
        scale *= f
        widths = [w * f for w in widths]
        gap *= f
        total = max_arc
    cum = 0.0
    for ch, w in zip(text, widths, strict=True):
        mid = (cum + w / 2.0) / radius
        cum += w + gap
        if ch == " ":
            continue
        if top:
            theta = -np.pi / 2 - total / (2 * radius) + mid
            rot = np.degrees(theta) + 90.0
        else:
            theta = np.pi / 2 + total / (2 * radius) - mid
            rot = np.degrees(theta) - 90.0
        x = rel.c + radius * np.cos(theta)
        y = rel.c + radius * np.sin(theta)
        _glyph(m, ch, x, y, rot, font, scale, th)


def _straight_text(m: UInt8Array, text: str, cx: float, cy: float, font: int, scale: float, th: int) -> None:
    """Text centred on ``(cx, cy)`` with one fixed-width slot per character (a changed digit moves nothing)."""
    slot = max(_text_size(d, font, scale, th)[0] for d in "0123456789") * 1.08
    x0 = cx - slot * len(text) / 2.0
    for i, ch in enumerate(text):
        _glyph(m, ch, x0 + slot * (i + 0.5), cy, 0.0, font, scale, th)


def _star_pts(rel: _Relief, x: float, y: float, r_out: float, n: int, rot: float, inner: float = 0.45) -> np.ndarray:
    pts = []
    for k in range(2 * n):
        a = rot + np.pi * k / n - np.pi / 2
        rr = r_out if k % 2 == 0 else r_out * inner
        pts.append((x + rr * np.cos(a), y + rr * np.sin(a)))
    return rel.pts(pts)


# --- motifs: each draws into ``rel`` inside the circle of radius ``s`` (coin-radius units) around (ox, oy)


def _motif_bust(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    nose = float(rng.uniform(0.08, 0.16))
    chin = float(rng.uniform(-0.02, 0.05))
    head_w = float(rng.uniform(0.36, 0.44))
    m = rel.mask()
    cv2.ellipse(m, rel.p(*q(0.08, -0.25)), (int(head_w * s * rel.r), int(0.5 * s * rel.r)), -15, 0, 360, 255, -1)
    face = [
        q(-0.18, -0.72),
        q(-0.34, -0.38),
        q(-0.36, -0.25),
        q(-0.36 - nose, -0.05),
        q(-0.36, 0.0),
        q(-0.37, 0.06),
        q(-0.33, 0.1),
        q(-0.36, 0.14),
        q(-0.3 - chin, 0.27),
        q(-0.16, 0.33),
        q(0.1, 0.2),
        q(0.2, -0.3),
    ]
    cv2.fillPoly(m, [rel.pts(face)], 255, cv2.LINE_AA)
    neck = [q(-0.17, 0.25), q(0.22, 0.1), q(0.28, 0.62), q(-0.12, 0.66)]
    cv2.fillPoly(m, [rel.pts(neck)], 255, cv2.LINE_AA)
    bust = rel.mask()
    cv2.ellipse(bust, rel.p(*q(0.08, 0.95)), (int(0.62 * s * rel.r), int(0.42 * s * rel.r)), 0, 180, 360, 255, -1)
    cut = float(rng.uniform(0.78, 0.86))
    bust[rel.p(0, oy + cut * s)[1] :, :] = 0
    m = np.maximum(m, bust)
    m[rel.p(0, oy + cut * s)[1] :, :] = 0
    rel.pillow(m, 9.0, 26.0)
    # features: eye, brow, ear, lips, hair
    d = rel.mask()
    cv2.ellipse(d, rel.p(*q(-0.22, -0.2)), (int(0.05 * s * rel.r), int(0.022 * s * rel.r)), -5, 0, 360, 255, 2)
    cv2.ellipse(d, rel.p(*q(-0.2, -0.27)), (int(0.08 * s * rel.r), int(0.03 * s * rel.r)), -10, 190, 330, 255, 3)
    cv2.line(d, rel.p(*q(-0.36, 0.06)), rel.p(*q(-0.29, 0.065)), 255, 2, cv2.LINE_AA)
    cv2.ellipse(d, rel.p(*q(0.1, -0.12)), (int(0.06 * s * rel.r), int(0.1 * s * rel.r)), 0, -70, 250, 255, 3)
    cv2.line(d, rel.p(*q(-0.16, 0.33)), rel.p(*q(0.14, 0.3)), 255, 2, cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 6))):
        x0 = float(rng.uniform(-0.3, 0.45))
        cv2.ellipse(
            d,
            rel.p(*q(x0, 0.95)),
            (int(0.25 * s * rel.r), int(0.2 * s * rel.r)),
            float(rng.uniform(-30, 30)),
            200,
            300,
            255,
            2,
        )
    if rng.random() < 0.3:  # beard
        beard = rel.mask()
        cv2.fillPoly(
            beard,
            [rel.pts([q(-0.3, 0.12), q(-0.34, 0.3), q(-0.16, 0.4), q(0.1, 0.25), q(0.05, -0.02)])],
            255,
            cv2.LINE_AA,
        )
        rel.pillow(beard, 2.0, 4.0, base=7.0)
        for k in range(6):
            cv2.line(d, rel.p(*q(-0.25 + 0.06 * k, 0.12)), rel.p(*q(-0.28 + 0.06 * k, 0.36)), 255, 2, cv2.LINE_AA)
    rel.groove(d, 2.5, 1.2)
    hair = rel.mask()
    style = int(rng.integers(4))
    if style == 0:  # curls
        for _ in range(38):
            a = float(rng.uniform(-2.6, 0.5))
            rr = float(rng.uniform(0.15, 0.42))
            c = q(0.1 + rr * np.cos(a), -0.32 + rr * np.sin(a))
            cv2.circle(hair, rel.p(*c), int(0.045 * s * rel.r), 255, 2, cv2.LINE_AA)
    elif style == 1:  # swept waves
        for k in range(9):
            y0 = -0.68 + 0.06 * k
            pts = [q(-0.1 + 0.05 * j, y0 + 0.04 * np.sin(j * 1.3 + k) + 0.012 * j * j) for j in range(10)]
            cv2.polylines(hair, [rel.pts(pts)], False, 255, 2, cv2.LINE_AA)
    elif style == 2:  # laurel wreath
        for k in range(11):
            a = -2.7 + 0.27 * k
            c = q(0.1 + 0.4 * np.cos(a), -0.28 + 0.45 * np.sin(a))
            ax = (int(0.075 * s * rel.r), int(0.03 * s * rel.r))
            cv2.ellipse(hair, rel.p(*c), ax, float(np.degrees(a)) + 60, 0, 360, 255, -1, cv2.LINE_AA)
        rel.pillow(hair, 3.0, 5.0, base=7.0)
        hair = rel.mask()
    else:  # crown
        base_y = -0.66
        pts = [q(-0.2, base_y + 0.12), q(0.36, base_y + 0.04)]
        for k in range(5):
            x = 0.36 - 0.14 * k
            pts.append(q(x - 0.07, base_y - 0.28 + 0.02 * k))
            pts.append(q(x - 0.14, base_y - 0.02))
        crown = rel.mask()
        cv2.fillPoly(crown, [rel.pts(pts)], 255, cv2.LINE_AA)
        rel.pillow(crown, 4.0, 6.0, base=5.0)
        for k in range(5):
            x = 0.29 - 0.14 * k
            cv2.circle(hair, rel.p(*q(x, base_y - 0.27 + 0.02 * k)), int(0.035 * s * rel.r), 255, -1)
        rel.pillow(hair, 2.0, 3.0, base=8.0)
        hair = rel.mask()
        for k in range(7):
            cv2.line(hair, rel.p(*q(0.05 + 0.04 * k, -0.5)), rel.p(*q(0.2 + 0.03 * k, 0.05)), 255, 2)
    rel.groove(hair, 2.0, 1.0)


def _motif_eagle(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    n_feathers = int(rng.integers(5, 9))
    lift = float(rng.uniform(-0.15, 0.2))
    wings = rel.mask()
    lines = rel.mask()
    for side in (-1, 1):
        sh = q(0.08 * side, -0.28)
        wrist = q(0.5 * side, -0.62 - lift)
        tip = q(0.98 * side, -0.42 - lift)
        edge = [sh, wrist, tip]
        root = (0.12, 0.2)
        for k in range(1, n_feathers + 1):
            t = k / (n_feathers + 1)
            fx = 0.98 - (0.98 - root[0]) * t
            fy = -0.42 - lift + (root[1] + 0.42 + lift) * t
            edge.append(q((fx - 0.02) * side, fy + 0.1))
            edge.append(q((fx - 0.09) * side, fy + 0.02))
            cv2.line(
                lines,
                rel.p(*q((fx - 0.09) * side, fy + 0.02)),
                rel.p(*q(0.42 * side, -0.45 - lift * 0.5)),
                255,
                2,
                cv2.LINE_AA,
            )
        edge.append(q(root[0] * side, root[1]))
        cv2.fillPoly(wings, [rel.pts(edge)], 255, cv2.LINE_AA)
        cv2.polylines(
            lines,
            [rel.pts([q(0.15 * side, -0.3), q(0.45 * side, -0.5 - lift), q(0.85 * side, -0.4 - lift)])],
            False,
            255,
            2,
            cv2.LINE_AA,
        )
    rel.pillow(wings, 5.0, 14.0)
    rel.groove(lines, 1.8, 1.0)
    body = rel.mask()
    cv2.ellipse(body, rel.p(*q(0, 0.05)), (int(0.17 * s * rel.r), int(0.36 * s * rel.r)), 0, 0, 360, 255, -1)
    tail = [q(-0.08, 0.3), q(0.08, 0.3), q(0.2, 0.72), q(-0.2, 0.72)]
    cv2.fillConvexPoly(body, rel.pts(tail), 255, cv2.LINE_AA)
    rel.pillow(body, 8.0, 18.0)
    head = rel.mask()
    face = 1 if rng.random() < 0.5 else -1
    cv2.circle(head, rel.p(*q(0, -0.42)), int(0.12 * s * rel.r), 255, -1, cv2.LINE_AA)
    cv2.fillConvexPoly(head, rel.pts([q(0.08 * face, -0.48), q(0.25 * face, -0.4), q(0.08 * face, -0.35)]), 255)
    rel.pillow(head, 4.0, 8.0, base=6.0)
    det = rel.mask()
    cv2.circle(det, rel.p(*q(0.04 * face, -0.45)), int(0.02 * s * rel.r) + 1, 255, -1)
    for k in range(5):
        cv2.line(det, rel.p(*q(-0.1 + 0.05 * k, 0.42)), rel.p(*q(-0.16 + 0.08 * k, 0.7)), 255, 2)
    for k in range(4):
        cv2.ellipse(
            det, rel.p(*q(0, -0.1 + 0.12 * k)), (int(0.1 * s * rel.r), int(0.05 * s * rel.r)), 0, 20, 160, 255, 2
        )
    rel.groove(det, 2.0, 1.0)


def _shield_pts(rel: _Relief, q: Any, w: float, top: float, bottom: float) -> np.ndarray:
    pts = [q(-w, top), q(w, top), q(w, 0.1)]
    for k in range(1, 10):
        t = k / 10
        pts.append(q(w * (1 - t) ** 0.8, 0.1 + (bottom - 0.1) * np.sin(t * np.pi / 2)))
    pts.append(q(0, bottom))
    for k in range(9, 0, -1):
        t = k / 10
        pts.append(q(-w * (1 - t) ** 0.8, 0.1 + (bottom - 0.1) * np.sin(t * np.pi / 2)))
    pts.append(q(-w, 0.1))
    return rel.pts(pts)


def _motif_shield(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    m = rel.mask()
    outline = _shield_pts(rel, q, 0.55, -0.55, 0.8)
    cv2.fillPoly(m, [outline], 255, cv2.LINE_AA)
    rel.pillow(m, 3.5, 10.0)
    o = rel.mask()
    cv2.polylines(o, [_shield_pts(rel, q, 0.48, -0.48, 0.7)], True, 255, 4, cv2.LINE_AA)
    rel.ridge(o, 2.5)
    div = rel.mask()
    kind = int(rng.integers(4))
    if kind == 0:
        for k in range(1, 6):
            x = -0.48 + 0.16 * k
            cv2.line(div, rel.p(*q(x, -0.48)), rel.p(*q(x, 0.6 - abs(x) * 0.6)), 255, 3)
    elif kind == 1:
        cv2.polylines(div, [rel.pts([q(-0.48, 0.35), q(0, -0.1), q(0.48, 0.35)])], False, 255, 10, cv2.LINE_AA)
    elif kind == 2:
        cv2.line(div, rel.p(*q(0, -0.48)), rel.p(*q(0, 0.7)), 255, 10)
        cv2.line(div, rel.p(*q(-0.48, 0.05)), rel.p(*q(0.48, 0.05)), 255, 10)
    else:
        cv2.line(div, rel.p(*q(-0.48, -0.15)), rel.p(*q(0.48, -0.15)), 255, 4)
        for k in range(3):
            cv2.circle(div, rel.p(*q(-0.3 + 0.3 * k, 0.15 + 0.12 * (k % 2))), int(0.07 * s * rel.r), 255, -1)
    rel.ridge(div, 2.5)
    st = rel.mask()
    n_stars = int(rng.integers(0, 4))
    for k in range(n_stars):
        cv2.fillPoly(st, [_star_pts(rel, *q(-0.25 + 0.25 * k, -0.32), 0.08 * s, 5, 0.0)], 255, cv2.LINE_AA)
    rel.pillow(st, 2.0, 3.0, base=3.5)
    if rng.random() < 0.5:  # crown on top
        cr = rel.mask()
        pts = [q(-0.4, -0.6), q(0.4, -0.6), q(0.45, -0.9), q(0.22, -0.72), q(0, -0.95), q(-0.22, -0.72), q(-0.45, -0.9)]
        cv2.fillPoly(cr, [rel.pts(pts)], 255, cv2.LINE_AA)
        rel.pillow(cr, 4.0, 6.0)


def _motif_star(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    n = int(rng.integers(5, 9))
    m = rel.mask()
    cv2.fillPoly(m, [_star_pts(rel, ox, oy, 0.75 * s, n, float(rng.uniform(0, 0.5)), 0.42)], 255, cv2.LINE_AA)
    rel.pillow(m, 8.0, 30.0)
    ring = rel.mask()
    k = int(rng.integers(8, 16))
    for i in range(k):
        a = 2 * np.pi * i / k
        cv2.fillPoly(ring, [_star_pts(rel, ox + 0.9 * s * np.cos(a), oy + 0.9 * s * np.sin(a), 0.07 * s, 5, a)], 255)
    rel.pillow(ring, 3.0, 3.0)
    c = rel.mask()
    cv2.circle(c, rel.p(ox, oy), int(0.16 * s * rel.r), 255, 3, cv2.LINE_AA)
    rel.groove(c, 2.0)


def _motif_tree(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    trunk = rel.mask()
    lines: list[tuple[float, float, float, float, int]] = []

    def branch(x: float, y: float, a: float, length: float, depth: int) -> None:
        x2, y2 = x + length * np.cos(a), y + length * np.sin(a)
        lines.append((x, y, x2, y2, depth))
        if depth > 0:
            for da in (-float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.3, 0.6))):
                branch(x2, y2, a + da, length * float(rng.uniform(0.6, 0.78)), depth - 1)

    branch(ox, oy + 0.8 * s, -np.pi / 2, 0.55 * s, 4)
    for x, y, x2, y2, depth in lines:
        cv2.line(trunk, rel.p(x, y), rel.p(x2, y2), 255, max(2, 3 * depth + 2), cv2.LINE_AA)
    leaves = rel.mask()
    for _x, _y, x2, y2, depth in lines:
        if depth == 0:
            cv2.circle(leaves, rel.p(x2, y2), int(0.13 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(leaves, 6.0, 12.0)
    rel.pillow(trunk, 6.0, 5.0)
    g = rel.mask()
    cv2.ellipse(g, rel.p(ox, oy + 0.82 * s), (int(0.6 * s * rel.r), int(0.08 * s * rel.r)), 0, 0, 360, 255, -1)
    rel.pillow(g, 3.0, 6.0)


def _motif_building(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    n_col = int(rng.integers(4, 9))
    w = 0.75
    m = rel.mask()
    for k in range(3):  # steps
        cv2.rectangle(
            m, rel.p(*q(-w - 0.05 * (3 - k), 0.62 + 0.07 * k)), rel.p(*q(w + 0.05 * (3 - k), 0.69 + 0.07 * k)), 255, -1
        )
    cv2.rectangle(m, rel.p(*q(-w, -0.32)), rel.p(*q(w, -0.18)), 255, -1)
    cv2.fillPoly(m, [rel.pts([q(-w - 0.06, -0.32), q(w + 0.06, -0.32), q(0, -0.72)])], 255, cv2.LINE_AA)
    rel.pillow(m, 4.0, 6.0)
    cols = rel.mask()
    cw = 2 * w / (n_col * 1.8)
    for k in range(n_col):
        x = -w + cw * 0.6 + k * (2 * w - 1.2 * cw) / max(n_col - 1, 1)
        cv2.rectangle(cols, rel.p(*q(x - cw / 2, -0.18)), rel.p(*q(x + cw / 2, 0.62)), 255, -1)
    rel.pillow(cols, 5.0, 7.0)
    det = rel.mask()
    cv2.polylines(det, [rel.pts([q(-w + 0.1, -0.36), q(w - 0.1, -0.36), q(0, -0.64)])], True, 255, 2, cv2.LINE_AA)
    cv2.line(det, rel.p(*q(-w, -0.25)), rel.p(*q(w, -0.25)), 255, 2)
    rel.groove(det, 1.5)
    if rng.random() < 0.5:
        dome = rel.mask()
        cv2.ellipse(dome, rel.p(*q(0, -0.5)), (int(0.32 * s * rel.r), int(0.4 * s * rel.r)), 0, 180, 360, 255, -1)
        rel.pillow(dome, 4.0, 10.0)


def _motif_rosette(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    n = int(rng.integers(6, 14))
    petals = rel.mask()
    for k in range(n):
        a = 2 * np.pi * k / n
        c = rel.p(ox + 0.42 * s * np.cos(a), oy + 0.42 * s * np.sin(a))
        cv2.ellipse(petals, c, (int(0.36 * s * rel.r), int(0.12 * s * rel.r)), float(np.degrees(a)), 0, 360, 255, -1)
    rel.pillow(petals, 5.0, 10.0)
    lines = rel.mask()
    for k in range(n):
        a = 2 * np.pi * (k + 0.5) / n
        cv2.line(lines, rel.p(ox, oy), rel.p(ox + 0.8 * s * np.cos(a), oy + 0.8 * s * np.sin(a)), 255, 2, cv2.LINE_AA)
    rel.groove(lines, 2.0)
    rings = rel.mask()
    for rr in (0.9, 0.97):
        cv2.circle(rings, rel.p(ox, oy), int(rr * s * rel.r), 255, 2, cv2.LINE_AA)
    rel.ridge(rings, 2.0)
    hub = rel.mask()
    cv2.circle(hub, rel.p(ox, oy), int(0.18 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(hub, 4.0, 8.0, base=3.0)
    dots = rel.mask()
    for k in range(n):
        a = 2 * np.pi * k / n
        cv2.circle(dots, rel.p(ox + 0.1 * s * np.cos(a), oy + 0.1 * s * np.sin(a)), 3, 255, -1)
    rel.groove(dots, 2.0)


def _motif_ship(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    def q(x: float, y: float) -> tuple[float, float]:
        return (ox + x * s, oy + y * s)

    hull = [q(-0.75, 0.2), q(0.75, 0.2), q(0.55, 0.42), q(-0.55, 0.42)]
    m = rel.mask()
    cv2.fillPoly(m, [rel.pts(hull)], 255, cv2.LINE_AA)
    rel.pillow(m, 6.0, 8.0)
    n_mast = int(rng.integers(1, 4))
    sails = rel.mask()
    masts = rel.mask()
    for k in range(n_mast):
        x = -0.4 + 0.8 * (k + 0.5) / n_mast
        cv2.line(masts, rel.p(*q(x, 0.2)), rel.p(*q(x, -0.8)), 255, 4)
        h = 0.8 / n_mast + 0.25
        for j in range(2):
            y0 = -0.75 + j * 0.45
            sail = [
                q(x - 0.24 / n_mast - 0.08, y0),
                q(x + 0.24 / n_mast + 0.08, y0),
                q(x + 0.3 / n_mast + 0.1, y0 + 0.38),
                q(x - 0.3 / n_mast - 0.1, y0 + 0.38),
            ]
            _ = h
            cv2.fillPoly(sails, [rel.pts(sail)], 255, cv2.LINE_AA)
    rel.pillow(sails, 5.0, 12.0)
    rel.ridge(masts, 3.0)
    waves = rel.mask()
    for j in range(3):
        pts = [q(-0.85 + 0.05 * i, 0.5 + 0.1 * j + 0.03 * np.sin(i * 0.9 + j)) for i in range(35)]
        cv2.polylines(waves, [rel.pts(pts)], False, 255, 3, cv2.LINE_AA)
    rel.ridge(waves, 2.5)


def _motif_wreath(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float, value: str) -> None:
    leaves = rel.mask()
    n = int(rng.integers(7, 12))
    for side in (-1, 1):
        for k in range(n):
            a = np.pi / 2 + side * (0.55 + 2.1 * k / n)
            c = rel.p(ox + 0.8 * s * np.cos(a), oy + 0.82 * s * np.sin(a))
            ang = float(np.degrees(a)) + 90 + side * 30
            cv2.ellipse(leaves, c, (int(0.13 * s * rel.r), int(0.05 * s * rel.r)), ang, 0, 360, 255, -1, cv2.LINE_AA)
    rel.pillow(leaves, 4.0, 5.0)
    num = rel.mask()
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    sc = 0.75 * s * rel.r / 22.0 * min(1.0, 1.6 / max(len(value), 1))
    _straight_text(num, value, rel.c + ox * rel.r, rel.c + oy * rel.r, font, sc, max(3, int(sc * 2.5)))
    rel.pillow(num, 6.0, 5.0)


def _motif_sun(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    n = int(rng.integers(10, 20))
    rays = rel.mask()
    for k in range(n):
        a = 2 * np.pi * k / n
        b = np.pi / n * 0.6
        pts = [
            (ox + 0.35 * s * np.cos(a - b), oy + 0.35 * s * np.sin(a - b)),
            (ox + 0.85 * s * np.cos(a), oy + 0.85 * s * np.sin(a)),
            (ox + 0.35 * s * np.cos(a + b), oy + 0.35 * s * np.sin(a + b)),
        ]
        cv2.fillConvexPoly(rays, rel.pts(pts), 255, cv2.LINE_AA)
    rel.pillow(rays, 4.0, 6.0)
    disc = rel.mask()
    cv2.circle(disc, rel.p(ox, oy), int(0.38 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(disc, 8.0, 28.0)
    f = rel.mask()
    for dx in (-0.13, 0.13):
        cv2.ellipse(
            f, rel.p(ox + dx * s, oy - 0.08 * s), (int(0.06 * s * rel.r), int(0.03 * s * rel.r)), 0, 0, 360, 255, 2
        )
    cv2.ellipse(f, rel.p(ox, oy + 0.12 * s), (int(0.15 * s * rel.r), int(0.08 * s * rel.r)), 0, 20, 160, 255, 3)
    rel.groove(f, 2.5)


def _motif_flower(rel: _Relief, rng: np.random.Generator, ox: float, oy: float, s: float) -> None:
    stem = rel.mask()
    pts = [(ox + 0.08 * s * np.sin(t * 3.0), oy + s * (0.85 - 0.85 * t)) for t in np.linspace(0, 1, 20)]
    cv2.polylines(stem, [rel.pts(pts)], False, 255, 7, cv2.LINE_AA)
    for side in (-1, 1):
        c = rel.p(ox + side * 0.22 * s, oy + 0.5 * s)
        cv2.ellipse(stem, c, (int(0.24 * s * rel.r), int(0.08 * s * rel.r)), -side * 30, 0, 360, 255, -1, cv2.LINE_AA)
    rel.pillow(stem, 5.0, 6.0)
    n = int(rng.integers(5, 10))
    petals = rel.mask()
    cy = oy - 0.25 * s
    for k in range(n):
        a = 2 * np.pi * k / n
        c = rel.p(ox + 0.25 * s * np.cos(a), cy + 0.25 * s * np.sin(a))
        cv2.ellipse(petals, c, (int(0.26 * s * rel.r), int(0.12 * s * rel.r)), float(np.degrees(a)), 0, 360, 255, -1)
    rel.pillow(petals, 6.0, 12.0)
    centre = rel.mask()
    cv2.circle(centre, rel.p(ox, cy), int(0.13 * s * rel.r), 255, -1, cv2.LINE_AA)
    rel.pillow(centre, 3.0, 6.0, base=5.0)


_EMBLEM_R = 0.07
_SEAM = 0.66
_MARK_SCALE = 0.032


def _draw_detail(rel: _Relief, detail: str, x: float, y: float) -> None:
    """The near-twin mark: a mint-mark letter or a small emblem centred on ``(x, y)`` (coin-radius units)."""
    if not detail:
        return
    m = rel.mask()
    kind, what = detail.split(":", 1)
    r = _EMBLEM_R
    if kind == "mm":
        _glyph(
            m, what, rel.c + x * rel.r, rel.c + y * rel.r, 0.0, cv2.FONT_HERSHEY_DUPLEX, _MARK_SCALE * rel.r / 8.0, 2
        )
        rel.flat(cv2.GaussianBlur(m, (0, 0), 0.8), 3.5)
        return
    if what == "star":
        cv2.fillPoly(m, [_star_pts(rel, x, y, r, 5, 0.0, 0.42)], 255, cv2.LINE_AA)
    elif what == "dot":
        cv2.circle(m, rel.p(x, y), int(0.6 * r * rel.r), 255, -1, cv2.LINE_AA)
    elif what == "leaf":
        cv2.ellipse(m, rel.p(x, y), (int(r * rel.r), int(0.45 * r * rel.r)), -35, 0, 360, 255, -1, cv2.LINE_AA)
    elif what == "cross":
        cv2.line(m, rel.p(x - r, y), rel.p(x + r, y), 255, 5)
        cv2.line(m, rel.p(x, y - r), rel.p(x, y + r), 255, 5)
    else:  # ring
        cv2.circle(m, rel.p(x, y), int(0.7 * r * rel.r), 255, 4, cv2.LINE_AA)
    rel.pillow(m, 3.5, 3.0)


def _draw_design(design: Design) -> FloatArray:
    """The design's height map, ``(BASE_PX, BASE_PX)`` float32, base-pixel units, without the coin's rim."""
    rng = np.random.default_rng([design.seed & 0x7FFFFFFF, 0x44455349])
    rel = _Relief()
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    legend_scale = float(rng.uniform(0.95, 1.15))
    legend_r = 0.8 * rel.r
    # beaded or lined inner border
    border = rel.mask()
    beads = rng.random() < 0.7
    br = 0.905
    if beads:
        nb = int(rng.integers(70, 130))
        for k in range(nb):
            a = 2 * np.pi * k / nb
            cv2.circle(border, rel.p(br * np.cos(a), br * np.sin(a)), int(rng.integers(3, 5)), 255, -1, cv2.LINE_AA)
        rel.pillow(border, 2.5, 3.0)
    else:
        cv2.circle(border, rel.p(0, 0), int(br * rel.r), 255, 3, cv2.LINE_AA)
        rel.ridge(border, 2.0)
    top, _, bottom = design.legend.partition("|")
    text = rel.mask()
    th = 1
    _arc_text(rel, text, top, legend_r, font, legend_scale, th, True)
    _arc_text(rel, text, bottom, legend_r, font, legend_scale * 0.9, th, False)
    rel.flat(cv2.GaussianBlur(text, (0, 0), 0.6), 2.4)
    # layout of the field: motif, date and detail slots depend only on the seed
    has_bottom = bool(bottom)
    date_y = 0.5 if not has_bottom else 0.45
    motif_s = 0.56 if design.numeral else 0.66
    motif_y = -0.1 if design.numeral else 0.0
    side = 1 if rng.random() < 0.5 else -1
    # the mark sits beside the date, or low in the field between the motif and the legend
    low = np.radians(float(rng.uniform(28.0, 42.0)))
    detail_x, detail_y = side * 0.57 * float(np.cos(low)), 0.57 * float(np.sin(low))
    if rng.random() < 0.5 and design.numeral:
        detail_x, detail_y = 0.34 * side, date_y
    motif_rng = np.random.default_rng([design.seed & 0x7FFFFFFF, 0x4D4F5449])
    layer = _Relief()
    if design.motif == "wreath":
        _motif_wreath(layer, motif_rng, 0.0, motif_y, motif_s, str((1, 2, 5, 10, 20, 25, 50)[design.seed % 7]))
    else:
        draw = {
            "bust": _motif_bust,
            "eagle": _motif_eagle,
            "shield": _motif_shield,
            "star": _motif_star,
            "tree": _motif_tree,
            "building": _motif_building,
            "rosette": _motif_rosette,
            "ship": _motif_ship,
            "sun": _motif_sun,
            "flower": _motif_flower,
        }[design.motif]
        draw(layer, motif_rng, 0.0, motif_y, motif_s)
    if design.motif != "wreath":
        if rng.random() < 0.5:
            layer.h = np.ascontiguousarray(layer.h[:, ::-1])
        tilt = float(rng.uniform(-10.0, 10.0))
        zoom = float(rng.uniform(0.92, 1.06))
        centre = (rel.c, rel.c + motif_y * rel.r)
        warp = cv2.getRotationMatrix2D(centre, tilt, zoom)
        layer.h = np.asarray(cv2.warpAffine(layer.h, warp, (rel.n, rel.n), flags=cv2.INTER_LINEAR), np.float32)
    np.maximum(rel.h, layer.h, out=rel.h)
    if design.numeral:
        num = rel.mask()
        nscale = float(rng.uniform(0.85, 1.05))
        _straight_text(num, design.numeral, rel.c, rel.c + date_y * rel.r, font, nscale, th)
        rel.flat(cv2.GaussianBlur(num, (0, 0), 0.6), 2.4)
    _draw_detail(rel, design.detail, detail_x, detail_y)
    h = cv2.GaussianBlur(rel.h, (0, 0), 0.8)
    return np.asarray(h, np.float32)


@functools.lru_cache(maxsize=128)
def _design_height(design: Design) -> npt.NDArray[np.float16]:
    """:func:`_draw_design` kept as float16 (0.5 MB per design)."""
    h = _draw_design(design).astype(np.float16)
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
