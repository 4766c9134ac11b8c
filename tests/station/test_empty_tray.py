"""Photographing the empty tray from the station: refused while anything lies in it, then used for every cup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from calibration.camera import load_empty_tray
from models.bundle import load_bundle
from models.detector import Detector
from models.pipeline import Pipeline
from models.synth.mint import generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import CupKind, Frame
from station.empty_tray import EmptyTrayError, record_empty_tray
from station.main_window import MainWindow
from tests.calibration.views import camera
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import enrolled_gallery, write_bundle
from tests.station.conftest import OpenWindow
from tests.station.nearest_type_pipeline import NearestTypePipeline


@pytest.fixture(scope="module")
def real_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    folder = tmp_path_factory.mktemp("bundle")
    path, embedder = write_bundle(folder, embedder_file=write_tiny_checkpoint(folder / "embedder.pt"))
    return Pipeline.from_parts(
        load_bundle(path), enrolled_gallery(embedder), embedder=embedder, detector=Detector.load()
    )


def test_an_empty_tray_is_kept_and_a_tray_with_coins_refused(real_pipeline: Pipeline, tmp_path: Path) -> None:
    assets = SceneAssets(generate_mint(12, 3))
    opts = SceneOptions(image_size=480, kind_weights={CupKind.PURE: 1.0}, max_coins=6, empty_reference=True)
    scene = render_cup(assets, 31, 2, opts)
    assert scene.empty is not None and scene.instances
    home = tmp_path / "home"
    with pytest.raises(EmptyTrayError, match=r"the tray is not empty \(\d+ coins? seen\)"):
        record_empty_tray(real_pipeline, Frame(scene.image), home)
    assert load_empty_tray(home) is None and real_pipeline.empty_tray is None
    message = record_empty_tray(real_pipeline, Frame(scene.empty), home)
    assert "every cup is now compared with it" in message
    stored = load_empty_tray(home)
    assert stored is not None and np.array_equal(stored, scene.empty)
    assert real_pipeline.empty_tray is not None and np.array_equal(real_pipeline.empty_tray, scene.empty)
    real_pipeline.empty_tray = None


def test_a_calibrated_station_whose_camera_moved_refuses_a_new_empty_tray(
    real_pipeline: Pipeline, tmp_path: Path
) -> None:
    from calibration.camera import CameraCalibration

    # a tray on a speckled table (the seed is chosen for it): its surroundings tell the camera's position
    opts = SceneOptions(image_size=320, max_coins=6, empty_reference=True)
    empty = render_cup(SceneAssets(generate_mint(12, 3)), 3, 5, opts).empty
    assert empty is not None
    h, w = empty.shape[:2]
    knocked = camera(empty, dy=12.0)
    station = real_pipeline.with_threshold(real_pipeline.threshold)
    station.empty_tray = empty
    home = tmp_path / "home"
    # not calibrated: the empty tray is all that was set up, so taking it again is the fix
    assert "every cup is now compared with it" in record_empty_tray(station, Frame(knocked), home)
    station.empty_tray = empty
    station.detector = Detector.load().with_calibration(
        CameraCalibration(px_per_mm=6.0, image_width=w, image_height=h, method="manual")
    )
    with pytest.raises(EmptyTrayError, match=r"the camera has moved since it was set up \(the view: 1[0-4] px down\)"):
        record_empty_tray(station, Frame(knocked), home / "calibrated")
    assert station.empty_tray is empty and load_empty_tray(home / "calibrated") is None
    record_empty_tray(station, Frame(empty.copy()), home / "calibrated")  # the same view again: taken
    assert load_empty_tray(home / "calibrated") is not None


def test_a_calibrated_station_refuses_an_empty_tray_of_another_size(real_pipeline: Pipeline, tmp_path: Path) -> None:
    from calibration.camera import CameraCalibration

    # the tray on the speckled table of the test above: its surroundings tell a knocked camera
    opts = SceneOptions(image_size=320, max_coins=6, empty_reference=True)
    empty = render_cup(SceneAssets(generate_mint(12, 3)), 3, 5, opts).empty
    assert empty is not None
    station = real_pipeline.with_threshold(real_pipeline.threshold)
    station.detector = Detector.load().with_calibration(
        CameraCalibration(px_per_mm=6.0, image_width=320, image_height=320, method="manual")
    )
    station.empty_tray = empty
    home = tmp_path / "home"
    smaller = np.asarray(cv2.resize(empty, (240, 180), interpolation=cv2.INTER_AREA), np.uint8)  # at another size
    with pytest.raises(
        EmptyTrayError,
        match=r"^the photo is 240×180 pixels but the camera was calibrated at 320×320: set the camera back to 320×320",
    ):
        record_empty_tray(station, Frame(smaller), home)
    assert station.empty_tray is empty and load_empty_tray(home) is None
    assert station.setup_view is not None  # the moved-camera check still sees a knock
    move = station.setup_view.compare(camera(empty, dx=20.0))
    assert move is not None and move.moved
    # a station never calibrated: the empty tray is all that was set up, so a photo at the new size replaces it
    uncalibrated = real_pipeline.with_threshold(real_pipeline.threshold)
    uncalibrated.empty_tray = empty
    assert "every cup is now compared with it" in record_empty_tray(uncalibrated, Frame(smaller), home / "plain")


def test_a_model_without_a_detector_takes_no_empty_tray(pipeline: NearestTypePipeline, tmp_path: Path) -> None:
    with pytest.raises(EmptyTrayError, match="does not compare cups with an empty tray"):
        record_empty_tray(pipeline, Frame(np.zeros((64, 64, 3), np.uint8)), tmp_path)


@pytest.fixture
def window_with_home(window_with: OpenWindow) -> Iterator[MainWindow]:
    with window_with() as win:
        yield win


def test_the_button_asks_the_worker_and_shows_its_answer(qtbot: QtBot, window_with_home: MainWindow) -> None:
    win = window_with_home
    assert win.view.empty_tray_button.isVisible()
    with qtbot.waitSignal(win.controller.empty_tray_shown, timeout=30_000) as shown:
        qtbot.mouseClick(win.view.empty_tray_button, Qt.MouseButton.LeftButton)
    ok, message = shown.args
    # the stand-in model has no detector: the worker says so, and the window is usable again
    assert not ok and "does not compare cups with an empty tray" in message
    assert win.view.reason.text() == message
    assert win.view.check_button.isEnabled() and win.view.empty_tray_button.isEnabled()


def test_the_button_waits_while_the_camera_is_not_as_it_was_set_up(window_with_home: MainWindow) -> None:
    win = window_with_home
    frame = win.controller.frame
    assert frame is not None
    h, w = frame.image.shape[:2]
    win.controller.camera_size = (2 * w, 2 * h)  # set up at twice the size the camera now delivers
    win.controller.show_fps(12.0)
    assert win.view.banner.text() == "CAMERA" and not win.view.empty_tray_button.isEnabled()
    assert not win.controller.take_empty_tray()  # nor taken another way (a photo at this size is refused)
    assert win.view.banner.text() == "CAMERA" and not win.controller.busy
    win.controller.camera_size = (w, h)  # set back
    win.controller.show_fps(12.0)
    assert win.view.banner.text() == "READY" and win.view.empty_tray_button.isEnabled()
