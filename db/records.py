"""Frozen dataclasses that cross the database boundary: what a station logs, and what review and retraining read.

:class:`VerdictRecord` is the input of :meth:`db.repository.VerdictRepository.log_verdict`; it round-trips through
JSON (images base64-encoded) so the spool can journal it. :class:`ReviewItem`, :class:`TrainingCup` and
:class:`TrainingCoin` are what the repository returns; no ORM object leaves ``db``.
"""

from __future__ import annotations

import base64
import math
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from db.schema import LabelKind
from models.types import Decision, Side, Verdict

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Return ``(width, height)`` read from a JPEG's frame header without decoding the image.

    Raises:
        ValueError: when ``data`` is not a JPEG or has no frame header.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _JPEG_SOF:
            if pos + 9 > n:
                break
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise ValueError("JPEG without a frame header")


@dataclass(frozen=True)
class CoinRecord:
    """One coin as logged.

    Attributes:
        index: position in the detector's order (unique within the cup, ``>= 0``).
        bbox: ``x1, y1, x2, y2`` in frame pixels.
        confidence: detector score in ``[0, 1]``.
        partial: cut by the image edge or the cup rim.
        diameter_mm: measured diameter, ``None`` when the camera is uncalibrated.
        top_type: best gallery match's coin type, ``None`` without a match.
        top_side: best match's side.
        top_score: best match's similarity.
        crop_jpeg: the background-removed crop as JPEG bytes, stored content-addressed.
        mask_png: the crop's mask as PNG bytes, stored content-addressed.
        embedding: ``(D,)`` float32 embedding as little-endian bytes.
    """

    index: int
    bbox: tuple[float, float, float, float]
    confidence: float
    partial: bool = False
    diameter_mm: float | None = None
    top_type: str | None = None
    top_side: Side | None = None
    top_score: float | None = None
    crop_jpeg: bytes | None = None
    mask_png: bytes | None = None
    embedding: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (bytes base64-encoded)."""
        return {
            "index": self.index,
            "bbox": list(self.bbox),
            "confidence": self.confidence,
            "partial": self.partial,
            "diameter_mm": self.diameter_mm,
            "top_type": self.top_type,
            "top_side": None if self.top_side is None else self.top_side.value,
            "top_score": self.top_score,
            "crop_jpeg": _b64(self.crop_jpeg),
            "mask_png": _b64(self.mask_png),
            "embedding": _b64(self.embedding),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CoinRecord:
        """Inverse of :meth:`to_json`."""
        x1, y1, x2, y2 = (float(v) for v in data["bbox"])
        side = data.get("top_side")
        return cls(
            index=int(data["index"]),
            bbox=(x1, y1, x2, y2),
            confidence=float(data["confidence"]),
            partial=bool(data["partial"]),
            diameter_mm=data.get("diameter_mm"),
            top_type=data.get("top_type"),
            top_side=None if side is None else Side(side),
            top_score=data.get("top_score"),
            crop_jpeg=_unb64(data.get("crop_jpeg")),
            mask_png=_unb64(data.get("mask_png")),
            embedding=_unb64(data.get("embedding")),
        )


@dataclass(frozen=True)
class VerdictRecord:
    """Everything :meth:`~db.repository.VerdictRepository.log_verdict` stores for one cup.

    Attributes:
        station: the station's name (created on first use).
        operator: a registered operator's name.
        order: order number, ``None`` for a cup checked without an order.
        expected_type: the coin type the cup should hold.
        image_jpeg: the cup photograph, JPEG bytes.
        coins: per-coin records.
        decision: PASS or FLAG.
        p_correct: calibrated probability that every coin is the expected type, in ``[0, 1]``.
        threshold: the acceptance threshold in force.
        reasons: plain-language reasons.
        model_version: the bundle version that decided.
        timings_ms: stage name to milliseconds.
        idempotency_key: a client-generated UUID; logging the same key twice stores one verdict.
        created_at: when the verdict was made, timezone-aware.
        recheck_of: the idempotency key of an earlier check of this same cup, when this photograph was taken after
            the operator turned over the coins that check named; ``None`` for a cup's first check.
        expected_count: how many coins the order asked for (``None``: it did not say).
    """

    station: str
    operator: str
    order: str | None
    expected_type: str
    image_jpeg: bytes
    coins: tuple[CoinRecord, ...]
    decision: Decision
    p_correct: float
    threshold: float
    reasons: tuple[str, ...]
    model_version: str
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    idempotency_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    recheck_of: str | None = None
    expected_count: int | None = None

    def __post_init__(self) -> None:
        if not self.station or not self.operator or not self.expected_type:
            raise ValueError("station, operator and expected_type must be non-empty")
        if not (0.0 <= self.p_correct <= 1.0) or math.isnan(self.p_correct):
            raise ValueError(f"p_correct must be in [0, 1], got {self.p_correct}")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        uuid.UUID(self.idempotency_key)  # raises ValueError when malformed
        if self.recheck_of is not None:
            uuid.UUID(self.recheck_of)
            if self.recheck_of == self.idempotency_key:
                raise ValueError("a check cannot be a re-check of itself")
        jpeg_size(self.image_jpeg)  # raises ValueError when not a JPEG

    @classmethod
    def from_verdict(
        cls,
        verdict: Verdict,
        image_jpeg: bytes,
        *,
        station: str,
        operator: str,
        order: str | None = None,
        crops_jpeg: Mapping[int, bytes] | None = None,
        masks_png: Mapping[int, bytes] | None = None,
        embeddings: Mapping[int, npt.NDArray[np.float32]] | None = None,
        idempotency_key: str | None = None,
        created_at: datetime | None = None,
        recheck_of: str | None = None,
    ) -> VerdictRecord:
        """Build a record from the pipeline's :class:`~models.types.Verdict`.

        Args:
            verdict: the pipeline's answer.
            image_jpeg: the photographed frame, JPEG-encoded.
            station: station name.
            operator: operator name.
            order: order number, if any.
            crops_jpeg: coin index → crop JPEG bytes.
            masks_png: coin index → mask PNG bytes.
            embeddings: coin index → ``(D,)`` float32 embedding.
            idempotency_key: reuse to make a retry idempotent; a fresh UUID4 by default.
            created_at: verdict time; now (UTC) by default.
            recheck_of: the idempotency key of the earlier check of this cup this one answers.
        """
        crops, masks, embs = crops_jpeg or {}, masks_png or {}, embeddings or {}
        coins = []
        for ev in verdict.coins:
            top = ev.matches[0] if ev.matches else None
            emb = embs.get(ev.index)
            coins.append(
                CoinRecord(
                    index=ev.index,
                    bbox=ev.bbox,
                    confidence=ev.confidence,
                    partial=ev.partial,
                    diameter_mm=ev.diameter_mm,
                    top_type=None if top is None else top.type_id,
                    top_side=None if top is None else top.side,
                    top_score=None if top is None else top.score,
                    crop_jpeg=crops.get(ev.index),
                    mask_png=masks.get(ev.index),
                    embedding=None if emb is None else np.asarray(emb, dtype="<f4").tobytes(),
                )
            )
        return cls(
            station=station,
            operator=operator,
            order=order,
            expected_type=verdict.expected_type,
            image_jpeg=image_jpeg,
            coins=tuple(coins),
            decision=verdict.decision,
            p_correct=verdict.p_correct,
            threshold=verdict.threshold,
            reasons=tuple(verdict.reasons),
            model_version=verdict.model_version,
            timings_ms=dict(verdict.timings_ms),
            idempotency_key=idempotency_key or str(uuid.uuid4()),
            created_at=created_at or datetime.now(UTC),
            recheck_of=recheck_of,
            expected_count=verdict.expected_count,
        )

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (images base64-encoded, time in ISO 8601)."""
        return {
            "station": self.station,
            "operator": self.operator,
            "order": self.order,
            "expected_type": self.expected_type,
            "image_jpeg": _b64(self.image_jpeg),
            "coins": [c.to_json() for c in self.coins],
            "decision": self.decision.value,
            "p_correct": self.p_correct,
            "threshold": self.threshold,
            "reasons": list(self.reasons),
            "model_version": self.model_version,
            "timings_ms": dict(self.timings_ms),
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at.isoformat(),
            "recheck_of": self.recheck_of,
            "expected_count": self.expected_count,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerdictRecord:
        """Inverse of :meth:`to_json`."""
        image = _unb64(data["image_jpeg"])
        if image is None:
            raise ValueError("record without an image")
        return cls(
            station=data["station"],
            operator=data["operator"],
            order=data.get("order"),
            expected_type=data["expected_type"],
            image_jpeg=image,
            coins=tuple(CoinRecord.from_json(c) for c in data["coins"]),
            decision=Decision(data["decision"]),
            p_correct=float(data["p_correct"]),
            threshold=float(data["threshold"]),
            reasons=tuple(data["reasons"]),
            model_version=data["model_version"],
            timings_ms={str(k): float(v) for k, v in data["timings_ms"].items()},
            idempotency_key=data["idempotency_key"],
            created_at=datetime.fromisoformat(data["created_at"]),
            recheck_of=data.get("recheck_of"),  # absent from journals written before re-checks were linked
            expected_count=data.get("expected_count"),  # absent from journals written before orders had counts
        )


@dataclass(frozen=True)
class OperatorInfo:
    """A registered operator (never the PIN hash)."""

    id: int
    name: str
    role: str
    active: bool


@dataclass(frozen=True)
class OperatorSummary:
    """A registered person as ``cupcheck operators list`` shows them.

    Attributes:
        name: the sign-in name.
        role: ``operator`` or ``supervisor``.
        active: whether they may sign in.
        created_at: when they were registered.
        cups: cups checked under their name, on every station of the database.
        last_check: when they checked their newest cup (``None``: never).
    """

    name: str
    role: str
    active: bool
    created_at: datetime
    cups: int
    last_check: datetime | None


@dataclass(frozen=True)
class OperatorChangeEntry:
    """One row of the append-only ``operator_audit``: ``operator``'s ``action`` (old → new) by ``changed_by``."""

    id: int
    operator: str
    action: str
    old_value: str | None
    new_value: str | None
    changed_by: str
    created_at: datetime
    note: str


@dataclass(frozen=True)
class AuditEntry:
    """One row of the append-only relabel history (``coin_index``: the ruled coin's place in the detector's order,
    ``None`` for a ruling on the whole cup)."""

    id: int
    operator: str
    created_at: datetime
    cup_id: int
    coin_id: int | None
    target: str
    old_value: str | None
    new_value: str
    note: str
    coin_index: int | None = None

    @property
    def what(self) -> str:
        """What was ruled on, as the operator's picture numbers it: ``"cup"`` or ``"coin 2"``."""
        if self.coin_id is None:
            return "cup"
        return self.target if self.coin_index is None else f"coin {self.coin_index + 1}"


@dataclass(frozen=True)
class StoredCoin:
    """One logged coin of a cup, as the review window shows it.

    Attributes:
        coin_id: the row id (a relabel target).
        index: position in the detector's order.
        bbox: ``x1, y1, x2, y2`` in capture pixels.
        confidence: detector score.
        partial: cut by the image edge or the cup rim.
        diameter_mm: measured diameter when the camera was calibrated.
        top_type: best gallery match.
        top_side: its side.
        top_score: its similarity.
        crop_ref: store reference of the crop image, if one was logged.
        mask_ref: store reference of the mask image, if one was logged.
    """

    coin_id: int
    index: int
    bbox: tuple[float, float, float, float]
    confidence: float
    partial: bool
    diameter_mm: float | None
    top_type: str | None
    top_side: Side | None
    top_score: float | None
    crop_ref: str | None
    mask_ref: str | None


@dataclass(frozen=True)
class ReviewItem:
    """One cup in the supervisor's review queue, with the parts of its informativeness score.

    Attributes:
        cup_id: the cup.
        verdict_id: its verdict.
        station: station name.
        expected_type: the type the order asked for.
        decision: the station's decision.
        p_correct: the voter's probability.
        threshold: the threshold in force.
        n_coins: coins found.
        mismatch_share: share of coins whose best match is not the expected type (no match counts as not).
        uncertainty: in ``[0, 1]``, 1 when ``p_correct`` sits on the threshold or at 0.5.
        disagreement: in ``[0, 1]``, ``|coins_wrong - (1 - p_correct)|``, pooled vs per-coin evidence (``coins_wrong``
            1 when any coin's best match is another type).
        rarity: in ``(0, 1]``, ``1 / (1 + labels of this type so far)``.
        score: weighted sum of the three; higher is more worth a person's time.
        labelled: whether the cup carries a current ruling on the whole cup (a coin ruled alone does not count).
        capture_ref: store reference of the photograph.
        created_at: verdict time.
        audit: a PASS drawn for a person to check (:func:`audit_pick`), whatever its score.
        reasons: the station's reasons for its verdict, as the operator read them.
        recheck_of: the cup id of the earlier check this one answers (the operator turned coins it named over, or
            put the camera back after a FLAG given for the camera alone, and checked again), ``None`` for a first
            check.
        recheck_capture_ref: store reference of that earlier check's photograph (the coins before turning).
        recheck_reasons: that earlier check's reasons (why the cup was checked again).
        suspect: cleanlab ranked its ruling among the likely wrong ones at the newest retrain, and nobody has
            ruled on it since.
        operator: who checked the cup.
        order: the order number it was checked for (``None``: the type was picked from the list).
        expected_count: how many coins the order asked for (``None``: it did not say).
        n_instances: coins and objects found: the numbers on the photograph run from 1 to this.
    """

    cup_id: int
    verdict_id: int
    station: str
    expected_type: str
    decision: Decision
    p_correct: float
    threshold: float
    n_coins: int
    mismatch_share: float
    uncertainty: float
    disagreement: float
    rarity: float
    score: float
    labelled: bool
    capture_ref: str | None
    created_at: datetime
    audit: bool = False
    reasons: tuple[str, ...] = ()
    recheck_of: int | None = None
    recheck_capture_ref: str | None = None
    recheck_reasons: tuple[str, ...] = ()
    suspect: bool = False
    operator: str = ""
    order: str | None = None
    expected_count: int | None = None
    n_instances: int = 0


def audit_pick(cup_id: int, share: float) -> bool:
    """Whether a PASSed cup is drawn for a person to check: a stable hash of its id, so about ``share`` of the
    PASSes and the same ones on every station and every reload, whatever the model thought of them."""
    return (zlib.crc32(f"audit:{cup_id}".encode()) % 10_000) / 10_000.0 < share


def ruling_text(cup_ruling: str | None, corrected_type: str | None) -> str | None:
    """How a cup-level ruling reads in a listing: ``confirmed``, or ``corrected to TYPE``; ``None`` for none."""
    if cup_ruling == LabelKind.CORRECTED.value:
        return f"corrected to {corrected_type}"
    return cup_ruling


@dataclass(frozen=True)
class CupActivity:
    """One check as the activity report reads it (:func:`db.activity.read_activity`).

    Attributes:
        cup_id: the cup row (one per photograph).
        at: when the verdict was made, timezone-aware.
        station: the station's name.
        operator: who checked it.
        order: the order number, if one was given.
        expected_type: the type the cup should hold.
        decision: PASS or FLAG.
        p_correct: the voter's probability.
        reasons: the FLAG's reasons, as the operator read them.
        model_version: the bundle that judged it.
        check_ms: frame to verdict in milliseconds (``None``: not recorded).
        n_coins: coins found.
        recheck_of: the cup this check answers after the operator turned coins (``None``: a first check).
        cup_ruling: the current cup-level ruling (``confirmed`` or ``corrected``), if a person gave one.
        corrected_type: the type a ``corrected`` ruling names.
        coin_rulings: current coin-level rulings.
        wrong_coins: coins a person ruled another type, not a coin, or damaged.
        first_ruled_at: when a person first ruled on the cup or one of its coins (``None``: nobody has).
        expected_count: how many coins the order asked for (``None``: it did not say).
    """

    cup_id: int
    at: datetime
    station: str
    operator: str
    order: str | None
    expected_type: str
    decision: Decision
    p_correct: float
    reasons: tuple[str, ...]
    model_version: str
    check_ms: float | None
    n_coins: int
    recheck_of: int | None
    cup_ruling: str | None
    corrected_type: str | None
    coin_rulings: int
    wrong_coins: int
    first_ruled_at: datetime | None = None
    expected_count: int | None = None

    @property
    def ruled(self) -> bool:
        """Whether a person ruled on the cup or one of its coins."""
        return self.cup_ruling is not None or self.coin_rulings > 0

    @property
    def wrong(self) -> bool:
        """Whether a person found a coin that is not the expected type (or damaged) in the cup."""
        corrected = self.cup_ruling == LabelKind.CORRECTED.value and self.corrected_type != self.expected_type
        return corrected or self.wrong_coins > 0


@dataclass(frozen=True)
class StationModel:
    """The model a station judged its newest cup with (:meth:`db.repository.VerdictRepository.station_models`).

    Attributes:
        station: the station's name.
        model_version: the bundle version its newest verdict records.
        at: when that cup was checked.
    """

    station: str
    model_version: str
    at: datetime


@dataclass(frozen=True)
class PruneReport:
    """What :meth:`db.repository.VerdictRepository.prune_images` dropped (or would drop, on a dry run).

    Attributes:
        cups: cups whose photograph and coin crops were dropped; their verdicts, coins and embeddings stay.
        files: store files removed (a file another cup still names stays).
        bytes: their size.
    """

    cups: int
    files: int
    bytes: int


@dataclass(frozen=True)
class TrainingCup:
    """A labelled cup for retraining.

    Attributes:
        cup_id: the cup.
        station: station name (the capture lives in that station's store).
        capture_ref: store reference of the photograph.
        expected_type: the order's type.
        label: the cup-level ruling.
        true_type: the type the cup really holds (``expected_type`` when confirmed).
        model_version: the model that judged it.
        decision: what the station said.
        labelled_at: when the ruling was made.
        split_cup_id: for a first check answered by a labelled re-check (the same coins, its rulings carried
            over), the re-check's id, which decides its train/cal/holdout split (:attr:`split_id`); ``None`` for any
            other cup.
    """

    cup_id: int
    station: str
    capture_ref: str | None
    expected_type: str
    label: LabelKind
    true_type: str
    model_version: str
    decision: Decision
    labelled_at: datetime
    split_cup_id: int | None = None

    @property
    def split_id(self) -> int:
        """The id that decides the cup's split: the re-check's for a first check it answers, so the two
        photographs of one cup never fall in different splits; else its own."""
        return self.cup_id if self.split_cup_id is None else self.split_cup_id


@dataclass(frozen=True)
class SeenBox:
    """One box of a logged cup as the station classified it, whatever a supervisor ruled on it later.

    A supervisor's ruling says what the box truly is; the station judged the cup by what it saw. A washer the station
    took for a coin was one of the coins it passed or flagged the cup on, and a coin it took for an object stopped
    the cup by rule: the retrain must score the cup as it was scored, or a wrong PASS never counts as one.

    Attributes:
        cup_id: its cup.
        coin_id: the coin row (:attr:`db.records.TrainingCoin.coin_id` names the same row).
        index: detector order within the cup.
        is_coin: the station took it for a coin (it gave it a best gallery match); else for a foreign object.
        crop_ref: store reference of the crop JPEG, ``None`` if none was logged (an object's, as the station logs).
        mask_ref: store reference of the mask PNG.
        embedding: ``(D,)`` float32 as logged, or ``None``.
        model_version: the model that judged the cup.
        confidence: detector score as logged.
        partial: cut by the image edge or the cup rim.
        diameter_mm: measured diameter, ``None`` when the camera was uncalibrated.
    """

    cup_id: int
    coin_id: int
    index: int
    is_coin: bool
    crop_ref: str | None
    mask_ref: str | None
    embedding: npt.NDArray[np.float32] | None
    model_version: str
    confidence: float = 1.0
    partial: bool = False
    diameter_mm: float | None = None


@dataclass(frozen=True)
class TrainingCoin:
    """A labelled coin crop for retraining.

    Attributes:
        cup_id: its cup.
        coin_id: the coin row.
        index: detector order within the cup.
        station: station name (the crop lives in that station's store).
        crop_ref: store reference of the crop JPEG, ``None`` if none was logged.
        mask_ref: store reference of the mask PNG.
        label: the ruling in force for this coin (its own, else inherited from the cup).
        true_type: the coin's type, ``None`` for ``not_a_coin``.
        side: the coin's side when known (``wrong_side`` flips the matched side).
        inherited: the label came from the cup, not from the coin itself.
        embedding: ``(D,)`` float32 as logged, or ``None``.
        model_version: the model that judged the cup.
        labelled_at: when the ruling in force was made.
        confidence: detector score as logged.
        partial: cut by the image edge or the cup rim.
        diameter_mm: measured diameter, ``None`` when the camera was uncalibrated.
    """

    cup_id: int
    coin_id: int
    index: int
    station: str
    crop_ref: str | None
    mask_ref: str | None
    label: LabelKind
    true_type: str | None
    side: Side | None
    inherited: bool
    embedding: npt.NDArray[np.float32] | None
    model_version: str
    labelled_at: datetime
    confidence: float = 1.0
    partial: bool = False
    diameter_mm: float | None = None


@dataclass(frozen=True)
class TrainingExport:
    """Everything labelled since a point in time."""

    cups: tuple[TrainingCup, ...]
    coins: tuple[TrainingCoin, ...]

    def newest(self, max_cups: int) -> TrainingExport:
        """The newest ``max_cups`` labelled cups with their coins (by their newest ruling, a cup's or a coin's),
        a first check kept or left with the re-check it goes with (:attr:`TrainingCup.split_id`); the export
        itself when it holds no more."""
        if len(self.cups) <= max_cups:
            return self
        newest: dict[int, datetime] = {}
        split_of = {c.cup_id: c.split_id for c in self.cups}
        stamps = [(c.cup_id, c.labelled_at) for c in self.cups] + [(c.cup_id, c.labelled_at) for c in self.coins]
        for cup_id, at in stamps:
            group = split_of.get(cup_id, cup_id)
            newest[group] = max(at, newest.get(group, at))
        size: dict[int, int] = {}
        for cup in self.cups:
            size[cup.split_id] = size.get(cup.split_id, 0) + 1
        kept: set[int] = set()
        n = 0
        for group in sorted(newest, key=lambda g: newest[g], reverse=True):
            if n + size.get(group, 0) > max_cups:
                break
            kept.add(group)
            n += size.get(group, 0)
        cups = tuple(c for c in self.cups if c.split_id in kept)
        ids = {c.cup_id for c in cups}
        return TrainingExport(cups, tuple(c for c in self.coins if c.cup_id in ids))


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass(frozen=True)
class PassAudit:
    """PASSes a person has ruled on, and how many of them were wrong: the field's own measure of PASS precision.

    Attributes:
        audited: PASSed cups the audit drew with a cup-level ruling (confirmed or corrected).
        wrong: those that were not a clean cup of the expected type: the cup corrected to another type, or a coin
            of it corrected, ruled not a coin or damaged.
        wrong_cups: their cup ids.
    """

    audited: int
    wrong: int
    wrong_cups: tuple[int, ...] = ()

    @property
    def precision(self) -> float:
        """Right PASSes over audited PASSes (``nan`` with none)."""
        return (self.audited - self.wrong) / self.audited if self.audited else math.nan


def pass_audit(export: TrainingExport, share: float) -> PassAudit:
    """Count the PASSed cups of ``export`` the audit drew (:func:`audit_pick` at ``share``) that a person ruled on,
    and the wrong ones among them.

    Only the random draw counts: a PASS a supervisor looked at for another reason (a customer's complaint, a close
    call, a ruling cleanlab suspected) is no random sample of the PASSes, and its bound would mean nothing. Only
    cups with a cup-level ruling count (a PASS whose coins alone were relabelled was not checked whole); a PASS is
    right when the cup holds its expected type and every coin ruling agrees.
    """
    passes = {c.cup_id: c for c in export.cups if c.decision == Decision.PASS and audit_pick(c.cup_id, share)}
    wrong = {cup_id for cup_id, c in passes.items() if c.true_type != c.expected_type}
    for coin in export.coins:
        cup = passes.get(coin.cup_id)
        if cup is not None and (coin.true_type != cup.expected_type or coin.label == LabelKind.DAMAGED):
            wrong.add(coin.cup_id)
    return PassAudit(len(passes), len(wrong), tuple(sorted(wrong)))


@dataclass(frozen=True)
class CoinRuling:
    """A person's current ruling on one coin of a cup.

    Attributes:
        index: the coin's index in its cup (the operator window numbers coins from 1: ``index + 1``).
        kind: the ruling (:class:`db.schema.LabelKind` value).
        corrected_type: the type a ``corrected`` ruling names.
    """

    index: int
    kind: str
    corrected_type: str | None


@dataclass(frozen=True)
class BenchWaiting:
    """The cups a station put aside that nobody has ruled on yet (:func:`db.activity.read_bench_waiting`).

    Attributes:
        waiting: how many, whenever flagged.
        stale: how many of them were flagged before the time asked about.
        oldest: when the oldest of those ``stale`` was flagged, timezone-aware (``None`` when there is none).
    """

    waiting: int
    stale: int
    oldest: datetime | None


@dataclass(frozen=True)
class AsideCup:
    """A flagged cup put aside at a station, with what people have ruled on it since (:func:`db.activity.read_aside`).

    Attributes:
        cup_id: the cup.
        at: when it was flagged, timezone-aware.
        order: its order number, if one was given.
        expected_type: the type it should hold.
        reasons: the FLAG's reasons, as the operator read them.
        cup_ruling: the current cup-level ruling (``confirmed`` or ``corrected``), ``None`` before anyone ruled.
        corrected_type: the type a ``corrected`` ruling names.
        ruled_by: who gave the newest current ruling on the cup or its coins.
        ruled_at: when, timezone-aware.
        coins: current coin-level rulings, by coin index.
        photo: the photograph's store reference (``""``: pruned; ``None``: none logged).
    """

    cup_id: int
    at: datetime
    order: str | None
    expected_type: str
    reasons: tuple[str, ...]
    cup_ruling: str | None
    corrected_type: str | None
    ruled_by: str | None
    ruled_at: datetime | None
    coins: tuple[CoinRuling, ...]
    photo: str | None = None

    @property
    def ruled(self) -> bool:
        """Whether a person ruled on the cup or one of its coins (``False``: it still waits for a ruling)."""
        return self.cup_ruling is not None or bool(self.coins)


@dataclass(frozen=True)
class OrderCheck:
    """One check of a cup for an order, at any station (:func:`db.activity.read_order_checks`).

    Attributes:
        cup_id: the cup.
        at: when it was checked, timezone-aware.
        station: where.
        operator: by whom.
        decision: PASS or FLAG.
        n_coins: coins found.
        expected_count: how many coins the order asked for then (``None``: it did not say).
        reasons: the FLAG's reasons, as the operator read them.
        photo: the photograph's store reference (``""``: pruned; ``None``: not read).
        ruling: the current rulings, the cup's then its coins' (``confirmed; coin 2 corrected to TYPE``, ``coin 3
            not a coin``), ``None`` before anyone ruled.
        expected_type: the type the cup was checked for.
    """

    cup_id: int
    at: datetime
    station: str
    operator: str
    decision: Decision
    n_coins: int
    expected_count: int | None
    reasons: tuple[str, ...] = ()
    photo: str | None = None
    ruling: str | None = None
    expected_type: str = ""
