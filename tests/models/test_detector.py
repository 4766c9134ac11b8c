"""The shipped detector on rendered cups: types and shapes, recall, partial flags, calibration, load errors."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import CameraCalibration, CupRoi
from models.detector import (
    DEFAULT_DIR,
    FAINT_RIM_CONF,
    RIM_REFERENCE_CONF,
    SIDECAR,
    Detector,
    DetectorSettings,
    _circle_fit,
    _circle_fit_radius,
    _hidden_by_others,
    _joining_circle,
    _Outline,
    _union_mask,
    drop_bare_tray,
    drop_faint_rims,
    fit_outline,
    paste_mask,
    read_frame,
    rim_points,
    shows_whole,
    tray_colour,
)
from models.eval_detect import box_iou, eye_counts
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


def test_fit_outline_ignores_an_occluded_bite() -> None:
    """A disc with a bite taken out by a neighbour still fits its own centre and diameter."""
    yy, xx = np.mgrid[0:200, 0:200]
    disc = (xx - 100.3) ** 2 + (yy - 90.7) ** 2 <= 60**2
    bite = (xx - 165) ** 2 + (yy - 90) ** 2 <= 45**2
    fit = fit_outline(disc & ~bite, (0, 0), 400, 400)
    assert fit is not None
    (cx, cy), (major, _), _ = fit
    assert abs(cx - 100.3) < 1.0 and abs(cy - 90.7) < 1.0
    assert abs(major - 120) / 120 < 0.02


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


def _piece(mask: np.ndarray) -> CoinInstance:
    """A coin instance of a full-frame mask, cropped and fitted as the detector does."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    crop = mask[y0:y1, x0:x1]
    fit = fit_outline(crop, (x0, y0), mask.shape[1], mask.shape[0])
    assert fit is not None
    (cx, cy), axes, angle = fit
    bbox = np.array([x0, y0, x1, y1], np.float32)
    return CoinInstance(
        bbox=bbox, mask=crop, mask_origin=(x0, y0), confidence=0.9, center=(cx, cy), axes=axes, angle=angle
    )


def _disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:300, 0:300]
    return np.asarray((xx - cx) ** 2 + (yy - cy) ** 2 <= r**2)


def _outline(i: CoinInstance) -> _Outline:
    return _Outline(*rim_points(i.mask, i.mask_origin, 300, 300), int(i.mask.sum()))


def _same_coin(a: CoinInstance, b: CoinInstance, sizes: tuple[float, ...] = ()) -> bool:
    return _joining_circle(a, _outline(a), b, _outline(b), sizes) is not None


def test_the_two_halves_of_a_coin_under_another_are_joined_and_nothing_else_is() -> None:
    coin = _disc(150, 150, 60)
    # two coins lying across its middle hide a band: the pieces left and right are one coin
    over = _disc(150, 100, 52) | _disc(150, 200, 52)
    xx = np.mgrid[0:300, 0:300][1]
    a, b = _piece(coin & ~over & (xx < 150)), _piece(coin & ~over & (xx > 150))
    assert max(a.axes) < 0.9 * 120  # each half alone fits a smaller circle
    assert _same_coin(a, b) and _same_coin(b, a)
    mask, origin = _union_mask(a, b)
    whole = fit_outline(mask, origin, 300, 300)
    assert whole is not None
    (cx, cy), axes, _ = whole
    assert abs(max(axes) - 121) < 3 and abs(cx - 150) < 1.5 and abs(cy - 150) < 1.5
    # two coins side by side are not one coin
    assert not _same_coin(_piece(_disc(90, 150, 50)), _piece(_disc(191, 150, 50)))
    # nor is a small coin lying on a large one
    big, small = _disc(150, 150, 80), _disc(160, 140, 30)
    assert not _same_coin(_piece(big & ~small), _piece(small))
    # nor a coin peeking out from under another
    upper = _disc(150, 150, 60)
    assert not _same_coin(_piece(upper), _piece(_disc(150, 185, 60) & ~upper))


def _pieces_under_two_coins(over_r: float, d: float) -> tuple[CoinInstance, CoinInstance, np.ndarray]:
    """A coin of radius 60 at (150, 150) with two coins lying across it: its left and right pieces, the two."""
    over = _disc(150, 150 - d, over_r) | _disc(150, 150 + d, over_r)
    xx = np.mgrid[0:300, 0:300][1]
    coin = _disc(150, 150, 60)
    return _piece(coin & ~over & (xx < 150)), _piece(coin & ~over & (xx > 150)), over


