"""Builders of small, real test inputs for the database tests (JPEG bytes from OpenCV, verdict records)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from db.records import CoinRecord, VerdictRecord
from models.types import Decision, Side

SUPERVISOR, SUPERVISOR_PIN = "sam", "4321"
OPERATOR, OPERATOR_PIN = "olga", "1234"
STATION = "station-1"


def make_jpeg(seed: int, size: tuple[int, int] = (48, 64)) -> bytes:
    """Encode a small random BGR image of ``size = (height, width)`` as JPEG."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def make_png_mask(seed: int) -> bytes:
    """Encode a small random binary mask as PNG."""
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".png", (rng.random((16, 16)) > 0.5).astype(np.uint8) * 255)
    assert ok
    return buf.tobytes()


def make_record(
    seed: int = 0,
    *,
    expected: str = "eur_1",
    top_types: tuple[str | None, ...] = ("eur_1", "eur_1", "eur_1"),
    decision: Decision = Decision.PASS,
    p_correct: float = 0.97,
    threshold: float = 0.9,
    station: str = STATION,
    operator: str = OPERATOR,
    order: str | None = "A-100",
    model_version: str = "m1",
    created_at: datetime | None = None,
    coin_indices: tuple[int, ...] | None = None,
    recheck_of: str | None = None,
) -> VerdictRecord:
    """A verdict record with real JPEG bytes, one coin per entry of ``top_types``."""
    indices = coin_indices if coin_indices is not None else tuple(range(len(top_types)))
    coins = tuple(
        CoinRecord(
            index=idx,
            bbox=(10.0 * i, 5.0, 10.0 * i + 8.0, 13.0),
            confidence=0.9,
            diameter_mm=23.25,
            top_type=t,
            top_side=None if t is None else Side.OBVERSE,
            top_score=None if t is None else 0.8,
            crop_jpeg=make_jpeg(1000 * seed + i + 1, (16, 16)),
            mask_png=make_png_mask(1000 * seed + i + 1),
            embedding=np.full(4, i, dtype="<f4").tobytes(),
        )
        for i, (idx, t) in enumerate(zip(indices, top_types, strict=True))
    )
    return VerdictRecord(
        station=station,
        operator=operator,
        order=order,
        expected_type=expected,
        image_jpeg=make_jpeg(seed),
        coins=coins,
        decision=decision,
        p_correct=p_correct,
        threshold=threshold,
        reasons=() if decision is Decision.PASS else ("a coin does not match",),
        model_version=model_version,
        timings_ms={"detect": 12.5, "embed": 3.0},
        created_at=created_at or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seed),
        recheck_of=recheck_of,
    )


def flagged_cup(expected: str, photo: bytes, coins: tuple[CoinRecord, ...], model_version: str) -> VerdictRecord:
    """A cup a station flagged as not sure enough, as the retrain tests log them before a supervisor rules on them."""
    return VerdictRecord(
        station="bench",
        operator=OPERATOR,
        order=None,
        expected_type=expected,
        image_jpeg=photo,
        coins=coins,
        decision=Decision.FLAG,
        p_correct=0.5,
        threshold=0.9,
        reasons=("not sure enough",),
        model_version=model_version,
    )
