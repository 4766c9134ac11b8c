"""Detector evaluation helpers: matching, the Hough baseline, metrics on a small rendered set."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import CupRoi
from models.detector import Detector
from models.eval_detect import (
    box_iou,
    evaluate_synthetic,
    hough_circles,
    load_truth,
    match,
    roi_outcome,
    write_report,
)
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions


def test_match_is_greedy_one_to_one() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    pred = np.array([[0, 0, 10, 11], [1, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    pairs = match(pred, np.array([0.5, 0.9, 0.8], np.float32), gt)
    assert pairs == [(1, 0)]
    assert box_iou(gt, gt).diagonal() == pytest.approx([1.0, 1.0])


def test_mask_matching_credits_a_coin_whose_sliver_stretches_its_box() -> None:
    """A visible part with a thin tail: the predicted mask misses the tail, box IoU < 0.5, mask IoU > 0.9."""
    truth = np.zeros((100, 100), bool)
    truth[40:60, 10:30] = True  # the body
    truth[49:51, 30:90] = True  # a one-pixel-high sliver between two coins
    pred = np.zeros_like(truth)
    pred[40:60, 10:30] = True
    gt_box = np.array([[10, 40, 90, 60]], np.float32)
    pred_box = np.array([[10, 40, 30, 60]], np.float32)
    conf = np.array([0.9], np.float32)
    assert match(pred_box, conf, gt_box) == []
    assert match(pred_box, conf, gt_box, [pred], [truth]) == [(0, 0)]
    # a mask elsewhere in the same box does not match
    wrong = np.zeros_like(truth)
    wrong[0:20, 10:30] = True
    assert match(np.array([[10, 0, 30, 20]], np.float32), conf, gt_box, [wrong], [truth]) == []


def test_the_truth_box_is_the_box_of_the_labelled_outline(tmp_path: Path) -> None:
    """The renderer's box spans slivers showing through gaps that the outline (and the YOLO label) leaves out."""
    data = tmp_path / "synth"
    write_dataset(SynthConfig(n_types=4, n_cups=2, seed=31, scene=SceneOptions(max_coins=8)), data, progress=False)
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    inst = manifest["cups"][0]["instances"][0]
    x0, y0 = (int(v) for v in np.min(inst["polygon"], axis=0))
    inst["polygon"] = [[x0, y0], [x0 + 10, y0], [x0 + 10, y0 + 12], [x0, y0 + 12]]
    (data / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    truth = load_truth(data)[0]
    assert truth.boxes[0].tolist() == [x0, y0, x0 + 11, y0 + 13]
    assert truth.masks[0].sum() == 11 * 13


def test_hough_baseline_finds_drawn_discs() -> None:
    image = np.full((200, 300, 3), 40, np.uint8)
    for x, y in ((60, 60), (150, 120), (240, 70)):
        cv2.circle(image, (x, y), 30, (200, 200, 200), -1)
    found = hough_circles(image, 20, 40)
    assert len(found) == 3
    for x, y in ((60, 60), (150, 120), (240, 70)):
        assert min(np.hypot(fx - x, fy - y) for fx, fy, _ in found) < 3


@pytest.mark.slow
def test_evaluate_synthetic_reports_sane_metrics(tmp_path: Path) -> None:
    data = tmp_path / "synth"
    write_dataset(SynthConfig(n_types=4, n_cups=3, seed=31, scene=SceneOptions(max_coins=8)), data, progress=False)
    truths = load_truth(data)
    assert len(truths) == 3 and all(t.px_per_mm > 0 for t in truths)
    res = evaluate_synthetic(Detector.load(), truths, progress=False)
    det, base = res["detector"], res["baseline"]
    assert det["gt_instances"] == base["gt_instances"] == sum(len(t.boxes) for t in truths)
    for key in ("recall", "precision", "mean_mask_iou"):
        if det[key] is not None:
            assert 0.0 <= det[key] <= 1.0
    assert all(t.tray_known for t in truths)
    assert sum(sum(c.values()) for c in res["roi"].values()) == 3  # the rim finder checked on every cup
    md = write_report(tmp_path / "report", {"version": "x", "synthetic": res, "synthetic_cups": 3})
    text = md.read_text(encoding="utf-8")
    assert "Hough circles (baseline)" in text and "`detect_cup_roi`" in text
    assert (tmp_path / "report" / "report.json").is_file()


def test_roi_outcome() -> None:
    cup = CupRoi(100.0, 100.0, 80.0)
    assert roi_outcome(CupRoi(101.0, 99.0, 81.0), cup) == "right"
    assert roi_outcome(CupRoi(100.0, 100.0, 95.0), cup) == "wrong"  # the rim's outer edge
    assert roi_outcome(CupRoi(100.0, 100.0, 80.0, "square"), cup) == "wrong"
    assert roi_outcome(None, cup) == "missed"
    assert roi_outcome(None, None) == "none" and roi_outcome(cup, None) == "wrong"
