"""Evaluate and benchmark the coin detector, with a Hough-circle baseline side by side.

* Synthetic cups (a ``cupcheck synth`` folder, best rendered with a seed the detector never saw): recall and
  precision at box IoU 0.5, mean mask IoU of matched instances, diameter error where the coin is whole, and the
  same for ``cv2.HoughCircles`` (disc masks) as the baseline.
* Real photos (``euro_kaa/photos/single``): coins counted against the upstream crop counts (a lower bound) and,
  on every photo counted by eye (``models/eye_counts.json``: euro piles and the won photos), against that count
  (within 5 %).
* ``skimage.data.coins()``: 24 coins expected.
* Latency per frame and its ratio to a bare YOLO predict call measured in the same run.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from calibration.camera import CameraCalibration, CupRoi, detect_cup_roi
from models.detector import Detector, DetectorSettings, nms
from models.frames import draw_overlay
from models.masks import instance_full_mask
from models.types import BoolArray, CoinInstance, FloatArray, Frame, UInt8Array

MATCH_IOU = 0.5
HOUGH_LABEL = "Hough circles (baseline)"
SKIMAGE_COINS = 24
OCCLUSION_BINS: tuple[tuple[float, float], ...] = ((0.0, 0.05), (0.05, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 1.01))
"""Hidden-fraction bins for the per-occlusion diameter and mask figures."""


@dataclass(frozen=True)
class CupTruth:
    """Ground truth of one synthetic cup.

    Attributes:
        image: path of the cup image.
        boxes: ``(n, 4)`` float32 visible boxes (exclusive ``x2, y2``).
        masks: ``n`` ``(H, W)`` bool visible masks.
        is_coin: ``(n,)`` bool.
        diameter_px: ``(n,)`` float32 true diameters.
        partial: ``(n,)`` bool.
        occlusion: ``(n,)`` float32.
        px_per_mm: the camera scale.
        cup_radius_px: the cup's interior radius (half the tray side) in pixels.
        tray: the cup's interior region (``None`` on a flat table); see ``tray_known``.
        tray_known: whether the manifest records the region (data sets written before it did not).
    """

    image: Path
    boxes: FloatArray
    masks: list[BoolArray]
    is_coin: np.ndarray
    diameter_px: FloatArray
    partial: np.ndarray
    occlusion: FloatArray
    px_per_mm: float
    cup_radius_px: float = 0.0
    tray: CupRoi | None = None
    tray_known: bool = False


@dataclass(frozen=True)
class Prediction:
    """Detector or baseline output in a library-neutral form.

    Attributes:
        boxes: ``(m, 4)`` float32.
        confidence: ``(m,)`` float32.
        masks: ``m`` ``(H, W)`` bool full-frame masks.
        diameter_px: ``(m,)`` float32.
        is_coin: ``(m,)`` bool.
        partial: ``(m,)`` bool.
    """

    boxes: FloatArray
    confidence: FloatArray
    masks: list[BoolArray]
    diameter_px: FloatArray
    is_coin: np.ndarray
    partial: np.ndarray


def load_truth(data: Path, split: str | None = None, max_cups: int | None = None) -> list[CupTruth]:
    """Read the ground truth of a synthetic data set (``DIR/manifest.json``).

    Args:
        data: the data set folder.
        split: ``"train"``/``"val"`` or ``None`` for every cup.
        max_cups: keep at most this many cups.

    Raises:
        FileNotFoundError: no manifest.
        ValueError: ``max_cups`` below 1.
    """
    if max_cups is not None and max_cups < 1:
        raise ValueError(f"max_cups must be at least 1 (None for every cup), got {max_cups}")
    path = data / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no synthetic data set at {data} ({path} is missing)")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    size = int(manifest.get("image_size", 640))
    out: list[CupTruth] = []
    for cup in manifest["cups"]:
        if split is not None and cup["split"] != split:
            continue
        insts = cup["instances"]
        masks = []
        for inst in insts:
            m = np.zeros((size, size), dtype=np.uint8)
            poly = np.asarray(inst["polygon"], dtype=np.int32).reshape(-1, 1, 2)
            if len(poly) >= 3:
                cv2.fillPoly(m, [poly], 1)
            masks.append(m.astype(bool))
        out.append(
            CupTruth(
                image=data / cup["image"],
                boxes=np.asarray([_polygon_box(i) for i in insts], dtype=np.float32).reshape(-1, 4),
                masks=masks,
                is_coin=np.asarray([bool(i["is_coin"]) for i in insts], dtype=bool),
                diameter_px=np.asarray([i["diameter_px"] for i in insts], dtype=np.float32),
                partial=np.asarray([bool(i["partial"]) for i in insts], dtype=bool),
                occlusion=np.asarray([i["occlusion"] for i in insts], dtype=np.float32),
                px_per_mm=float(cup["px_per_mm"]),
                cup_radius_px=float(cup.get("cup_diameter_mm", 0.0)) * float(cup["px_per_mm"]) / 2.0,
                tray=None if cup.get("tray") is None else CupRoi.from_dict(cup["tray"]),
                tray_known="tray" in cup,
            )
        )
        if max_cups is not None and len(out) >= max_cups:
            break
    return out


def _polygon_box(instance: dict[str, Any]) -> list[float]:
    """The box of an instance's labelled outline, the one its YOLO label and truth mask give.

    The renderer's ``bbox`` spans every visible pixel, slivers showing through gaps between other coins too,
    which neither the outline nor any detector's mask holds (2.7 % of the test mint's instances differ by more
    than 3 px); an instance without an outline keeps it.
    """
    poly = np.asarray(instance["polygon"], dtype=np.float32).reshape(-1, 2)
    if len(poly) < 3:
        return [float(v) for v in instance["bbox"]]
    return [float(poly[:, 0].min()), float(poly[:, 1].min()), float(poly[:, 0].max() + 1), float(poly[:, 1].max() + 1)]


def cup_circle(image: UInt8Array, radius: float) -> CupRoi | None:
    """The cup rim of a known interior ``radius`` (pixels) found by ``cv2.HoughCircles``, or ``None``.

    Stands in for a station's stored cup region when evaluating on synthetic cups.
    """
    if radius <= 0:
        return None
    gray = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 5)
    found = cv2.HoughCircles(
        gray,
        cv2.HOUGH_GRADIENT,
        dp=2,
        minDist=10 * radius,
        param1=80,
        param2=20,
        minRadius=int(0.93 * radius),
        maxRadius=int(1.07 * radius),
    )
    if found is None:
        return None
    x, y, r = (float(v) for v in found[0][0])
    return CupRoi(x, y, r)


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU of ``(n, 4)`` and ``(m, 4)`` boxes: ``(n, m)`` float32."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9), dtype=np.float32)


def match(
    pred_boxes: FloatArray,
    confidence: FloatArray,
    gt_boxes: FloatArray,
    pred_masks: Sequence[BoolArray] | None = None,
    gt_masks: Sequence[BoolArray] | None = None,
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by decreasing confidence at IoU >= 0.5: ``(pred, gt)`` pairs.

    By box IoU, or by mask IoU when both mask lists are given (the instance-segmentation convention: a coin mostly
    hidden under others shows thin slivers that stretch its visible box far beyond what a mask misses).
    """
    iou = box_iou(pred_boxes, gt_boxes)
    if pred_masks is not None and gt_masks is not None:
        boxes = iou
        iou = np.zeros_like(boxes)
        for p, g in zip(*np.nonzero(boxes > 0), strict=True):
            iou[p, g] = mask_iou(
                _crop(pred_masks[p], pred_boxes[p], gt_boxes[g]), _crop(gt_masks[g], pred_boxes[p], gt_boxes[g])
            )
    taken: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for p in np.argsort(-confidence, kind="stable"):
        if iou.shape[1] == 0:
            break
        row = iou[p].copy()
        row[list(taken)] = -1.0
        g = int(np.argmax(row))
        if row[g] >= MATCH_IOU:
            taken.add(g)
            pairs.append((int(p), g))
    return pairs


