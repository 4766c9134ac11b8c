"""The printable speckle mat: a camera that sees it around the cup is told when it moves, near or far."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from calibration.camera import CupRoi
from calibration.mat import MatSpec, speckle_mat
from calibration.movement import SetupView
from station.cli import main
from tests.calibration.views import camera, exposure


def _station_view(page: np.ndarray, spec: MatSpec, px_per_mm: float) -> tuple[np.ndarray, CupRoi]:
    """A 640×480 camera looking down at the mat (landscape) from a height that gives ``px_per_mm``, with a cup of
    96 mm in the middle."""
    land = cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE)
    s = px_per_mm / spec.px_per_mm
    img = cv2.resize(land, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    y0, x0 = (img.shape[0] - 480) // 2, (img.shape[1] - 640) // 2
    assert y0 >= 0 and x0 >= 0, "the mat must fill the view"
    view = cv2.cvtColor(np.ascontiguousarray(img[y0 : y0 + 480, x0 : x0 + 640]), cv2.COLOR_GRAY2BGR)
    r = 48 * px_per_mm
    cv2.circle(view, (320, 240), round(r) + 6, (60, 140, 60), 10)  # the cup's rim
    cv2.circle(view, (320, 240), round(r), (200, 205, 200), -1)  # its floor
    return view, CupRoi(320.0, 240.0, r)


def test_the_mat_lets_a_knocked_camera_be_told_near_and_far() -> None:
    spec = MatSpec(paper="a3", dpi=150)
    page = speckle_mat(spec)
    assert page.shape == (spec.size_px[1], spec.size_px[0]) and page.dtype == np.uint8
    assert 0.15 < (page < 128).mean() < 0.5  # dots, and paper between them
    assert np.array_equal(page, speckle_mat(spec)) and not np.array_equal(page, speckle_mat(MatSpec("a3", 150, 1)))
    for px_per_mm in (1.7, 3.0):  # the camera high above the tray (an A3 sheet fills the view), or close
        view, roi = _station_view(page, spec, px_per_mm)
        setup = SetupView(exposure(view, 1), roi)
        assert setup.features >= 300  # what doctor asks of an empty-tray photo, and more
        still = setup.compare(exposure(view, 2))
        assert still is not None and not still.moved and still.rim_shift_px < 0.5
        knocked = setup.compare(exposure(camera(view, dx=8.0, scale=1.02), 3))
        assert knocked is not None and knocked.moved
        assert knocked.scale == pytest.approx(1.02, abs=0.002)


def test_the_command_writes_a_page_that_prints_at_its_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mat.png"
    assert main(["mat", "--out", str(out), "--paper", "letter", "--dpi", "100"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: LETTER, 850×1100 px at 100 dpi. Print it at 100 %")
    with Image.open(out) as image:
        assert image.size == (850, 1100) and image.info["dpi"] == pytest.approx((100, 100), abs=0.01)
    assert main(["mat", "--out", str(tmp_path / "mat.jpg")]) == 2
    assert "write the mat as a .png" in capsys.readouterr().err
    assert main(["mat", "--out", str(out), "--dpi", "20"]) == 2
    assert "dpi must be between 72 and 600" in capsys.readouterr().err
    assert main(["mat", "--out", str(out), "--paper", "a5"]) == 2
    assert "unknown paper 'a5'; one of a4, a3, letter" in capsys.readouterr().err