def test_pieces_far_apart_are_joined_when_the_frame_shows_coins_of_their_size() -> None:
    a, b, _ = _pieces_under_two_coins(62, 40)  # coins of 124 px lie across it: its pieces are 73 px apart
    assert max(a.axes) < 0.4 * 120  # each piece alone fits a far smaller circle
    assert not _same_coin(a, b)  # their own sizes say no coin spans that gap
    assert _same_coin(a, b, sizes=(60.0,))  # a whole coin of the frame does
    circle = _joining_circle(a, _outline(a), b, _outline(b), (60.0,))
    assert circle is not None and np.hypot(circle[0] - 150, circle[1] - 150) < 1.5 and abs(circle[2] - 60) < 2


def test_no_coin_is_joined_far_larger_than_the_frames_whole_coins() -> None:
    """Along the edge of a dense pile, the rims of several coins can line up on one large circle."""
    a, b, _ = _pieces_under_two_coins(52, 50)
    assert _same_coin(a, b, sizes=(58.0,))
    assert not _same_coin(a, b, sizes=(45.0,))  # 60 px is more than 15 % over the frame's largest coin


def test_a_joined_coin_must_lie_under_other_instances_where_it_does_not_show() -> None:
    a, b, over = _pieces_under_two_coins(55, 48)
    circle = _joining_circle(a, _outline(a), b, _outline(b), (60.0,))
    assert circle is not None
    pieces = np.zeros((300, 300), bool)
    for p in (a, b):
        paste_mask(pieces, p)
    assert _hidden_by_others(circle, pieces | over)  # the two coins lying across it hide the rest
    assert not _hidden_by_others(circle, pieces)  # bare tray between the pieces: two things, not one coin
    # under the cup's rim counts as hidden too
    roi = CupRoi(250.0, 150.0, 100.0)  # the cup's edge runs through the coin's middle; its left half is under the rim
    right = np.mgrid[0:300, 0:300][1] >= 150
    assert not _hidden_by_others(circle, pieces | (over & right))
    assert _hidden_by_others(circle, pieces | (over & right), roi)


def test_the_detector_joins_the_pieces_of_a_coin_and_keeps_the_coins_on_it() -> None:
    a, b, _ = _pieces_under_two_coins(58, 45)
    tops = [_piece(_disc(150, 105, 58)), _piece(_disc(150, 195, 58) & ~_disc(150, 105, 58))]
    settings = DetectorSettings(
        version="t", imgsz=256, conf=0.3, iou=0.6, names={0: "coin"}, yolo_file="", yolo_sha256=""
    )
    parts = [(p, _outline(p), 0) for p in (*tops, a, b)]
    found = [inst for inst, _ in Detector(None, None, settings)._merge_fragments(parts, 300, 300)]
    assert len(found) == 3
    joined = min(found, key=lambda i: np.hypot(i.center[0] - 150, i.center[1] - 150))
    assert abs(joined.diameter_px - 121) < 4 and joined.mask.sum() == a.mask.sum() + b.mask.sum()


def test_fixed_size_circle_fit_recovers_a_short_arc() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(-0.5, 0.5, 40)
    arc = np.stack([150 + 60 * np.cos(t), 150 + 60 * np.sin(t)], axis=1) + rng.normal(0, 0.7, (40, 2))
    pts = np.asarray(arc, dtype=np.float32)
    free = _circle_fit(pts)
    centre = _circle_fit_radius(pts, 60.0, free)
    assert centre is not None and np.hypot(centre[0] - 150, centre[1] - 150) < 1.0


def _weave(seed: int = 0) -> np.ndarray:
    """A 300 px frame of towel-like weave: a grid of soft bumps with noise, no edge stronger than its neighbours'."""
    yy, xx = np.mgrid[0:300, 0:300]
    rng = np.random.default_rng(seed)
    g = 120 + 12 * np.sin(xx / 3.0) * np.sin(yy / 3.0) + rng.normal(0, 4, (300, 300))
    return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _with_conf(inst: CoinInstance, confidence: float, is_coin: bool = True) -> CoinInstance:
    return replace(inst, confidence=confidence, is_coin=is_coin)


