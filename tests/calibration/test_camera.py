"""Camera geometry on synthetic images of known scale, drawn with OpenCV and numpy."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import (
    CalibrationError,
    CameraCalibration,
    CupRoi,
    calibrate_image,
    calibration_path,
    detect_cup_roi,
    draw_overlay,
    estimate_from_aruco,
    estimate_from_checkerboard,
    estimate_from_coin,
    load_calibration,
    read_image,
    save_calibration,
)
from tests.calibration.views import exposure, table

SUPERSAMPLE = 8
EURO_1_MM = 23.25


def textured_background(rng: np.random.Generator, h: int = 480, w: int = 640) -> np.ndarray:
    """``(h, w, 3)`` float32 mottled, grained surface (a table top), values around 100."""
    base = cv2.resize(
        rng.normal(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    grain = 10.0 * np.sin(np.arange(w, dtype=np.float32)[None, :] / 7.0 + 3.0 * base)
    bg = 95.0 + 18.0 * base + 12.0 * fine + grain
    return np.stack([bg * 0.8, bg * 0.95, bg * 1.1], axis=2)


def _coverage(mask_fn, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Area fraction of each pixel in ``[y0:y1, x0:x1]`` where ``mask_fn(x, y)`` holds (pixel centres at integers)."""
    ys = (np.arange(y0 * SUPERSAMPLE, y1 * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    xs = (np.arange(x0 * SUPERSAMPLE, x1 * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    inside = mask_fn(xs[None, :], ys[:, None]).astype(np.float32)
    return cv2.resize(inside, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)


def draw_disc(img: np.ndarray, cx: float, cy: float, r: float, metallic: bool = True, level: float = 200.0) -> None:
    """Paint an anti-aliased disc of radius ``r`` px in place: shaded metal with a relief ring, or flat ``level``."""
    x0, y0 = max(0, int(cx - r - 4)), max(0, int(cy - r - 4))
    x1, y1 = min(img.shape[1], math.ceil(cx + r + 4)), min(img.shape[0], math.ceil(cy + r + 4))
    cov = _coverage(lambda x, y: np.hypot(x - cx, y - cy) <= r, x0, y0, x1, y1)[..., None]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rr = np.hypot(xx - cx, yy - cy) / r
    if metallic:
        shade = level - 40 * rr + 25 * np.cos(3 * np.arctan2(yy - cy, xx - cx)) * rr
        shade = shade + np.where(np.abs(rr - 0.88) < 0.02, -30.0, 0.0)
        paint = np.stack([shade - 10, shade, shade + 5], axis=2)
    else:
        paint = np.full((y1 - y0, x1 - x0, 3), level, np.float32)
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - cov) + paint * cov


def finish(rng: np.random.Generator, img: np.ndarray, blur: float = 1.0, noise: float = 4.0) -> np.ndarray:
    """Lens blur and sensor noise, to uint8 BGR."""
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), blur) + rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def coin_image(rng: np.random.Generator, px_per_mm: float, diameter_mm: float = EURO_1_MM) -> tuple[np.ndarray, tuple]:
    img = textured_background(rng)
    r = diameter_mm * px_per_mm / 2
    cx, cy = rng.uniform(r + 10, 640 - r - 10), rng.uniform(r + 10, 480 - r - 10)
    draw_disc(img, cx, cy, r)
    return finish(rng, img), (cx, cy, r)


def checkerboard_image(rng: np.random.Generator, square_px: float, squares: tuple[int, int], angle: float = 0.0):
    """A white sheet with a ``squares`` (columns, rows) board of ``square_px`` squares, rotated by ``angle`` deg."""
    h, w = 480, 640
    img = textured_background(rng, h, w)
    cols, rows = squares
    bw, bh = cols * square_px, rows * square_px
    cx, cy = w / 2 + 3.3, h / 2 - 1.7
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def board_uv(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - cx, y - cy
        return c * dx + s * dy + bw / 2, -s * dx + c * dy + bh / 2

    def sheet(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = board_uv(x, y)
        return (u > -square_px) & (u < bw + square_px) & (v > -square_px) & (v < bh + square_px)

    def black(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = board_uv(x, y)
        inside = (u >= 0) & (u < bw) & (v >= 0) & (v < bh)
        return inside & ((np.floor(u / square_px) + np.floor(v / square_px)) % 2 == 0)

    half = math.hypot(bw, bh) / 2 + 2 * square_px
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
    sheet_cov = _coverage(sheet, x0, y0, x1, y1)[..., None]
    black_cov = _coverage(black, x0, y0, x1, y1)[..., None]
    patch = img[y0:y1, x0:x1] * (1 - sheet_cov) + 230.0 * sheet_cov
    img[y0:y1, x0:x1] = patch * (1 - black_cov) + 25.0 * black_cov
    return finish(rng, img, blur=0.8, noise=3.0)


@pytest.mark.parametrize("px_per_mm", [2.5, 4.0, 6.3, 9.0])
def test_coin_scale_within_one_percent(px_per_mm: float) -> None:
    rng = np.random.default_rng(int(px_per_mm * 10))
    for _ in range(2):
        image, (cx, cy, _) = coin_image(rng, px_per_mm)
        est = estimate_from_coin(image, EURO_1_MM)
        assert est.method == "coin"
        assert est.px_per_mm == pytest.approx(px_per_mm, rel=0.01)
        assert est.ellipse is not None
        assert math.hypot(est.ellipse.cx - cx, est.ellipse.cy - cy) < 0.5
        assert est.points.shape[1] == 2 and len(est.points) > 100


def test_coin_inside_a_tray_rim() -> None:
    rng = np.random.default_rng(7)
    img = textured_background(rng)
    draw_disc(img, 322.0, 241.0, 205.0, metallic=False, level=20.0)  # black tray
    draw_disc(img, 280.4, 260.7, EURO_1_MM * 5.0 / 2)
    image = finish(rng, img)
    est = estimate_from_coin(image, EURO_1_MM)
    assert est.px_per_mm == pytest.approx(5.0, rel=0.01)  # the coin, not the rim
    roi = detect_cup_roi(image)
    assert roi is not None
    assert (roi.x, roi.y, roi.radius) == pytest.approx((322.0, 241.0, 205.0), abs=1.5)
    assert roi.contains(280.4, 260.7) and not roi.contains(5, 5)


def test_no_coin_raises() -> None:
    rng = np.random.default_rng(11)
    for _ in range(4):
        image = finish(rng, textured_background(rng))
        with pytest.raises(CalibrationError, match="no coin"):
            estimate_from_coin(image, EURO_1_MM)
        assert detect_cup_roi(image) is None
    with pytest.raises(CalibrationError):
        estimate_from_coin(np.full((240, 320, 3), 128, np.uint8), EURO_1_MM)
    with pytest.raises(ValueError):
        estimate_from_coin(np.full((240, 320, 3), 128, np.uint8), -1.0)


@pytest.mark.parametrize(("square_px", "angle"), [(24.0, 0.0), (31.7, 7.0), (40.25, -4.0)])
def test_checkerboard_scale_within_half_percent(square_px: float, angle: float) -> None:
    rng = np.random.default_rng(int(square_px * 100))
    image = checkerboard_image(rng, square_px, (8, 6), angle)
    est = estimate_from_checkerboard(image, (7, 5), square_mm=10.0)
    assert est.method == "checkerboard"
    assert est.points.shape == (35, 2)
    assert est.px_per_mm == pytest.approx(square_px / 10.0, rel=0.005)


def test_missing_checkerboard_raises() -> None:
    rng = np.random.default_rng(2)
    image = finish(rng, textured_background(rng))
    with pytest.raises(CalibrationError, match="checkerboard"):
        estimate_from_checkerboard(image, (7, 5), 10.0)
    with pytest.raises(ValueError):
        estimate_from_checkerboard(image, (1, 5), 10.0)


def test_aruco_marker_scale() -> None:
    rng = np.random.default_rng(3)
    side_px = 160
    marker = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), 7, side_px)
    img = textured_background(rng)
    img[80:400, 160:480] = 235.0  # white quiet zone
    img[160 : 160 + side_px, 240 : 240 + side_px] = marker[..., None].astype(np.float32) * (210 / 255) + 20
    image = finish(rng, img, blur=0.7, noise=2.0)
    est = estimate_from_aruco(image, marker_mm=40.0)
    assert est.method == "aruco"
    assert est.px_per_mm == pytest.approx(side_px / 40.0, rel=0.01)
    with pytest.raises(CalibrationError):
        estimate_from_aruco(finish(rng, textured_background(rng)), 40.0)


def test_calibration_round_trip(tmp_path: Path) -> None:
    cal = CameraCalibration(
        px_per_mm=4.123,
        image_width=640,
        image_height=480,
        method="coin",
        roi=CupRoi(320.5, 240.0, 200.0),
        created_at="2026-01-02T03:04:05+00:00",
        reference_mm=EURO_1_MM,
    )
    path = save_calibration(cal, tmp_path)
    assert path == calibration_path(tmp_path) and path.name == "calibration.json"
    assert load_calibration(tmp_path) == cal
    assert json.loads(path.read_text())["roi"] == {"x": 320.5, "y": 240.0, "radius": 200.0}
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]  # no temporary left behind
    no_roi = CameraCalibration(px_per_mm=2.0, image_width=10, image_height=10, method="manual")
    no_roi.save(path)
    assert CameraCalibration.load(path) == no_roi
    assert cal.to_mm(41.23) == pytest.approx(10.0)
    assert load_calibration(tmp_path / "nothing") is None


def test_corrupt_calibration_raises(tmp_path: Path) -> None:
    path = calibration_path(tmp_path)
    path.write_text("{not json")
    with pytest.raises(CalibrationError):
        load_calibration(tmp_path)
    path.write_text(json.dumps({"version": 1, "px_per_mm": -3, "image_size": [10, 10], "method": "coin"}))
    with pytest.raises(CalibrationError):
        load_calibration(tmp_path)
    path.write_text(json.dumps({"version": 99, "px_per_mm": 3, "image_size": [10, 10], "method": "coin"}))
    with pytest.raises(CalibrationError, match="version"):
        load_calibration(tmp_path)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1,2,3", True),
        (" 10.5, 20 ,30.25", True),
        ("square:10,20,30", True),
        ("round:1,2,3", True),
        ("1,2", False),
        ("a,b,c", False),
        ("1,2,0", False),
        ("oval:1,2,3", False),
    ],
)
def test_roi_parse(text: str, ok: bool) -> None:
    if ok:
        roi = CupRoi.parse(text)
        assert roi.radius > 0
        assert roi.shape == ("square" if text.startswith("square") else "round")
    else:
        with pytest.raises(ValueError):
            CupRoi.parse(text)