def _crop(mask: BoolArray, a: FloatArray, b: FloatArray) -> BoolArray:
    """``mask`` cut to the union of boxes ``a`` and ``b`` (both masks of a pair lie inside it)."""
    x0, y0 = int(max(0, min(a[0], b[0]))), int(max(0, min(a[1], b[1])))
    x1, y1 = math.ceil(float(max(a[2], b[2]))), math.ceil(float(max(a[3], b[3])))
    return mask[y0:y1, x0:x1]


def mask_iou(a: BoolArray, b: BoolArray) -> float:
    """IoU of two same-shape bool masks."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def from_instances(instances: Sequence[CoinInstance], width: int, height: int) -> Prediction:
    """Convert detector output to a :class:`Prediction`."""
    return Prediction(
        boxes=np.asarray([i.bbox for i in instances], dtype=np.float32).reshape(-1, 4),
        confidence=np.asarray([i.confidence for i in instances], dtype=np.float32),
        masks=[instance_full_mask(i, width, height) for i in instances],
        diameter_px=np.asarray([i.diameter_px for i in instances], dtype=np.float32),
        is_coin=np.asarray([i.is_coin for i in instances], dtype=bool),
        partial=np.asarray([i.partial for i in instances], dtype=bool),
    )


def hough_circles(image: UInt8Array, min_radius: float, max_radius: float) -> list[tuple[float, float, float]]:
    """The baseline: ``cv2.HoughCircles`` on a blurred grey image; ``(cx, cy, r)`` per circle."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    gray = cv2.medianBlur(gray, 5)
    circles = cv2.HoughCircles(
        gray,
        cv2.HOUGH_GRADIENT,
        dp=1.2,
        minDist=max(4.0, 1.5 * min_radius),
        param1=100,
        param2=30,
        minRadius=max(1, int(min_radius)),
        maxRadius=max(2, int(max_radius)),
    )
    if circles is None:
        return []
    return [(float(x), float(y), float(r)) for x, y, r in circles[0]]


def hough_prediction(image: UInt8Array, min_radius: float, max_radius: float) -> Prediction:
    """Hough circles as a :class:`Prediction` (disc masks, no classes, confidence by rank)."""
    h, w = image.shape[:2]
    circles = hough_circles(image, min_radius, max_radius)
    masks, boxes = [], []
    for cx, cy, r in circles:
        m = np.zeros((h, w), dtype=np.uint8)
        cv2.circle(m, (round(cx), round(cy)), round(r), 1, -1)
        masks.append(m.astype(bool))
        boxes.append([max(0.0, cx - r), max(0.0, cy - r), min(float(w), cx + r), min(float(h), cy + r)])
    n = len(circles)
    return Prediction(
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.linspace(1.0, 0.5, n, dtype=np.float32) if n else np.zeros(0, np.float32),
        masks=masks,
        diameter_px=np.asarray([2 * c[2] for c in circles], dtype=np.float32),
        is_coin=np.ones(n, dtype=bool),
        partial=np.zeros(n, dtype=bool),
    )


