"""The shipped detector on rendered cups: types and shapes, recall, partial flags, calibration, load errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import CameraCalibration, CupRoi
from models.box_checks import FAINT_RIM_CONF, RIM_REFERENCE_CONF
from models.detector import DEFAULT_DIR, SIDECAR, Detector, DetectorSettings
from models.eval_detect import box_iou, eye_counts
from models.frames import read_frame
from models.synth.mint import generate_mint
from models.synth.scene import CupScene, SceneAssets, SceneOptions, render_cup
from models.types import CoinInstance, Frame


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load()


@pytest.fixture(scope="module")
def cups() -> list[CupScene]:
    """Rendered cups (fixed seed, never used for training) holding at least three whole coins."""
    assets = SceneAssets(generate_mint(6, 4242))
    out = []
    for i in range(40):
        scene = render_cup(assets, 4242, i, SceneOptions(image_size=640, max_coins=12))
        whole = [s for s in scene.instances if s.is_coin and not s.partial and s.occlusion < 0.3]
        if len(whole) >= 3:
            out.append(scene)
        if len(out) == 3:
            break
    assert out, "the renderer gave no cup with coins"
    return out


def _frame(scene: CupScene) -> Frame:
    return Frame(image=np.ascontiguousarray(scene.image), source="test")


def test_output_types_and_shapes(detector: Detector, cups: list[CupScene]) -> None:
    found = detector.detect(_frame(cups[0]))
    assert found, "nothing detected in a cup full of coins"
    h, w = cups[0].image.shape[:2]
    for inst in found:
        assert isinstance(inst, CoinInstance)
        assert inst.bbox.shape == (4,) and inst.bbox.dtype == np.float32
        x1, y1, x2, y2 = inst.bbox
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert inst.mask.dtype == np.bool_
        assert inst.mask.shape == (int(y2) - int(y1), int(x2) - int(x1))
        assert inst.mask_origin == (int(x1), int(y1))
        assert inst.mask.any()
        assert 0.0 <= inst.confidence <= 1.0
        assert x1 - 1 <= inst.center[0] <= x2 + 1 or inst.partial
        assert min(inst.axes) > 0 and inst.diameter_px == max(inst.axes)
        assert inst.diameter_mm is None  # no calibration attached
        assert isinstance(inst.is_coin, bool) and isinstance(inst.partial, bool)
    # masks of different instances never share a pixel
    full = np.zeros((h, w), dtype=np.int32)
    for inst in found:
        ox, oy = inst.mask_origin
        full[oy : oy + inst.mask.shape[0], ox : ox + inst.mask.shape[1]] += inst.mask
    assert full.max() == 1


def test_finds_the_whole_coins_and_measures_them(detector: Detector, cups: list[CupScene]) -> None:
    hits, total, errors = 0, 0, []
    for scene in cups:
        found = [i for i in detector.detect(_frame(scene)) if i.is_coin]
        gts = [s for s in scene.instances if s.is_coin and not s.partial and s.occlusion < 0.3]
        iou = box_iou(np.asarray([g.bbox for g in gts], np.float32), np.asarray([f.bbox for f in found], np.float32))
        for k, g in enumerate(gts):
            total += 1
            if iou.shape[1] and iou[k].max() >= 0.5:
                hits += 1
                errors.append(abs(found[int(iou[k].argmax())].diameter_px - g.diameter_px) / g.diameter_px)
    assert hits / total >= 0.9
    assert float(np.median(errors)) < 0.05


def test_partial_flag_at_image_edges(detector: Detector, cups: list[CupScene]) -> None:
    """Shift the frame so a whole coin is cut by the left edge: that coin is partial, central ones are not."""
    scene = cups[0]
    coin = max((s for s in scene.instances if s.is_coin and not s.partial), key=lambda s: s.diameter_px)
    cut = int(coin.center[0])  # the left half of the coin leaves the frame
    image = np.ascontiguousarray(scene.image[:, cut:])
    found = detector.detect(Frame(image=image))
    assert found
    h, w = image.shape[:2]
    at_edge = [i for i in found if i.bbox[0] <= 1.0]
    assert at_edge and all(i.partial for i in at_edge)
    inner = [i for i in found if i.bbox[0] > 3 and i.bbox[1] > 3 and i.bbox[2] < w - 3 and i.bbox[3] < h - 3]
    assert all(not i.partial for i in inner)


def test_calibration_gives_mm_and_rim_cuts(detector: Detector, cups: list[CupScene]) -> None:
    scene = cups[0]
    h, w = scene.image.shape[:2]
    plain = detector.detect(_frame(scene))
    assert plain
    first = plain[0]
    # a cup circle that passes through the first coin's centre cuts it; others far inside stay whole
    cx, cy = first.center
    roi = CupRoi(w / 2, h / 2, float(np.hypot(cx - w / 2, cy - h / 2)) + 1.0)
    cal = CameraCalibration(px_per_mm=scene.px_per_mm, image_width=w, image_height=h, method="manual", roi=roi)
    found = detector.with_calibration(cal).detect(_frame(scene))
    match = min(found, key=lambda i: np.hypot(i.center[0] - cx, i.center[1] - cy))
    assert match.partial
    for inst in found:
        assert inst.diameter_mm == pytest.approx(max(inst.axes) / scene.px_per_mm)


def test_a_tray_cuts_at_its_sides_and_nothing_outside_the_cup_is_a_coin(
    detector: Detector, cups: list[CupScene]
) -> None:
    scene = cups[0]
    h, w = scene.image.shape[:2]
    plain = detector.detect(_frame(scene))

    def inside_image(i: CoinInstance) -> bool:
        x, y = i.center
        return min(x, y, w - x, h - y) > max(i.axes) / 2 + 5

    first = next(i for i in plain if not i.partial and inside_image(i))  # not cut by the image edge already
    cx, cy = first.center
    r = max(first.axes) / 2
    # a square tray whose right side runs through the coin's centre plus half its radius: cut, not dropped
    half = 200.0
    tray = CupRoi(cx + r / 2 - half, cy, half, "square")
    cal = CameraCalibration(px_per_mm=scene.px_per_mm, image_width=w, image_height=h, method="manual", roi=tray)
    found = detector.with_calibration(cal).detect(_frame(scene))
    near = [i for i in found if np.hypot(i.center[0] - cx, i.center[1] - cy) < 0.05 * r]  # the rim arc left: a refit
    assert len(near) == 1 and near[0].partial
    assert all(tray.inset(*i.center) >= 0 for i in found)
    # the same tray moved so that the coin's centre lies outside it: the coin is not reported
    tray = CupRoi(cx - r / 2 - half, cy, half, "square")
    cal = CameraCalibration(px_per_mm=scene.px_per_mm, image_width=w, image_height=h, method="manual", roi=tray)
    found = detector.with_calibration(cal).detect(_frame(scene))
    assert all(np.hypot(i.center[0] - cx, i.center[1] - cy) > 0.05 * r for i in found)
    inside = [i for i in plain if tray.inset(*i.center) > max(i.axes)]
    assert len(found) >= len(inside)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no detector"):
        Detector.load(tmp_path / "absent")
    broken = tmp_path / "broken"
    shutil.copytree(DEFAULT_DIR, broken)
    (broken / SIDECAR).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="JSON"):
        Detector.load(broken)
    tampered = tmp_path / "tampered"
    shutil.copytree(DEFAULT_DIR, tampered)
    data = json.loads((tampered / SIDECAR).read_text(encoding="utf-8"))
    with (tampered / data["yolo_file"]).open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        Detector.load(tampered)
    missing = tmp_path / "missing"
    shutil.copytree(DEFAULT_DIR, missing)
    (missing / data["segmenter_file"]).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        Detector.load(missing)


@pytest.mark.slow
def test_train_segmenter_and_package_round_trip(tmp_path: Path) -> None:
    """One tiny segmenter epoch on rendered cups, packaged beside the shipped YOLO weights, loads and detects."""
    from models.synth.dataset import SynthConfig, write_dataset
    from models.train.detector import SegmenterTrainConfig, package_detector, train_segmenter

    data = tmp_path / "synth"
    config = SynthConfig(n_types=4, n_cups=4, seed=7, scene=SceneOptions(image_size=320, max_coins=4), val_fraction=0.5)
    write_dataset(config, data, progress=False)
    seg_cfg = SegmenterTrainConfig(data=data, out=tmp_path / "run", epochs=1, size=32, widths=(4, 8, 8, 8), batch=8)
    best = train_segmenter(seg_cfg, progress=False)
    assert best.is_file() and (tmp_path / "run" / "segmenter" / "state.pt").is_file()
    shipped = json.loads((DEFAULT_DIR / SIDECAR).read_text(encoding="utf-8"))
    yolo_copy = tmp_path / "yolo_in.pt"
    shutil.copyfile(DEFAULT_DIR / shipped["yolo_file"], yolo_copy)
    sidecar = package_detector(yolo_copy, best, tmp_path / "det", imgsz=256, conf=0.3, version="test-1")
    loaded = Detector.load(sidecar)
    assert loaded.version == "test-1" and loaded.settings.conf == pytest.approx(0.3)
    assert loaded.segmenter is not None and loaded.segmenter.size == 32
    image = np.ascontiguousarray(cv2.imread(str(next((data / "yolo" / "images").glob("*/*.jpg")))))
    for inst in loaded.detect(Frame(image=image)):
        assert inst.mask.shape == (int(inst.bbox[3]) - int(inst.bbox[1]), int(inst.bbox[2]) - int(inst.bbox[0]))


def test_a_sidecar_without_the_faint_rim_or_bare_tray_key_keeps_every_box() -> None:
    data = json.loads((DEFAULT_DIR / SIDECAR).read_text())
    assert DetectorSettings.from_dict(data).faint_rim == data["faint_rim"] > 0
    del data["faint_rim"]
    assert DetectorSettings.from_dict(data).faint_rim == 0.0
    assert DetectorSettings.from_dict(data).bare_tray == data["bare_tray"] > 0
    del data["bare_tray"]
    assert DetectorSettings.from_dict(data).bare_tray == 0.0


def test_the_boxes_on_a_towel_are_dropped_and_the_coins_on_it_kept(detector: Detector, real_data: Path) -> None:
    """IMG_4200: 24 one-euro coins on a waffle towel (counted by eye), which YOLO also boxes in ten places."""
    name = "euro_kaa/photos/single/IMG_4200.jpg"
    frame = read_frame(real_data / name)
    alone = detector.with_settings(bare_tray=0.0)  # the faint-rim check alone
    every = [i for i in alone.with_settings(faint_rim=0.0).detect(frame) if i.is_coin]
    kept = [i for i in alone.detect(frame) if i.is_coin]
    eye = eye_counts()[name]
    assert len(every) >= eye + 8  # the towel boxes
    assert eye <= len(kept) <= eye + 1
    boxes = {tuple(i.bbox.tolist()) for i in kept}
    assert max(i.confidence for i in every if tuple(i.bbox.tolist()) not in boxes) < FAINT_RIM_CONF


def test_the_gaps_between_coins_on_a_towel_are_dropped(detector: Detector, real_data: Path) -> None:
    """IMG_4202: 25 fifty-cent coins on a waffle towel (counted by eye); YOLO boxes three patches of towel between
    them as small coins, with rims as strong as the weave's."""
    name = "euro_kaa/photos/single/IMG_4202.jpg"
    frame = read_frame(real_data / name)
    every = [i for i in detector.with_settings(bare_tray=0.0).detect(frame) if i.is_coin]
    kept = [i for i in detector.detect(frame) if i.is_coin]
    eye = eye_counts()[name]
    assert len(every) >= eye + 3
    assert len(kept) == eye
    boxes = {tuple(i.bbox.tolist()) for i in kept}
    gone = [i for i in every if tuple(i.bbox.tolist()) not in boxes]
    assert max(i.confidence for i in gone) < RIM_REFERENCE_CONF
    assert max(i.diameter_px for i in gone) < 0.8 * min(i.diameter_px for i in kept)


