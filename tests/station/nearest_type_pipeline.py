"""Test scaffolding: a small real pipeline for the station tests, built from the project's real parts.

Cups are drawn by :func:`compose_cup`: faces from the procedural mint (``models.synth.mint.render_face``) laid
apart on a flat grey table. :class:`NearestTypePipeline` finds the discs by their difference from the table
(OpenCV connected components), embeds each with a real (small, untrained) :class:`models.embedder.Embedder`,
searches a real :class:`models.gallery.Gallery` of the mint's faces, and passes the cup only when every coin's
nearest reference is the expected type. It is not the station's pipeline (``models.pipeline``); it exists so the
window can be tested end to end on real computations without trained weights.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from models.embedder import Embedder, Preprocessing, build_network, checkpoint_dict
from models.gallery import Gallery, GalleryEntry
from models.reasons import count_reason
from models.synth.mint import CoinType, Mint, render_face
from models.types import CoinEvidence, Decision, Frame, Side, UInt8Array, Verdict

TABLE_BGR = (128, 128, 128)
FACE_PX = 120


def tiny_embedder(seed: int = 0) -> Embedder:
    """A real but untrained embedder (``mobilenetv2_050``, 32-d, 64 px input), the same for the same seed."""
    torch.manual_seed(seed)
    net = build_network("mobilenetv2_050", 32)
    return Embedder.from_checkpoint(
        checkpoint_dict(net, "mobilenetv2_050", 32, Preprocessing(input_size=64), half=False)
    )


def face_bgr(coin: CoinType, side: Side, size: int = FACE_PX) -> UInt8Array:
    """A face on the table colour, ``(size, size, 3)`` uint8 BGR."""
    bgra = render_face(coin, side, size).astype(np.float32)
    alpha = bgra[..., 3:4] / 255.0
    table = np.array(TABLE_BGR, np.float32)
    return np.asarray(bgra[..., :3] * alpha + table * (1 - alpha), np.uint8)


def build_gallery(mint: Mint, embedder: Embedder) -> Gallery:
    """A gallery with both faces of every mint type."""
    gallery = Gallery(embedder.embed_dim, embedder.version)
    images, entries = [], []
    for coin in mint.types:
        for side in (Side.OBVERSE, Side.REVERSE):
            images.append(face_bgr(coin, side))
            entries.append(GalleryEntry(coin.id, side, f"{coin.id}/{side.value}", f"mint:{coin.id}"))
    gallery.add(embedder.embed(images), entries)
    return gallery


def compose_cup(coins: Sequence[tuple[CoinType, Side]], size: int = 480) -> UInt8Array:
    """Lay the faces on a grid over a grey table (apart, never touching); ``(size, size, 3)`` uint8 BGR."""
    image = np.full((size, size, 3), TABLE_BGR, np.uint8)
    cols = int(np.ceil(np.sqrt(len(coins))))
    cell = size // max(cols, 1)
    face = min(FACE_PX, cell - 12)
    for i, (coin, side) in enumerate(coins):
        r, c = divmod(i, cols)
        y, x = r * cell + (cell - face) // 2, c * cell + (cell - face) // 2
        image[y : y + face, x : x + face] = face_bgr(coin, side, face)
    return image


def four_coins(coin: CoinType) -> UInt8Array:
    """A cup of four coins of ``coin`` as laid: obverse and reverse up in turn (:func:`compose_cup`)."""
    return compose_cup([(coin, Side.OBVERSE), (coin, Side.REVERSE)] * 2)


def find_discs(image: UInt8Array, min_area: int = 200) -> list[tuple[float, float, float, float]]:
    """Bounding boxes ``x1, y1, x2, y2`` of the regions that differ from the table, in reading order."""
    diff = np.abs(image.astype(np.int16) - np.array(TABLE_BGR, np.int16)).max(axis=2)
    mask = (diff > 12).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    boxes = [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h, area in stats[1:n] if area >= min_area]
    return sorted(boxes, key=lambda b: (round(b[1] / 40), b[0]))


class NearestTypePipeline:
    """PASS when every found coin's nearest reference is the expected type (see the module docstring).

    A coin whose nearest reference is one of ``turn_over`` (type, side) references is marked ``shared`` and named
    to turn over; a cup whose only objection is such coins is a FLAG with ``turn_first``, as the station's pipeline
    gives one for coins on a family's shared obverse.

    Args:
        embedder: embeds the coin crops.
        gallery: the references.
        threshold: the share of agreeing coins needed for PASS.
        turn_over: references that prove nothing as they lie.
    """

    def __init__(
        self,
        embedder: Embedder,
        gallery: Gallery,
        threshold: float = 0.99,
        turn_over: frozenset[tuple[str, Side]] = frozenset(),
    ) -> None:
        self.embedder = embedder
        self.gallery = gallery
        self.threshold = threshold
        self.turn_over = turn_over
        self.version = f"nearest-type+{embedder.version}"

    def run(self, frame: Frame, expected_type: str, *, expected_count: int | None = None) -> Verdict:
        t0 = time.perf_counter()
        boxes = find_discs(frame.image)
        crops = [frame.image[int(b[1]) : int(b[3]), int(b[0]) : int(b[2])] for b in boxes]
        t1 = time.perf_counter()
        emb = self.embedder.embed(crops)
        t2 = time.perf_counter()
        matches = self.gallery.search(emb, k=3) if len(crops) else []
        coins = []
        reasons = []
        for i, (box, ms) in enumerate(zip(boxes, matches, strict=True)):
            shared = bool(ms) and (ms[0].type_id, ms[0].side) in self.turn_over
            odd = not shared and (not ms or ms[0].type_id != expected_type)
            if odd:
                reasons.append(f"coin {i + 1} looks like {ms[0].type_id if ms else 'nothing enrolled'}")
            coins.append(CoinEvidence(i, box, tuple(ms), None, 1.0, False, 0.0, odd, shared=shared))
        to_turn = [c.index + 1 for c in coins if c.shared]
        turn_first = bool(to_turn) and not reasons
        if to_turn:
            reasons.insert(0, f"coins {', '.join(map(str, to_turn))} show a shared side — turn them over")
        p = sum(not (c.suspicious or c.shared) for c in coins) / len(coins) if coins else 0.0
        if not coins:
            reasons.append("no coin found")
        count = count_reason(len(coins), expected_count)  # the production pipeline's count rule
        if count:
            reasons.insert(0, count)
            turn_first = False
        decision = Decision.PASS if coins and p >= self.threshold and not count else Decision.FLAG
        timings = {"find": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "search": (time.perf_counter() - t2) * 1e3}
        return Verdict(
            decision,
            expected_type,
            p,
            self.threshold,
            tuple(reasons),
            tuple(coins),
            self.version,
            timings,
            turn_first=turn_first,
            expected_count=expected_count,
        )