def test_roi_inset_matches_a_rasterised_tray() -> None:
    """The signed distance of a rounded-square tray against a brute-force distance transform of its raster."""
    roi = CupRoi(160.0, 150.0, 100.0, "square", 0.25)
    yy, xx = np.mgrid[0:320, 0:320].astype(np.float64)
    inside = roi.inset(xx, yy) >= 0
    # the raster: the union of two rectangles and four corner discs, as the synthetic trays are drawn
    c, a = 25.0, 75.0
    dx, dy = np.abs(xx - 160.0), np.abs(yy - 150.0)
    raster = ((dx <= 100) & (dy <= a)) | ((dx <= a) & (dy <= 100)) | ((dx - a) ** 2 + (dy - a) ** 2 <= c**2)
    assert np.mean(inside != raster) < 0.002
    dist_in = cv2.distanceTransform(raster.astype(np.uint8), cv2.DIST_L2, 5)
    sel = raster & (dist_in > 3)
    assert np.allclose(roi.inset(xx[sel], yy[sel]), dist_in[sel], atol=1.5)
    # a coin of radius 20 just inside a side is whole; pushed 5 px further it is cut
    assert not roi.cuts(160.0 + 100 - 20, 150.0, 20.0) and roi.cuts(160.0 + 100 - 15, 150.0, 20.0)
    # the corner is rounded: a coin in it is cut before it reaches the bounding square
    assert roi.cuts(160 + 100 - 21, 150 + 100 - 21, 20.0)
    assert not CupRoi(160.0, 150.0, 100.0).cuts(160 + 50, 150 + 50, 20.0)