def test_a_cup_small_in_a_large_frame_is_found_coin_by_coin(detector: Detector, cups: list[CupScene]) -> None:
    """A 640 px cup shrunk to 400 px in a 2560x1440 frame: at the trained 320 px input its coins are a few pixels
    and the first pass boxes next to none of them; the frame predicted again at its own size finds them all."""
    for scene in cups:
        wide = np.full((1440, 2560, 3), 128, np.uint8)
        wide[520:920, 1080:1480] = cv2.resize(scene.image, (400, 400), interpolation=cv2.INTER_AREA)
        first = detector.boxes(wide)
        found = [i for i in detector.detect(Frame(image=wide, source="wide")) if i.is_coin]
        at_640 = [i for i in detector.detect(_frame(scene)) if i.is_coin]
        assert int(np.count_nonzero(first.cls == 0)) <= 2  # what one pass at the trained size sees
        assert len(found) == len(at_640) and all(1080 <= i.center[0] <= 1480 for i in found)


@pytest.fixture
def torch_threads() -> Iterator[int]:
    """A torch thread count other than the one ultralytics' ``select_device`` sets (``min(8, cores - 1)``), put back
    after the test."""
    import os

    import torch

    before = torch.get_num_threads()
    theirs = min(8, max(1, (os.cpu_count() or 1) - 1))
    ours = 2 if theirs != 2 else 3
    torch.set_num_threads(ours)
    yield ours
    torch.set_num_threads(before)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_loading_and_running_yolo_keeps_torchs_thread_count(torch_threads: int, backend: str) -> None:
    import torch

    detector = Detector.load(backend=backend)
    assert detector.backend == backend
    assert torch.get_num_threads() == torch_threads  # ultralytics' select_device ran while loading, and was undone
    detector.boxes(np.zeros((320, 320, 3), np.uint8))
    assert torch.get_num_threads() == torch_threads
    assert detector.yolo_threads == torch_threads  # the ONNX session runs torch's count, as the other networks do