@dataclass
class DetectionTally:
    """Counts over the cups of one detector (or the baseline): matches, masks, diameters, misses, false boxes, and
    per cup how many coins were found against how many lie there (:meth:`add` each cup, then :meth:`summary`)."""

    gt: int = 0
    gt_coins: int = 0
    pred: int = 0
    tp: int = 0
    coin_tp: int = 0
    class_ok: int = 0
    mask_ious: list[float] | None = None
    diam_err: list[float] | None = None
    diam_err_clear: list[float] | None = None
    partial_confusion: tuple[int, int, int, int] = (0, 0, 0, 0)
    mask_tp: int = 0
    mask_coin_tp: int = 0
    by_occlusion: list[tuple[float, float, float]] | None = None
    missed: Counter[str] = field(default_factory=Counter)
    false: Counter[str] = field(default_factory=Counter)
    count_diff: Counter[int] = field(default_factory=Counter)  # found coins minus true coins, per cup

    def __post_init__(self) -> None:
        self.mask_ious, self.diam_err, self.diam_err_clear, self.by_occlusion = [], [], [], []

    def add(self, truth: CupTruth, pred: Prediction, weak: FloatArray | None = None) -> None:
        """Count one cup; ``weak``: the boxes the detector saw under its confidence floor (why coins were missed)."""
        assert self.mask_ious is not None and self.diam_err is not None and self.diam_err_clear is not None
        self.gt += len(truth.boxes)
        self.gt_coins += int(truth.is_coin.sum())
        self.pred += len(pred.boxes)
        self.count_diff[int(pred.is_coin.sum()) - int(truth.is_coin.sum())] += 1
        mask_pairs = match(pred.boxes, pred.confidence, truth.boxes, pred.masks, truth.masks)
        for _, g in mask_pairs:
            self.mask_tp += 1
            self.mask_coin_tp += int(truth.is_coin[g])
        pairs = match(pred.boxes, pred.confidence, truth.boxes)
        self.missed.update(miss_reasons(truth, pairs, mask_pairs, weak))
        self.false.update(false_box_reasons(truth, pred, pairs))
        for p, g in pairs:
            self.tp += 1
            self.coin_tp += int(truth.is_coin[g])
            self.class_ok += int(pred.is_coin[p] == truth.is_coin[g])
            self.mask_ious.append(mask_iou(pred.masks[p], truth.masks[g]))
            if truth.is_coin[g]:
                tp_, fp_, fn_, tn_ = self.partial_confusion
                t, q = bool(truth.partial[g]), bool(pred.partial[p])
                self.partial_confusion = (
                    tp_ + (t and q),
                    fp_ + (q and not t),
                    fn_ + (t and not q),
                    tn_ + (not t and not q),
                )
            if truth.is_coin[g] and not truth.partial[g]:
                err = abs(float(pred.diameter_px[p]) - float(truth.diameter_px[g])) / float(truth.diameter_px[g])
                self.diam_err.append(err)
                assert self.by_occlusion is not None
                self.by_occlusion.append((float(truth.occlusion[g]), err, self.mask_ious[-1]))
                if truth.occlusion[g] < 0.1:
                    self.diam_err_clear.append(err)

    def summary(self) -> dict[str, Any]:
        assert self.mask_ious is not None and self.diam_err is not None and self.diam_err_clear is not None

        def pct(values: list[float], q: float) -> float | None:
            return float(np.percentile(values, q)) if values else None

        return {
            "gt_instances": self.gt,
            "predictions": self.pred,
            "recall": self.tp / self.gt if self.gt else None,
            "coin_recall": self.coin_tp / self.gt_coins if self.gt_coins else None,
            "precision": self.tp / self.pred if self.pred else None,
            "class_accuracy": self.class_ok / self.tp if self.tp else None,
            "coin_recall_mask_match": self.mask_coin_tp / self.gt_coins if self.gt_coins else None,
            "precision_mask_match": self.mask_tp / self.pred if self.pred else None,
            "mean_mask_iou": float(np.mean(self.mask_ious)) if self.mask_ious else None,
            "p5_mask_iou": pct(self.mask_ious, 5),
            "diameter_error_mean": float(np.mean(self.diam_err)) if self.diam_err else None,
            "diameter_error_median": pct(self.diam_err, 50),
            "diameter_error_p95": pct(self.diam_err, 95),
            "diameter_within_2pct": float(np.mean(np.asarray(self.diam_err) <= 0.02)) if self.diam_err else None,
            "diameter_error_mean_unoccluded": float(np.mean(self.diam_err_clear)) if self.diam_err_clear else None,
            "n_diameters": len(self.diam_err),
            "partial_tp_fp_fn_tn": list(self.partial_confusion),
            "whole_coins_by_occlusion": self._bins(),
            "cups_counted_exactly": self.count_diff[0] / cups if (cups := self.count_diff.total()) else None,
            "count_differences": {str(k): v for k, v in sorted(self.count_diff.items())},
            "missed_coins": dict(self.missed.most_common()),
            "false_boxes": dict(self.false.most_common()),
        }

    def _bins(self) -> list[dict[str, float]]:
        rows = np.asarray(self.by_occlusion or [], dtype=np.float64).reshape(-1, 3)
        out = []
        for lo, hi in OCCLUSION_BINS:
            sel = rows[(rows[:, 0] >= lo) & (rows[:, 0] < hi)]
            if len(sel):
                out.append(
                    {
                        "occlusion_from": lo,
                        "occlusion_to": hi,
                        "n": float(len(sel)),
                        "diameter_error_mean": float(sel[:, 1].mean()),
                        "diameter_error_median": float(np.median(sel[:, 1])),
                        "mean_mask_iou": float(sel[:, 2].mean()),
                    }
                )
        return out


