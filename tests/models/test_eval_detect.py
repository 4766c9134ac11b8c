"""Detector evaluation helpers: matching, the Hough baseline, metrics on a small rendered set."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import CupRoi
from models.detector import DEFAULT_DIR, SIDECAR, Detector, DetectorSettings
from models.eval_detect import (
    CupTruth,
    DetectionTally,
    Prediction,
    box_iou,
    check_imgsz,
    evaluate_synthetic,
    eye_counts,
    false_box_reasons,
    held_out,
    hough_circles,
    latency,
    load_truth,
    match,
    miss_reasons,
    roi_outcome,
    training_seeds,
    within_eye,
    write_report,
)
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.mint import generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import Frame


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
    coins = sum(int(t.is_coin.sum()) for t in truths)
    assert sum(det["missed_coins"].values()) == coins - round((det["coin_recall"] or 0.0) * coins)
    assert sum(det["false_boxes"].values()) == det["predictions"] - round(det["precision"] * det["predictions"])
    assert sum(sum(c.values()) for c in res["roi"].values()) == 3  # the rim finder checked on every cup
    assert sum(det["count_differences"].values()) == 3  # each cup once, by coins found minus coins there
    assert det["cups_counted_exactly"] == det["count_differences"].get("0", 0) / 3
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


def _box_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((100, 100), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_missed_coins_and_false_boxes_are_told_apart() -> None:
    boxes = [(0, 0, 20, 20), (30, 0, 50, 20), (60, 0, 80, 20), (0, 40, 20, 60), (30, 40, 50, 60)]
    truth = CupTruth(
        image=Path("cup.png"),
        boxes=np.asarray(boxes, np.float32),
        masks=[_box_mask(*b) for b in boxes],
        is_coin=np.ones(5, bool),
        diameter_px=np.full(5, 20.0, np.float32),
        partial=np.zeros(5, bool),
        occlusion=np.asarray([0.0, 0.0, 0.9, 0.2, 0.0], np.float32),
        px_per_mm=4.0,
    )
    # coin 0 found; coin 1 cut with a thin tail stretching the box: mask match only; coins 2 (90 % hidden) and 3
    # have no box; coin 4 has a box only under the confidence floor. False boxes: a piece of coin 0, one on coin 3,
    # one on bare tray.
    pred_boxes = [(0, 0, 20, 20), (30, 0, 50, 8), (0, 0, 6, 6), (0, 40, 6, 46), (80, 80, 95, 95)]
    masks = [_box_mask(*b) for b in pred_boxes]
    masks[1] = _box_mask(30, 0, 50, 20)  # a whole mask whose box was cut short
    pred = Prediction(
        boxes=np.asarray(pred_boxes, np.float32),
        confidence=np.asarray([0.9, 0.8, 0.7, 0.6, 0.5], np.float32),
        masks=masks,
        diameter_px=np.full(5, 20.0, np.float32),
        is_coin=np.ones(5, bool),
        partial=np.zeros(5, bool),
    )
    pairs = match(pred.boxes, pred.confidence, truth.boxes)
    mask_pairs = match(pred.boxes, pred.confidence, truth.boxes, pred.masks, truth.masks)
    assert pairs == [(0, 0)] and (1, 1) in mask_pairs
    weak = np.asarray([[30, 40, 50, 60]], np.float32)
    assert miss_reasons(truth, pairs, mask_pairs, weak) == {
        "cut_box_off": 1,
        "mostly_hidden": 1,
        "other": 1,
        "weak_box": 1,
    }
    assert miss_reasons(truth, pairs, mask_pairs)["other"] == 2  # without the weak boxes coin 4 has no reason
    assert false_box_reasons(truth, pred, pairs) == {"piece_of_missed": 2, "piece_of_found": 1, "no_instance": 1}
    tally = DetectionTally()
    tally.add(truth, pred)
    tally.add(truth, replace(pred, is_coin=np.asarray([True, True, False, False, False])))  # 3 called objects
    summary = tally.summary()
    assert summary["count_differences"] == {"-3": 1, "0": 1} and summary["cups_counted_exactly"] == 0.5


def test_counts_by_eye_are_within_five_percent_or_not(tmp_path: Path) -> None:
    assert within_eye(25, 24) and within_eye(23, 24) and not within_eye(26, 24) and not within_eye(9, 10)
    assert within_eye(46, 46)
    real = [
        {"file": "a.jpg", "lower_bound": 20, "eye": 24, "detector": 25, "hough": 90},
        {"file": "b.jpg", "lower_bound": 20, "eye": 24, "detector": 34, "hough": 90},
        {"file": "c.jpg", "lower_bound": 30, "eye": None, "detector": 29, "hough": 90},
        {"file": "won/d.jpg", "lower_bound": None, "eye": 46, "detector": 45, "hough": 300},
    ]
    text = write_report(tmp_path / "report", {"version": "x", "real": real}).read_text(encoding="utf-8")
    assert "coins found 88 vs upstream crop counts 70 (a lower bound; 1 of 3 photos below it)" in text
    assert "Counted by eye on 3 photos (94 coins, 104 found): the detector within 5% of that count on 2." in text
    assert "| b.jpg | 20 | 24 | 34 ✗ | 90 |" in text and "| c.jpg | 30 |  | 29 | 90 |" in text
    assert "| won/d.jpg |  | 46 | 45 | 300 |" in text


def test_every_photo_counted_by_eye_is_a_real_photo_with_at_least_its_crops(real_data: Path) -> None:
    meta = json.loads((real_data / "euro_kaa" / "photos.json").read_text())
    bounds = {f"euro_kaa/{p['file']}": sum(p["crop_counts"].values()) for p in meta["photos"] if p["kind"] == "single"}
    eye = eye_counts()
    assert sum(k.startswith("euro_kaa/") for k in eye) >= 5 and sum(k.startswith("won_cho0h5/") for k in eye) >= 5
    for name, count in eye.items():
        assert (real_data / name).is_file(), name
        assert count >= bounds.get(name, 1), name


def test_only_positive_multiples_of_32_are_input_sizes() -> None:
    assert check_imgsz(320) == 320 and check_imgsz(32) == 32
    with pytest.raises(ValueError, match=r"input size 300 is not a positive multiple of 32.*give 288 or 320"):
        check_imgsz(300)
    for size in (0, -32, 31):
        with pytest.raises(ValueError, match=rf"input size {size} is not a positive multiple of 32.*give 32"):
            check_imgsz(size)


def test_latency_needs_a_pass_over_the_frames_and_names_the_threads_it_ran_with(tmp_path: Path) -> None:
    import torch

    detector = Detector.load()
    scene = render_cup(SceneAssets(generate_mint(4, 31)), 31, 0, SceneOptions(max_coins=4))
    frames = [Frame(image=np.ascontiguousarray(scene.image))]
    with pytest.raises(ValueError, match="repeats must be at least 1, got 0"):
        latency(detector, frames, repeats=0)
    with pytest.raises(ValueError, match="input size 300"):
        latency(detector.with_settings(imgsz=300), frames)
    timing = latency(detector, frames)
    assert timing["imgsz"] == detector.settings.imgsz and timing["frames"] == 1
    assert timing["torch_threads"] == torch.get_num_threads() == timing["yolo_threads"]
    md = write_report(tmp_path, {"version": "x", "latency": timing}).read_text(encoding="utf-8")
    assert f"## Latency (CPU; YOLO {torch.get_num_threads()} thread(s), torch {torch.get_num_threads()})" in md


def test_max_cups_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_cups must be at least 1"):
        load_truth(tmp_path, max_cups=0)


def _mint_folder(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "mint.json").write_text(generate_mint(3, seed).to_json(), encoding="utf-8")
    return folder


def test_a_set_rendered_with_one_of_the_detectors_training_seeds_is_not_called_held_out(tmp_path: Path) -> None:
    settings = DetectorSettings.from_dict(json.loads((DEFAULT_DIR / SIDECAR).read_text(encoding="utf-8")))
    # the shipped detector's stages 1-2 (its parent's 12-type mints) and 3-7 (models/weights/README)
    assert training_seeds(settings) == (1, 11, 21, 22, 23, 24)
    seen = held_out(settings, _mint_folder(tmp_path / "s24", 24))
    assert not seen.held_out
    assert "mint seed 24, one the detector" in seen.line and "seeds 1, 11, 21, 22, 23, 24" in seen.line
    assert not held_out(settings, _mint_folder(tmp_path / "s1", 1)).held_out  # the parent's first mint
    fresh = held_out(settings, _mint_folder(tmp_path / "s103", 103))
    assert fresh.held_out and fresh.line.startswith("Held out:") and "mint seed 103" in fresh.line
    unknown = held_out(replace(settings, extra={}), tmp_path / "s103")
    assert not unknown.held_out and "could not be checked" in unknown.line
    no_mint = held_out(settings, tmp_path)
    assert not no_mint.held_out and "records no mint seed" in no_mint.line