def test_the_yolo_onnx_session_runs_the_threads_asked_for(torch_threads: int) -> None:
    import torch

    detector = Detector.load(backend="onnx", threads=1)
    assert detector.yolo_threads == 1
    assert detector.segmenter is not None and detector.segmenter.runner is not None
    assert detector.segmenter.runner.threads == 1
    assert torch.get_num_threads() == torch_threads
    assert detector.with_backend("torch").with_backend("onnx").yolo_threads == 1


def test_several_cups_side_by_side_in_a_large_frame_are_found_coin_by_coin(detector: Detector) -> None:
    """Three copies of a cup of 13 coins, 600 px each, in a 1920x1080 frame: one pass at the trained 320 px input
    boxes each whole cup as one coin, and three such "coins" were once all the detector reported; the frame
    predicted again at a larger size finds every coin of each cup, as the cup alone shows them."""
    scene = render_cup(SceneAssets(generate_mint(4, 7)), 7, 0, SceneOptions(image_size=640))
    one = np.asarray(cv2.resize(scene.image, (600, 600), interpolation=cv2.INTER_AREA), np.uint8)
    wide = np.full((1080, 1920, 3), one[5, 5], np.uint8)
    for k in range(3):
        wide[240:840, 30 + k * 630 : 630 + k * 630] = one
    first = detector.boxes(wide)
    sizes = np.maximum(first.xyxy[:, 2] - first.xyxy[:, 0], first.xyxy[:, 3] - first.xyxy[:, 1])
    assert int(np.count_nonzero(first.cls == 0)) == 3 and float(np.median(sizes)) > 500  # the cups, boxed whole
    alone = [i for i in detector.detect(Frame(image=one, source="one")) if i.is_coin]
    found = [i for i in detector.detect(Frame(image=wide, source="wide")) if i.is_coin]
    assert len(alone) == 13 and len(found) == 3 * len(alone)
    assert max(i.diameter_px for i in found) < 1.1 * max(i.diameter_px for i in alone)