WEAK_CONF = 0.05
"""The confidence down to which YOLO's boxes are looked at when telling why a coin was missed."""
MOSTLY_HIDDEN = 0.85
"""A coin hidden over this share of its face shows slivers at most."""
MISS_REASONS = {
    "cut_box_off": "cut (mask IoU >= 0.5) but its box IoU < 0.5: slivers or a piece left apart",
    "weak_box": "a YOLO box under the confidence floor (IoU >= 0.5)",
    "mostly_hidden": f"more than {MOSTLY_HIDDEN:.0%} hidden, no box",
    "other": "no box",
}
FALSE_REASONS = {
    "piece_of_found": "a piece or duplicate of a coin found by another box",
    "piece_of_missed": "on a coin no box matched (a piece, or a box too far off)",
    "no_instance": "on no instance (tray, gaps between coins)",
}


def miss_reasons(
    truth: CupTruth,
    pairs: Sequence[tuple[int, int]],
    mask_pairs: Sequence[tuple[int, int]],
    weak: FloatArray | None = None,
) -> Counter[str]:
    """Why each coin of ``truth`` no prediction matched at box IoU 0.5 was missed (keys of :data:`MISS_REASONS`).

    Args:
        truth: the cup.
        pairs: the box-IoU matches.
        mask_pairs: the mask-IoU matches.
        weak: boxes the detector's YOLO found under its confidence floor, ``(k, 4)``.
    """
    found = {g for _, g in pairs}
    cut = {g for _, g in mask_pairs}
    out: Counter[str] = Counter()
    for g in np.flatnonzero(truth.is_coin):
        if g in found:
            continue
        if g in cut:
            out["cut_box_off"] += 1
        elif weak is not None and len(weak) and float(box_iou(weak, truth.boxes[g : g + 1]).max()) >= MATCH_IOU:
            out["weak_box"] += 1
        elif truth.occlusion[g] > MOSTLY_HIDDEN:
            out["mostly_hidden"] += 1
        else:
            out["other"] += 1
    return out


def false_box_reasons(truth: CupTruth, pred: Prediction, pairs: Sequence[tuple[int, int]]) -> Counter[str]:
    """What each prediction no truth instance matched at box IoU 0.5 lies on (keys of :data:`FALSE_REASONS`)."""
    matched_pred = {p for p, _ in pairs}
    matched_gt = {g for _, g in pairs}
    out: Counter[str] = Counter()
    for p in range(len(pred.boxes)):
        if p in matched_pred:
            continue
        overlap = [int(np.count_nonzero(pred.masks[p] & m)) for m in truth.masks]
        area = max(1, int(np.count_nonzero(pred.masks[p])))
        g = int(np.argmax(overlap)) if overlap else -1
        if g < 0 or overlap[g] < 0.25 * area:
            out["no_instance"] += 1
        elif g in matched_gt:
            out["piece_of_found"] += 1
        else:
            out["piece_of_missed"] += 1
    return out


def evaluate_synthetic(
    detector: Detector,
    truths: Sequence[CupTruth],
    *,
    baseline: bool = True,
    progress: bool = True,
    on_cup: Callable[[int, Frame, list[CoinInstance], CupTruth], None] | None = None,
) -> dict[str, Any]:
    """Detector (and Hough baseline) metrics over synthetic cups.

    Args:
        detector: the detector under test; per cup it gets the manifest's scale and cup region (rim cuts), as a
            calibrated station would; for a data set whose manifest does not record the region, the circle found
            by ``calibration.camera.detect_cup_roi`` (else Hough at the known cup radius).
        truths: the cups.
        baseline: also run the Hough baseline with the radius range implied by each cup's scale.
        progress: tqdm bar on stderr.
        on_cup: called with each cup's index, frame, detections and truth (overlays).

    Returns:
        ``{"detector": {...}, "baseline": {...}, "roi": {...}}``: the :class:`DetectionTally` summaries and, for cups
        whose region is known, how ``detect_cup_roi`` did by cup shape (:func:`roi_outcome`).
    """
    det, hough = DetectionTally(), DetectionTally()
    weak_detector = detector.with_settings(conf=WEAK_CONF)
    rois: dict[str, Counter[str]] = {}
    for k, truth in enumerate(tqdm(truths, desc="eval synthetic", disable=not progress)):
        image = cv2.imread(str(truth.image), cv2.IMREAD_COLOR)
        if image is None:
            continue
        frame = Frame(image=np.asarray(image, np.uint8), source=str(truth.image))
        h, w = image.shape[:2]
        if truth.tray_known:
            roi = truth.tray
            shape = "flat" if truth.tray is None else truth.tray.shape
            rois.setdefault(shape, Counter())[roi_outcome(detect_cup_roi(frame.image), truth.tray)] += 1
        else:
            roi = detect_cup_roi(frame.image) or cup_circle(frame.image, truth.cup_radius_px)
        cal = CameraCalibration(px_per_mm=truth.px_per_mm, image_width=w, image_height=h, method="manual", roi=roi)
        found = detector.with_calibration(cal).detect(frame)
        low = weak_detector.scaled_boxes(frame.image)
        det.add(truth, from_instances(found, w, h), low.xyxy[low.confidence < detector.settings.conf])
        if on_cup is not None:
            on_cup(k, frame, found, truth)
        if baseline:
            s = truth.px_per_mm
            hough.add(truth, hough_prediction(frame.image, 7.0 * s, 16.0 * s))
    return {
        "detector": det.summary(),
        "baseline": hough.summary() if baseline else None,
        "roi": {shape: dict(c) for shape, c in sorted(rois.items())},
    }


ROI_TOLERANCE = 0.03
"""A found cup region is right when its centre and size are within this fraction of the true size."""


def roi_outcome(found: CupRoi | None, truth: CupRoi | None) -> str:
    """``"right"``, ``"wrong"`` (found but elsewhere, another size or shape), ``"missed"`` or ``"none"`` (a flat
    table and nothing found, which is right too)."""
    if truth is None:
        return "none" if found is None else "wrong"
    if found is None:
        return "missed"
    tol = ROI_TOLERANCE * truth.radius
    near = math.hypot(found.x - truth.x, found.y - truth.y) <= tol and abs(found.radius - truth.radius) <= tol
    return "right" if near and found.shape == truth.shape else "wrong"