def test_a_doubtful_whole_disc_of_towel_weave_is_dropped_and_doubtful_coins_kept() -> None:
    image = _weave()
    coins = [_disc(60, 60, 40), _disc(160, 60, 40), _disc(60, 170, 40), _disc(230, 230, 40)]
    for c in coins:  # bright discs lying on the weave: their rims are strong edges
        image[c] = (190, 215, 230)
    sure = [_piece(c) for c in coins[:3]]
    doubtful_coin = _with_conf(_piece(coins[3]), 0.5)
    weave = _with_conf(_piece(_disc(190, 150, 30) & ~coins[3]), 0.5)  # a bare patch of towel boxed as a coin
    kept = [id(i) for i in drop_faint_rims([*sure, doubtful_coin, weave], image, 0.5)]
    assert id(doubtful_coin) in kept and id(weave) not in kept and all(id(s) in kept for s in sure)
    # a coin partly hidden under others may show a faint rim where it borders them: it is never dropped
    hidden = _with_conf(_piece(_disc(190, 150, 30) & ~_disc(222, 150, 28)), 0.5)
    assert abs(max(hidden.axes) - 60) < 4 and len(drop_faint_rims([*sure, hidden], image, 0.5)) == 4
    # a confident box, an object, a frame without a confident coin and a zero share keep everything
    assert len(drop_faint_rims([*sure, _with_conf(weave, 0.9)], image, 0.5)) == 4
    assert len(drop_faint_rims([*sure, _with_conf(weave, 0.5, is_coin=False)], image, 0.5)) == 4
    assert len(drop_faint_rims([doubtful_coin, weave], image, 0.5)) == 2
    assert len(drop_faint_rims([*sure, weave], image, 0.0)) == 4


def test_a_doubtful_box_the_colour_of_the_bare_tray_is_dropped_even_partly_hidden() -> None:
    image = _weave(1)
    coins = [_disc(60, 60, 40), _disc(140, 60, 40), _disc(60, 160, 40)]
    small_coin = _disc(230, 230, 26)  # a smaller coin of a mixed pile, half as sure
    for c in (*coins, small_coin):
        image[c] = (190, 215, 230)
    sure = [_piece(c) for c in coins]
    # the gap between three coins, boxed as a coin and partly under them: not a whole disc, so no rim test
    gap = _with_conf(_piece(_disc(75, 100, 30) & ~coins[0] & ~coins[1] & ~coins[2]), 0.6)
    assert not shows_whole(gap) and len(drop_faint_rims([*sure, gap], image, 0.5)) == 4
    coin = _with_conf(_piece(small_coin), 0.5)
    kept = [id(i) for i in drop_bare_tray([*sure, gap, coin], image, 0.2)]
    assert id(gap) not in kept and id(coin) in kept and all(id(s) in kept for s in sure)
    # a coin lying mostly hidden between the others shows metal, not tray
    hidden = _disc(75, 100, 30) & ~coins[0] & ~coins[1] & ~coins[2]
    metal = image.copy()
    metal[hidden] = (170, 200, 215)
    assert len(drop_bare_tray([*sure, gap], metal, 0.2)) == 4
    # a confident box, an object, a frame without a confident coin, a zero share: kept
    assert len(drop_bare_tray([*sure, _with_conf(gap, RIM_REFERENCE_CONF)], image, 0.2)) == 4
    assert len(drop_bare_tray([*sure, _with_conf(gap, 0.6, is_coin=False)], image, 0.2)) == 4
    assert len(drop_bare_tray([gap, coin], image, 0.2)) == 2
    assert len(drop_bare_tray([*sure, gap], image, 0.0)) == 4
    # coins the colour of the tray: colour tells nothing, every box is kept
    dull = _weave(1)
    assert tray_colour(dull, sure) is not None and len(drop_bare_tray([*sure, gap], dull, 0.2)) == 4
    # a cup region: only its inside is tray; a region the coins fill leaves too little tray to judge by
    assert len(drop_bare_tray([*sure, gap], image, 0.2, CupRoi(150.0, 150.0, 140.0))) == 3
    assert tray_colour(image, sure, CupRoi(60.0, 60.0, 38.0)) is None


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


@pytest.mark.parametrize("seed", range(5))
def test_hull_distance_matches_the_distance_to_every_segment(seed: int) -> None:
    from models.detector import _hull_distance, _segment_distance

    rng = np.random.default_rng(seed)
    # a coin's outline pixels: a noisy circle with a bite taken out, on integer coordinates like a contour's
    ang = np.sort(rng.uniform(0, 2 * np.pi, 400))
    r = 40 + rng.normal(0, 1.5, 400) - 15 * (np.abs(ang - 2.0) < 0.5)
    pts = np.round(np.stack([100 + r * np.cos(ang), 80 + r * np.sin(ang)], axis=1)).astype(np.float32)
    hull = cv2.convexHull(pts)
    got = _hull_distance(pts, hull)
    want = _segment_distance(pts, hull.reshape(-1, 2).astype(np.float64))
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert (got <= 1.5).sum() > 50 and (got > 1.5).sum() > 20  # both sides of the rim test are exercised


def test_hull_distance_of_a_degenerate_hull() -> None:
    from models.detector import _hull_distance

    line = np.array([[0, 0], [5, 0], [10, 0]], np.float32)
    np.testing.assert_allclose(_hull_distance(line, cv2.convexHull(line)), [0, 0, 0], atol=1e-6)
    point = np.array([[3, 4]], np.float32)
    np.testing.assert_allclose(_hull_distance(point, cv2.convexHull(point)), [0], atol=1e-6)
