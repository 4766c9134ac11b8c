"""Camera geometry on synthetic images of known scale, drawn with OpenCV and numpy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import (
    CameraCalibration,
    CupRoi,
    calibrate_image,
    calibration_path,
    detect_cup_roi,
    draw_overlay,
    load_calibration,
    read_image,
    save_calibration,
)
from calibration.scale import CalibrationError
from tests.calibration.reference_images import (
    EURO_1_MM,
    coin_image,
)


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
    with pytest.raises(CalibrationError, match="not a readable image"):
        read_image(bad)
    with pytest.raises(CalibrationError, match="a folder, not an image"):
        read_image(tmp_path)
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((4, 5, 3), np.uint8))
    assert read_image(good).shape == (4, 5, 3)
    # a JPEG cut short: cv2.imread fills the rest with grey, and the calibration would measure it
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    with pytest.raises(CalibrationError, match="not a readable image"):
        read_image(cut)


@pytest.mark.parametrize(("seed", "index", "max_coins"), [(99, 28, 12), (99, 12, 6), (7, 10, 6)])
def test_the_cup_region_is_the_floor_inside_the_rim(seed: int, index: int, max_coins: int) -> None:
    """A cup's rim is a band: the region once ended at its outer edge (4 to 11 % too large), so a coin slid under
    the rim was called whole and measured small. The floor's edge inside it is the region; a shading ring on the
    floor (7, 10) is no rim."""
    from models.synth.mint import generate_mint
    from models.synth.scene import CupKind, SceneAssets, SceneOptions, render_cup

    options = SceneOptions(image_size=640, max_coins=max_coins, kind_weights={CupKind.PURE: 1.0})
    scene = render_cup(SceneAssets(generate_mint(6, seed)), seed, index, options)
    roi = detect_cup_roi(scene.image)
    assert roi is not None
    assert roi.radius == pytest.approx(scene.cup_diameter_mm * scene.px_per_mm / 2, rel=0.01)
