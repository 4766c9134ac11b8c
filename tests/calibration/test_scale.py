"""Pixels per millimetre from a coin, a checkerboard or an ArUco marker, to within a percent."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import (
    calibrate_image,
    detect_cup_roi,
    read_image,
)
from calibration.scale import CalibrationError, estimate_from_aruco, estimate_from_checkerboard, estimate_from_coin
from models.synth.mint import generate_mint
from models.synth.scene import CupKind, SceneAssets, SceneOptions, render_cup
from tests.calibration.reference_images import (
    EURO_1_MM,
    checkerboard_image,
    coin_image,
    draw_disc,
    finish,
    textured_background,
)
from tests.calibration.views import exposure, table


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


def test_a_coin_of_another_size_beside_the_one_measured_is_warned_about() -> None:
    rng = np.random.default_rng(11)
    img = textured_background(rng)
    draw_disc(img, 200.0, 240.0, EURO_1_MM * 4.0 / 2)  # the reference, at 4 px/mm
    one = finish(rng, img.copy())
    assert estimate_from_coin(one, EURO_1_MM).warning == ""
    draw_disc(img, 460.0, 240.0, 25.75 * 4.0 / 2)  # a 2 euro coin beside it: which is the reference?
    two = estimate_from_coin(finish(rng, img), EURO_1_MM)
    assert "coins of other sizes lie beside it" in two.warning and "photograph the reference alone" in two.warning
    measured = 0.5 * (two.ellipse.major + two.ellipse.minor) if two.ellipse else 0.0
    assert f"{measured:.0f} px across" in two.warning


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
    # a coin search that does not know the cup refuses the floor all the same: it spans most of the photo
    with pytest.raises(CalibrationError, match=r"415 px across, more than half the photo's shorter side \(480 px\)"):
        estimate_from_coin(image, EURO_1_MM)


def test_without_a_cup_region_the_cups_outline_is_still_never_the_reference_coin() -> None:
    """``cupcheck calibrate --no-roi``: the calibration keeps the whole image, but the rim is found all the same,
    to be passed over; it was once measured as the coin, a scale several times too high, said nowhere."""
    r = EURO_1_MM * 4.0 / 2
    dark = table().astype(np.float32)
    draw_disc(dark, 250.0, 200.0, r, metallic=False, level=60.0)
    cal, _ = calibrate_image(
        exposure(np.clip(dark, 0, 255).astype(np.uint8), 1), reference_mm=EURO_1_MM, detect_roi=False
    )
    assert cal.px_per_mm == pytest.approx(4.0, rel=0.01) and cal.roi is None
    pale = table().astype(np.float32)
    draw_disc(pale, 250.0, 200.0, r)  # not found: only the floor's circle is left
    image = exposure(np.clip(pale, 0, 255).astype(np.uint8), 2)
    with pytest.raises(CalibrationError, match="no coin found, only the cup's own round outline"):
        calibrate_image(image, reference_mm=EURO_1_MM, detect_roi=False)


@pytest.mark.parametrize("seed", [3, 4])
def test_a_circle_holding_another_off_its_centre_is_not_the_reference_coin(seed: int) -> None:
    """A small dark tray (220 px, under half the photo) holding a large coin a little off its centre: the coin is
    too large to be told from the tray's relief, and the tray would be measured as the coin, 1.6 times too large."""
    rng = np.random.default_rng(seed)
    img = textured_background(rng)
    draw_disc(img, 320.0, 240.0, 110.0, metallic=False, level=20.0)
    draw_disc(img, 328.0, 240.0, 68.0)
    with pytest.raises(CalibrationError, match="the circle found holds another circle inside it"):
        estimate_from_coin(finish(rng, img), EURO_1_MM)


def test_a_coin_with_a_core_of_another_metal_is_measured_to_its_outline() -> None:
    """A bimetallic coin's core is a circle inside it, but round the same centre: the coin is still the coin."""
    rng = np.random.default_rng(3)
    img = textured_background(rng)
    draw_disc(img, 300.0, 230.0, 60.0)
    draw_disc(img, 300.0, 230.0, 42.0, metallic=False, level=120.0)  # both circles are found
    est = estimate_from_coin(finish(rng, img), EURO_1_MM)
    assert est.px_per_mm == pytest.approx(120.0 / EURO_1_MM, rel=0.01)


@pytest.fixture(scope="module")
def mint_assets() -> SceneAssets:
    return SceneAssets(generate_mint(12, 7))


@pytest.mark.parametrize("index", [1, 12, 14, 20, 24])
def test_a_minted_coin_is_measured_to_its_outer_edge(mint_assets: SceneAssets, index: int) -> None:
    """A rendered coin with a raised rim or a bead ring: its strongest circle lies on its face, 4 to 9 % inside its
    outline, where the detector measures the whole disc. The scale must come from the outline."""
    options = SceneOptions(image_size=640, max_coins=1, kind_weights={CupKind.PURE: 1.0})
    scene = render_cup(mint_assets, 5, index, options)
    (coin,) = [c for c in scene.instances if c.is_coin]
    est = estimate_from_coin(scene.image, coin.diameter_mm, cup=scene.tray)
    assert est.ellipse is not None
    assert math.hypot(est.ellipse.cx - coin.center[0], est.ellipse.cy - coin.center[1]) < 3.0
    assert est.px_per_mm == pytest.approx(coin.diameter_px / coin.diameter_mm, rel=0.02)


@pytest.mark.parametrize("pattern", [(3, 3), (4, 3), (5, 3), (6, 5)])
def test_a_board_searched_with_the_wrong_pattern_size_is_refused(pattern: tuple[int, int]) -> None:
    """OpenCV's fallback search finds corners of a 9x6 board for smaller patterns too, not one square apart."""
    image = checkerboard_image(np.random.default_rng(5), 20.0, (10, 7))  # 9x6 inner corners, 20 px squares
    assert estimate_from_checkerboard(image, (9, 6), 5.0).px_per_mm == pytest.approx(4.0, rel=0.005)
    cols, rows = pattern
    with pytest.raises(CalibrationError, match=f"the {cols}x{rows} corners found are not a regular grid"):
        estimate_from_checkerboard(image, pattern, 5.0)


def test_a_board_of_too_few_corners_or_that_opencv_refuses_is_a_calibration_error() -> None:
    image = checkerboard_image(np.random.default_rng(6), 30.0, (8, 6))
    for pattern in ((2, 5), (2, 2), (3, 2)):
        with pytest.raises(ValueError, match="at least 3x3 inner corners"):
            estimate_from_checkerboard(image, pattern, 10.0)
    with pytest.raises(CalibrationError, match="OpenCV could not search for a 3x3 checkerboard"):
        estimate_from_checkerboard(np.full((8, 8, 3), 128, np.uint8), (3, 3), 10.0)  # too small to threshold