def _real_radius_range(image: UInt8Array) -> tuple[float, float]:
    side = max(image.shape[:2])
    return 0.02 * side, 0.09 * side


EYE_COUNTS = Path(__file__).resolve().parent / "eye_counts.json"
"""Coins counted by eye on some of the real photos (path below the real data folder → count)."""
EYE_TOLERANCE = 0.05
"""The detector's count must lie within this share of the count by eye."""


def eye_counts(path: Path = EYE_COUNTS) -> dict[str, int]:
    """The counts by eye: photo path below the real data folder → coins."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): int(v) for k, v in data["counts"].items()}


def within_eye(found: int, eye: int) -> bool:
    """Whether a count lies within :data:`EYE_TOLERANCE` of the count by eye."""
    return abs(found - eye) <= EYE_TOLERANCE * eye


REAL_PHOTOS_META = Path("euro_kaa") / "photos.json"
"""Below the real data folder: the euro photos with their upstream crop counts, what :func:`count_real` reads."""


def check_real_root(real_root: Path) -> Path:
    """``real_root`` when it holds what :func:`count_real` reads (:data:`REAL_PHOTOS_META`).

    Raises:
        FileNotFoundError: it does not: a folder one level off, or a copy without the euro photos.
    """
    if not (real_root / REAL_PHOTOS_META).is_file():
        raise FileNotFoundError(
            f"{real_root} holds no {REAL_PHOTOS_META.as_posix()}: give the real data folder (…/data/real), the one "
            "holding euro_kaa/ and won_cho0h5/"
        )
    return real_root


def count_real(
    detector: Detector,
    real_root: Path,
    *,
    progress: bool = True,
    on_photo: Callable[[str, Frame, list[CoinInstance]], None] | None = None,
) -> list[dict[str, Any]]:
    """Count coins in ``euro_kaa/photos/single`` against the upstream crop counts (a lower bound), and on every
    photo counted by eye (:data:`EYE_COUNTS`; the won photos too) against that count.

    Returns:
        Per photo: ``file`` (below ``real_root``), ``lower_bound`` (``None`` without an upstream count), ``eye``
        (the count by eye, or ``None``), ``detector`` (coins found), ``hough`` (baseline count).
    """
    meta = json.loads((real_root / REAL_PHOTOS_META).read_text(encoding="utf-8"))
    eye = eye_counts()
    bounds: dict[str, int | None] = {
        f"euro_kaa/{p['file']}": int(sum(p["crop_counts"].values()))
        for p in meta["photos"]
        if p["kind"] == "single" and p["crop_counts"]
    }
    for name in eye:
        bounds.setdefault(name, None)
    rows: list[dict[str, Any]] = []
    for name, bound in tqdm(bounds.items(), desc="eval real", disable=not progress):
        path = real_root / name
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        frame = Frame(image=np.asarray(image, np.uint8), source=str(path))
        found = [i for i in detector.detect(frame) if i.is_coin]
        if on_photo is not None:
            on_photo(name, frame, found)
        lo, hi = _real_radius_range(frame.image)
        rows.append(
            {
                "file": name,
                "lower_bound": bound,
                "eye": eye.get(name),
                "detector": len(found),
                "hough": len(hough_circles(frame.image, lo, hi)),
            }
        )
    return rows


def count_skimage(detector: Detector) -> dict[str, Any] | None:
    """Coins found in ``skimage.data.coins()`` (24 expected); ``None`` without scikit-image."""
    try:
        from skimage import data as skdata
    except ImportError:
        return None
    gray = np.asarray(skdata.coins(), dtype=np.uint8)
    frame = Frame(image=np.ascontiguousarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8))
    image = frame.image
    found = [i for i in detector.detect(frame) if i.is_coin]
    return {
        "expected": SKIMAGE_COINS,
        "detector": len(found),
        "hough": len(hough_circles(image, 15, 40)),
        "image": image,
        "instances": found,
    }


def check_imgsz(size: int) -> int:
    """``size`` as a YOLO input size: a positive multiple of 32, YOLO's stride.

    ultralytics runs any other size at the next multiple of 32 with a warning, and a row labelled with the size
    asked for would show another size's numbers.

    Raises:
        ValueError: ``size`` is not a positive multiple of 32 (the message names the nearest that are).
    """
    if size < 32 or size % 32:
        below, above = max(32, 32 * (size // 32)), max(32, 32 * -(-size // 32))
        near = f"{below}" if below == above else f"{below} or {above}"
        raise ValueError(f"input size {size} is not a positive multiple of 32 (YOLO's stride): give {near}")
    return int(size)


def latency(detector: Detector, frames: Sequence[Frame], repeats: int = 1) -> dict[str, float]:
    """Median milliseconds per frame of ``detect`` and of the bare YOLO call, measured interleaved, with the thread
    counts they ran with (``yolo_threads``: YOLO's ONNX Runtime session, or torch's; ``torch_threads``).

    Raises:
        ValueError: ``repeats`` below 1, or the detector's input size is not a multiple of 32 (:func:`check_imgsz`).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    check_imgsz(detector.settings.imgsz)
    if not frames:
        return {}
    detector.detect(frames[0])
    full: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        for f in frames:
            t0 = time.perf_counter()
            detector.boxes(f.image)
            t1 = time.perf_counter()
            detector.detect(f)
            t2 = time.perf_counter()
            bare.append(1000 * (t1 - t0))
            full.append(1000 * (t2 - t1))
    med_full, med_bare = statistics.median(full), statistics.median(bare)
    return {
        "detect_ms_median": med_full,
        "detect_ms_p90": float(np.percentile(full, 90)),
        "yolo_predict_ms_median": med_bare,
        "ratio_to_bare_predict": med_full / med_bare if med_bare > 0 else math.nan,
        "frames": float(len(full)),
        "frame_side_px": float(max(frames[0].image.shape[:2])),
        "imgsz": float(detector.settings.imgsz),
        "yolo_threads": float(detector.yolo_threads),
        "torch_threads": float(torch.get_num_threads()),
    }