def test_roi_round_trip_and_drawing() -> None:
    tray = CupRoi(50.5, 60.0, 40.0, "square", 0.3)
    assert CupRoi.from_dict(tray.to_dict()) == tray
    cup = CupRoi(1.0, 2.0, 3.0)
    assert cup.to_dict() == {"x": 1.0, "y": 2.0, "radius": 3.0}  # round cups keep the old file layout
    assert CupRoi.from_dict({"x": 1, "y": 2, "radius": 3}) == cup
    with pytest.raises(ValueError, match="corner"):
        CupRoi(1, 2, 3, "square", 1.5)
    canvas = np.zeros((120, 120, 3), np.uint8)
    tray.draw(canvas, (255, 0, 0), 1)
    ys, xs = np.nonzero(canvas[:, :, 0])
    assert xs.min() == pytest.approx(10.5, abs=1.5) and xs.max() == pytest.approx(90.5, abs=1.5)
    assert ys.min() == pytest.approx(20.0, abs=1.5) and ys.max() == pytest.approx(100.0, abs=1.5)
    assert canvas[60, 50].sum() == 0 and canvas[21, 12].sum() == 0  # not inside, not in the rounded-off corner


def test_calibrate_image_and_overlay(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    image, _ = coin_image(rng, 5.0)
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    cal, est = calibrate_image(image, reference_mm=EURO_1_MM, roi=CupRoi(1, 2, 3), now=now)
    assert cal.px_per_mm == est.px_per_mm and cal.roi == CupRoi(1, 2, 3)
    assert (cal.image_width, cal.image_height, cal.created_at) == (640, 480, "2026-05-01T12:00:00+00:00")
    overlay = draw_overlay(image, est, cal.roi)
    assert overlay.shape == image.shape and not np.array_equal(overlay, image)
    with pytest.raises(ValueError, match="exactly one"):
        calibrate_image(image, reference_mm=EURO_1_MM, aruco_mm=20.0)
    with pytest.raises(ValueError, match="square"):
        calibrate_image(image, checkerboard=(7, 5))


def test_read_image(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="no such"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(CalibrationError, match="cannot read"):
        read_image(bad)
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((4, 5, 3), np.uint8))
    assert read_image(good).shape == (4, 5, 3)


@pytest.mark.real_data
def test_real_photo_coin_outline(real_data: Path) -> None:
    """A phone photo of a pile of 1-denomination euro coins: some coin's outline is found to sub-pixel fit."""
    photo = real_data / "euro_kaa" / "photos" / "single" / "IMG_4187.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is absent")
    image = read_image(photo)
    est = estimate_from_coin(image, EURO_1_MM)
    assert est.ellipse is not None
    assert est.residual_px < 1.0
    assert est.ellipse.minor / est.ellipse.major > 0.95
    assert 60 < est.ellipse.major < 200  # coins in these 1600 px photos are about 100-130 px across


def test_the_cups_own_outline_is_never_taken_for_the_reference_coin() -> None:
    r = EURO_1_MM * 4.0 / 2  # 4 px/mm
    dark = table().astype(np.float32)
    draw_disc(dark, 250.0, 200.0, r, metallic=False, level=60.0)  # a coin that stands out from the cup's floor
    cal, _ = calibrate_image(exposure(np.clip(dark, 0, 255).astype(np.uint8), 1), reference_mm=EURO_1_MM)
    assert cal.px_per_mm == pytest.approx(4.0, rel=0.01)
    assert cal.roi is not None and cal.roi.radius == pytest.approx(193, abs=3)  # the cup's floor, found as well
    # a coin as light as the floor is not found: the floor's circle, alone left, is the cup, not a coin
    pale = table().astype(np.float32)
    draw_disc(pale, 250.0, 200.0, r)
    image = exposure(np.clip(pale, 0, 255).astype(np.uint8), 2)
    with pytest.raises(CalibrationError, match="no coin found, only the cup's own round outline"):
        calibrate_image(image, reference_mm=EURO_1_MM)
    wrong = estimate_from_coin(image, EURO_1_MM)  # what a coin search that does not know the cup makes of it
    assert wrong.px_per_mm > 15
