"""A procedural mint: coin types with two designed sides, in families that share one obverse.

INTERFACE PLACEHOLDER: the dataclasses and function signatures below are the contract; the drawing in
``render_face`` is a flat disc to be replaced by the real procedural designs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.types import Side, UInt8Array


@dataclass(frozen=True)
class Design:
    """One side's artwork. Two types in a family share the same obverse ``Design`` (same ``id``).

    Attributes:
        id: unique design id; shared obverses share it (e.g. ``"f012-obv"``), reverses are per type.
        seed: drives the procedural drawing.
        motif: the central emblem's kind.
        legend: the text around the rim.
        numeral: the value or date printed in the field.
        detail: a small mark (mint mark, emblem, digit) that near-twins differ on.
    """

    id: str
    seed: int
    motif: str
    legend: str
    numeral: str
    detail: str


@dataclass(frozen=True)
class CoinType:
    """One coin type of the catalogue."""

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

    def design(self, side: Side) -> Design:
        """The design shown on ``side``."""
        return self.obverse if side == Side.OBVERSE else self.reverse


@dataclass(frozen=True)
class Mint:
    """A generated catalogue of coin types."""

    seed: int
    types: tuple[CoinType, ...]

    def by_id(self, type_id: str) -> CoinType:
        """Look a type up by id (``KeyError`` when absent)."""
        for t in self.types:
            if t.id == type_id:
                return t
        raise KeyError(type_id)


def generate_mint(n_types: int, seed: int) -> Mint:
    """Generate ``n_types`` coin types deterministically from ``seed``."""
    rng = np.random.default_rng(seed)
    types = []
    for i in range(n_types):
        fam = f"f{i // 5:03d}"
        obv = Design(f"{fam}-obv", seed * 1000 + i // 5, "bust", "REPUBLIC", "", "")
        rev = Design(f"t{i:04d}-rev", seed * 1000 + 500 + i, "eagle", "UNITED", str(i), "")
        d = float(rng.uniform(16, 32))
        types.append(
            CoinType(f"t{i:04d}", f"Type {i}", fam, d, d / 14, "silver", (190, 190, 195), "reeded", obv, rev)
        )
    return Mint(seed, tuple(types))


def render_face(coin: CoinType, side: Side, size_px: int, *, wear: float = 0.0) -> UInt8Array:
    """Draw one face of ``coin`` top-down, ``(size_px, size_px, 4)`` uint8 BGRA, alpha = the coin's disc."""
    img = np.zeros((size_px, size_px, 4), np.uint8)
    c = size_px // 2
    cv2.circle(img, (c, c), c - 1, (*coin.metal_bgr, 255), -1, cv2.LINE_AA)
    text = coin.design(side).numeral or "O"
    cv2.putText(img, text, (c // 2, c), cv2.FONT_HERSHEY_SIMPLEX, size_px / 100, (60, 60, 60, 255), 2)
    return img