def _blank(v: Any) -> str:
    return "" if v is None else str(v)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{100 * v:.2f} %" if pct else f"{v:.4f}"
    return str(v)


def _threads_text(lat: dict[str, Any]) -> str:
    """The thread counts a latency measurement ran with, as its report heading names them."""
    if "yolo_threads" not in lat:  # a report.json written before they were recorded
        return "threads not recorded"
    return f"YOLO {lat['yolo_threads']:.0f} thread(s), torch {lat['torch_threads']:.0f}"


def write_report(out: Path, report: dict[str, Any]) -> Path:
    """Write ``report.json`` and a readable ``report.md`` into ``out``; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Detector evaluation ({report.get('version', '?')})", ""]
    syn = report.get("synthetic")
    if syn:
        lines += [
            f"Synthetic cups: {report.get('synthetic_cups')} from `{report.get('synthetic_data')}`; matching at box "
            "IoU 0.5 (the `*_mask_match` rows: at mask IoU 0.5, the instance-segmentation convention); mask IoU "
            "over the instances found (a missed coin is counted in recall, not here); diameters of whole (not "
            "partial) coins against the true diameter.",
            "",
            *([str(report["held_out"]["line"]), ""] if report.get("held_out") else []),
            f"| metric | detector | {HOUGH_LABEL} |",
            "|---|---|---|",
        ]
        base = syn.get("baseline") or {}
        for key, pct in (
            ("recall", True),
            ("coin_recall", True),
            ("precision", True),
            ("class_accuracy", True),
            ("coin_recall_mask_match", True),
            ("precision_mask_match", True),
            ("mean_mask_iou", False),
            ("p5_mask_iou", False),
            ("diameter_error_mean", True),
            ("diameter_error_median", True),
            ("diameter_error_p95", True),
            ("diameter_within_2pct", True),
            ("diameter_error_mean_unoccluded", True),
            ("cups_counted_exactly", True),
        ):
            lines.append(f"| {key} | {_fmt(syn['detector'].get(key), pct)} | {_fmt(base.get(key), pct)} |")
        bins = syn["detector"].get("whole_coins_by_occlusion") or []
        if bins:
            lines += [
                "",
                "Whole (not partial) coins of the detector by hidden fraction:",
                "",
                "| occlusion | n | diameter error mean | median | mean mask IoU |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {b['occlusion_from']:.2f}-{min(b['occlusion_to'], 1.0):.2f} | {b['n']:.0f} | "
                f"{_fmt(b['diameter_error_mean'], True)} | {_fmt(b['diameter_error_median'], True)} | "
                f"{_fmt(b['mean_mask_iou'])} |"
                for b in bins
            ]
        diffs = syn["detector"].get("count_differences") or {}
        if diffs:
            lines += [
                "",
                "Coins found minus coins there, per cup (what an order's count is checked against; objects are not "
                "counted): " + ", ".join(f"{int(k):+d}: {v}" for k, v in diffs.items()) + ".",
            ]
        missed, false = syn["detector"].get("missed_coins") or {}, syn["detector"].get("false_boxes") or {}
        if missed or false:
            lines += ["", "Why the detector missed coins and what its false boxes lie on (box IoU 0.5):", ""]
            lines += ["| | n |", "|---|---|"]
            lines += [f"| missed: {MISS_REASONS.get(k, k)} | {v} |" for k, v in missed.items()]
            lines += [f"| false box: {FALSE_REASONS.get(k, k)} | {v} |" for k, v in false.items()]
        conf = syn["detector"].get("partial_tp_fp_fn_tn")
        rois = syn.get("roi") or {}
        if conf:
            tp, fp, fn, _ = conf
            where = (
                "the cup region stored with each cup, as a calibrated station has it"
                if rois
                else "cup circle from detect_cup_roi, else Hough at the known cup radius"
            )
            lines += [
                "",
                f"Partial flag of matched coins ({where}): tp/fp/fn/tn = {conf}; "
                f"precision {_fmt(tp / (tp + fp) if tp + fp else None, True)}, "
                f"recall {_fmt(tp / (tp + fn) if tp + fn else None, True)}.",
            ]
        if rois:
            lines += [
                "",
                "`detect_cup_roi` (the rim finder `cupcheck calibrate` uses) against the stored region, by cup shape:",
                "",
                "| cup | n | right | wrong | missed | nothing found (right on a flat table) |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {shape} | {sum(c.values())} | {c.get('right', 0)} | {c.get('wrong', 0)} | {c.get('missed', 0)} | "
                f"{c.get('none', 0)} |"
                for shape, c in rois.items()
            ]
        lines.append("")
    sizes = report.get("imgsz_sweep")
    if sizes:
        lines += [
            "## Input size",
            "",
            "| imgsz | recall | precision | mean mask IoU | detect ms |",
            "|---|---|---|---|---|",
        ]
        for row in sizes:
            lines.append(
                f"| {row['imgsz']} | {_fmt(row['recall'], True)} | {_fmt(row['precision'], True)} | "
                f"{_fmt(row['mean_mask_iou'])} | {row['detect_ms_median']:.1f} |"
            )
        lines.append("")
    real = report.get("real")
    if real:
        single = [r for r in real if r.get("lower_bound") is not None]
        found = sum(r["detector"] for r in single)
        bound = sum(r["lower_bound"] for r in single)
        hough = sum(r["hough"] for r in single)
        seen = [r for r in real if r.get("eye") is not None]
        close = sum(within_eye(r["detector"], r["eye"]) for r in seen)
        below = sum(r["detector"] < r["lower_bound"] for r in single)
        lines += [
            "## Real photos (euro_kaa/photos/single, and every photo counted by eye)",
            "",
            f"Single piles: coins found {found} vs upstream crop counts {bound} (a lower bound; {below} of "
            f"{len(single)} photos below it); {HOUGH_LABEL}: {hough}. Counted by eye on {len(seen)} photos "
            f"({sum(r['eye'] for r in seen)} coins, {sum(r['detector'] for r in seen)} found): the detector within "
            f"{EYE_TOLERANCE:.0%} of that count on {close}.",
            "",
            "| photo | lower bound | by eye | detector | Hough |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['file']} | {_blank(r.get('lower_bound'))} | {_blank(r.get('eye'))} | {r['detector']}"
            f"{'' if r.get('eye') is None or within_eye(r['detector'], r['eye']) else ' ✗'} | {r['hough']} |"
            for r in real
        ]
        lines.append("")
    sk = report.get("skimage_coins")
    if sk:
        lines += [
            f"## skimage.data.coins(): detector {sk['detector']}, {HOUGH_LABEL} {sk['hough']}, expected "
            f"{sk['expected']}",
            "",
        ]
    lat = report.get("latency")
    if lat:
        lines += [
            f"## Latency (CPU; {_threads_text(lat)})",
            "",
            f"detect {lat['detect_ms_median']:.1f} ms median (p90 {lat['detect_ms_p90']:.1f}) per "
            f"{lat['frame_side_px']:.0f} px frame at imgsz {lat['imgsz']:.0f}; bare YOLO predict "
            f"{lat['yolo_predict_ms_median']:.1f} ms; ratio {lat['ratio_to_bare_predict']:.2f}.",
            "",
        ]
    overlays = report.get("overlays") or []
    if overlays:
        lines += ["## Overlays", ""] + [f"![{p}]({p})" for p in overlays] + [""]
    md = out / "report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    return md


SYNTH_SEED = re.compile(r"cupcheck synth\b[^;]*?--seed (\d+)")
"""A ``cupcheck synth`` command's mint seed, as the detector's training provenance writes its data sets."""


def training_seeds(settings: DetectorSettings) -> tuple[int, ...]:
    """The mint seeds of the ``cupcheck synth`` commands the detector's settings record in their training
    provenance (``extra``, free text), in the order written, each once."""
    found: list[int] = []
    for value in settings.extra.values():
        for match_ in SYNTH_SEED.finditer(str(value)):
            if int(match_.group(1)) not in found:
                found.append(int(match_.group(1)))
    return tuple(found)


def training_data_folder(settings: DetectorSettings) -> Path | None:
    """The training data set the detector's settings record as a folder (``extra["data"]``, as
    ``cupcheck train detector`` writes it), or ``None`` when they record none, or free text naming ``cupcheck synth``
    commands (the shipped detector's, read by :func:`training_seeds`)."""
    value = settings.extra.get("data")
    if not isinstance(value, str) or not value.strip() or SYNTH_SEED.search(value):
        return None
    return Path(value)


def _same_folder(a: Path, b: Path) -> bool:
    """Whether two paths name one existing folder (a recorded path that is not here names none)."""
    try:
        return a.samefile(b)
    except OSError:
        return False


@dataclass(frozen=True)
class HeldOut:
    """Whether a synthetic data set is known to be held out from the detector's training data.

    Attributes:
        held_out: it is not the training data folder the detector's settings record, and its mint seed is none of
            the training seeds they record (in ``cupcheck synth`` commands, or the recorded folder's ``mint.json``).
        line: what the report says: the held-out sentence, or a warning naming the overlap or what could not be
            checked.
    """

    held_out: bool
    line: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``report.json``)."""
        return {"held_out": self.held_out, "line": self.line}


def mint_seed(data: Path) -> int | None:
    """The mint seed ``DATA/mint.json`` records, or ``None`` when the file or the seed is missing or unreadable."""
    try:
        seed = json.loads((data / "mint.json").read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError, AttributeError):
        return None
    return int(seed) if isinstance(seed, int) else None


def held_out(settings: DetectorSettings, data: Path) -> HeldOut:
    """Compare ``data`` with the training data the detector's settings record: the folder itself
    (:func:`training_data_folder`), and its mint seed with the training seeds (:func:`training_seeds`, and the
    recorded folder's own mint seed): cups rendered with one of them are not held out, whatever their cup count."""
    folder = training_data_folder(settings)
    if folder is not None and _same_folder(folder, data):
        return HeldOut(
            False,
            f"warning: {data} is the data set the detector {settings.version} was trained on (its settings record "
            f"training data {folder}): its cups are not held out, and the numbers below overstate the detector",
        )
    seed = mint_seed(data)
    seeds = training_seeds(settings)
    folder_seed = mint_seed(folder) if folder is not None else None
    if folder_seed is not None and folder_seed not in seeds:
        seeds = (*seeds, folder_seed)
    if seed is None:
        return HeldOut(
            False,
            f"warning: {data / 'mint.json'} records no mint seed: whether its cups are held out "
            "from the detector's training data could not be checked",
        )
    if not seeds:
        missing = "" if folder is None else f" (its training data {folder} is not here to read one from)"
        return HeldOut(
            False,
            f"warning: detector {settings.version} records no training mint seed{missing}: whether "
            f"{data} (mint seed {seed}) is held out could not be checked",
        )
    listed = ", ".join(str(s) for s in seeds)
    if seed in seeds:
        source = (
            f"its training data {folder} was rendered with it too"
            if seed == folder_seed
            else f"its settings record seeds {listed}"
        )
        return HeldOut(
            False,
            f"warning: {data} was rendered with mint seed {seed}, one the detector "
            f"{settings.version} was trained on ({source}): its cups are not "
            "held out, and the numbers below overstate the detector",
        )
    return HeldOut(
        True,
        f"Held out: {data} was rendered with mint seed {seed}, none of the training mint seeds "
        f"the detector's settings record ({listed}).",
    )


def run_eval(
    detector: Detector,
    out: Path,
    *,
    data: Path | None,
    real_root: Path | None,
    max_cups: int | None = None,
    sizes: Sequence[int] = (),
    n_overlays: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every evaluation that has its inputs and write the report into ``out``.

    Args:
        detector: the detector under test.
        out: report folder (``report.md``, ``report.json``, ``overlays/*.png``).
        data: a synthetic data set (held out: :func:`held_out` says whether it is known to be), or ``None``.
        real_root: the real data folder (holding :data:`REAL_PHOTOS_META`), or ``None``.
        max_cups: evaluate at most this many synthetic cups (at least 1; ``None``: every cup).
        sizes: extra YOLO input sizes to compare on the synthetic cups (multiples of 32).
        n_overlays: overlay PNGs per source (on the real photos: besides every photo counted by eye).
        progress: tqdm bars on stderr.

    Raises:
        ValueError: ``max_cups`` below 1, or a size that is not a positive multiple of 32.
        FileNotFoundError: ``real_root`` holds no :data:`REAL_PHOTOS_META` (checked before any work).
    """
    for size in sizes:
        check_imgsz(size)
    if real_root is not None:
        check_real_root(real_root)
    if max_cups is not None and max_cups < 1:
        raise ValueError(f"max_cups must be at least 1 (None for every cup), got {max_cups}")
    overlay_dir = out / "overlays"
    overlay_dir.mkdir(parents=True, exist_ok=True)
    overlays: list[str] = []
    report: dict[str, Any] = {"version": detector.version, "imgsz": detector.settings.imgsz}

    def save(name: str, image: UInt8Array) -> None:
        cv2.imwrite(str(overlay_dir / name), image)
        overlays.append(f"overlays/{name}")

    if data is not None:
        truths = load_truth(data, max_cups=max_cups)

        def on_cup(k: int, frame: Frame, found: list[CoinInstance], truth: CupTruth) -> None:
            if k < n_overlays:
                save(f"synthetic_{k:02d}.png", draw_overlay(frame.image, found, f"{len(found)} found"))

        report["synthetic_data"] = str(data)
        report["held_out"] = held_out(detector.settings, data).to_dict()
        report["synthetic_cups"] = len(truths)
        report["synthetic"] = evaluate_synthetic(detector, truths, progress=progress, on_cup=on_cup)
        frames = [Frame(image=np.asarray(cv2.imread(str(t.image)), np.uint8)) for t in truths[:20]]
        report["latency"] = latency(detector, frames)
        sweep = []
        for size in sizes:
            d2 = detector.with_settings(imgsz=int(size))
            res = evaluate_synthetic(d2, truths[:40], baseline=False, progress=progress)["detector"]
            res.update(latency(d2, frames[:10]))
            res["imgsz"] = int(size)
            sweep.append(res)
        report["imgsz_sweep"] = sweep
    if real_root is not None:
        count = 0
        eye = eye_counts()

        def on_photo(name: str, frame: Frame, found: list[CoinInstance]) -> None:
            """Every photo counted by eye (to check the count against), and the first others."""
            nonlocal count
            if name in eye:
                label = f"{len(found)} coins, {eye[name]} by eye"
            elif count < n_overlays:
                count += 1
                label = f"{len(found)} coins"
            else:
                return
            save(f"real_{Path(name).stem}.png", draw_overlay(frame.image, found, label))

        report["real"] = count_real(detector, real_root, progress=progress, on_photo=on_photo)
    sk = count_skimage(detector)
    if sk is not None:
        save("skimage_coins.png", draw_overlay(sk.pop("image"), sk.pop("instances"), f"{sk['detector']} coins"))
        report["skimage_coins"] = sk
    report["overlays"] = overlays
    write_report(out, report)
    return report


def sweep_confidence(
    detector: Detector, truths: Sequence[CupTruth], thresholds: Sequence[float], *, progress: bool = True
) -> list[dict[str, float]]:
    """Box recall and precision (IoU 0.5, class-agnostic) at each confidence threshold, from one YOLO pass.

    The detector runs once at the lowest threshold; higher thresholds filter its boxes.
    """
    low = detector.with_settings(conf=float(min(thresholds)))
    runs: list[tuple[FloatArray, FloatArray, FloatArray]] = []
    for truth in tqdm(truths, desc="confidence sweep", disable=not progress):
        image = cv2.imread(str(truth.image), cv2.IMREAD_COLOR)
        if image is None:
            continue
        b = low.boxes(np.asarray(image, np.uint8))
        kept = nms(b.xyxy, b.confidence, detector.settings.iou)
        runs.append((b.xyxy[kept], b.confidence[kept], truth.boxes))
    rows = []
    for thr in thresholds:
        tp = n_pred = n_gt = 0
        for xyxy, conf, gt in runs:
            keep = conf >= thr
            tp += len(match(xyxy[keep], conf[keep], gt))
            n_pred += int(keep.sum())
            n_gt += len(gt)
        rows.append(
            {
                "conf": float(thr),
                "recall": tp / n_gt if n_gt else 0.0,
                "precision": tp / n_pred if n_pred else 1.0,
            }
        )
    return rows
