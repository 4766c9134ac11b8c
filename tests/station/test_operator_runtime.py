"""The operator window against what happens around it while it runs: the next order scanned over the cup just
checked, Space pressed twice or a hand passing over a cup, a type dropped from the gallery, an empty-tray photo on a
station never calibrated, a gallery loaded while the camera is knocked, and a black camera."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from calibration.movement import CameraMove
from db.spool import SpoolingRepository
from models.bundle import load_bundle
from models.detector import Detector
from models.pipeline import Pipeline, UnknownTypeError
from models.synth.mint import Mint, generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import CupKind, Frame, Side, Verdict
from station.camera import dark_picture
from station.config import StationConfig
from station.controllers.catalog import OrderBook, TypeCatalog
from station.controllers.model_follow import Loaded
from station.controllers.operator import ALREADY_TEXT, DARK_PROBLEM, OperatorController
from station.controllers.overlay import PASS_HEX
from station.controllers.stillness import StillnessGate
from station.main_window import MainWindow
from station.views.operator import OperatorView
from station.worker import CheckRequest, InferenceWorker, StoreResult
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import enrolled_gallery, write_bundle
from tests.station.conftest import Database, OpenWindow, SteppingClock, shown_window
from tests.station.nearest_type_pipeline import NearestTypePipeline, compose_cup, four_coins
from tests.station.test_operator import (
    ORDER,
    SetUpPipeline,
    check_with_space,
    feed,
    knocked,
    operator_window,
    scan_order,
)

MOVED = CameraMove(dx=14.0, dy=0.0, scale=1.0, rotation_deg=0.0, rim_shift_px=14.0, matches=90, moved=True)
BACK = CameraMove(dx=0.2, dy=0.0, scale=1.0, rotation_deg=0.0, rim_shift_px=0.2, matches=90, moved=False)


class EnrolledOnly(NearestTypePipeline):
    """The stand-in pipeline refusing a type that is not enrolled, as the station's does."""

    def run(self, frame: Frame, expected_type: str, *, expected_count: int | None = None) -> Verdict:
        if expected_type not in self.gallery.types():
            raise UnknownTypeError(f"{expected_type} is not enrolled")
        return super().run(frame, expected_type, expected_count=expected_count)


def cups(mint: Mint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A cup of four coins of the first type as laid, the same coins where they lay with one turned over, and a
    hand over the tray (flat, but not dark)."""
    a = mint.types[0]
    as_laid = four_coins(a)
    one_turned = compose_cup([(a, Side.REVERSE), (a, Side.REVERSE), (a, Side.OBVERSE), (a, Side.REVERSE)])
    return as_laid, one_turned, np.full_like(as_laid, 60)


def held(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    clock: SteppingClock,
) -> tuple[OperatorView, OperatorController, list[CheckRequest], InferenceWorker]:
    """The operator view and controller with the stillness gate and a real worker whose answers come back to it; the
    checks asked for wait in the list until the test hands them to the worker (the camera goes meanwhile)."""
    view, controller = operator_window(qtbot, catalog, clock, auto_check=StillnessGate(0.5, clock=clock))
    worker = InferenceWorker(pipeline, spooling)
    asked: list[CheckRequest] = []
    controller.check_requested.connect(asked.append)
    worker.verdict_ready.connect(controller.show_verdict)
    worker.check_failed.connect(controller.show_failure)
    worker.nothing_seen.connect(controller.nothing_seen)
    worker.stored.connect(controller.show_store)
    worker.setParent(controller)
    return view, controller, asked, worker


def wired(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    clock: SteppingClock,
) -> tuple[OperatorView, OperatorController, list[CheckRequest], list[StoreResult]]:
    """:func:`held`, checking each cup as it is asked for, through its worker in this thread (kept alive by the
    controller, as the window keeps its worker); the store results come in the list."""
    view, controller, asked, worker = held(qtbot, pipeline, spooling, catalog, clock)
    stored: list[StoreResult] = []
    controller.check_requested.connect(worker.check)
    worker.stored.connect(stored.append)
    return view, controller, asked, stored


# -- the next order scanned while the cup just checked is still in view --------------------------------------------


def test_the_next_order_scanned_over_the_cup_just_checked_waits_for_its_own_cup(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
) -> None:
    as_laid, _, _ = cups(mint)
    other = compose_cup([(mint.types[0], Side.REVERSE)] * 3)  # the next order's cup
    view, controller, asked, stored = wired(qtbot, pipeline, spooling, catalog, clock)
    controller.choose_type(mint.types[0].id, order="A-1")
    feed(controller, as_laid, 1.0, clock)
    assert len(asked) == 1 and view.banner.text() == "PASS"  # A-1's cup, checked once still
    controller.choose_type(mint.types[0].id, order="A-2")  # A-2's slip scanned; A-1's cup not yet lifted
    feed(controller, as_laid, 2.0, clock)
    assert len(asked) == 1  # A-1's cup is not checked, nor logged, for A-2
    assert view.banner.text() == "READY"
    assert view.reason.text() == (
        f"The cup in view was checked for order A-1 ({mint.types[0].id}): put the cup of order A-2 "
        f"({mint.types[0].id}) under the camera; it is checked once it is still."
    )
    feed(controller, other, 1.0, clock)  # A-2's cup put down
    assert len(asked) == 2 and asked[1].order == "A-2" and np.array_equal(asked[1].frame.image, other)
    logged = database.repository.review_queue(limit=50, margin=1.0)
    assert sorted(str(item.order) for item in logged) == ["A-1", "A-2"] and len(stored) == 2


def test_an_order_scanned_after_a_failed_check_still_checks_the_cup_in_view(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
) -> None:
    """The cup in view was never judged (its check failed): a new order arms the gate for it."""
    as_laid, _, _ = cups(mint)
    strict = EnrolledOnly(pipeline.embedder, pipeline.gallery)
    view, controller, asked, _ = wired(qtbot, strict, spooling, catalog, clock)
    controller.choose_type("no-such-type")  # the worker's check fails on it
    feed(controller, as_laid, 1.0, clock)
    assert len(asked) == 1 and view.banner.text() == "ERROR"
    controller.choose_type(mint.types[0].id, order="A-1")
    feed(controller, as_laid, 1.0, clock)
    assert len(asked) == 2 and view.banner.text() == "PASS"


# -- one cup, one log line -----------------------------------------------------------------------------------------


def test_space_pressed_again_on_the_same_cup_shows_its_verdict_and_logs_nothing(
    qtbot: QtBot, window_with: OpenWindow, database: Database, catalog: TypeCatalog
) -> None:
    with window_with(orders=OrderBook({ORDER: catalog.types[0].type_id})) as win:
        scan_order(qtbot, win, ORDER)
        assert check_with_space(qtbot, win).verdict_id is not None
        asked: list[CheckRequest] = []
        win.controller.check_requested.connect(asked.append)
        win.view.reason.setText("")
        qtbot.keyClick(win.view.preview, Qt.Key.Key_Space)  # the second press, on the cup unchanged
        assert asked == [] and not win.controller.busy
        assert win.view.banner.text() == "PASS" and win.view.banner.colour == PASS_HEX
        assert win.view.reason.text() == ALREADY_TEXT + "All 4 coins match " + catalog.types[0].type_id + "."
        assert win.view.session_label.text() == "1 cup checked · 0 flagged"
        assert len(database.repository.review_queue(limit=50, margin=1.0)) == 1
        win.controller.choose_type(catalog.types[1].type_id)  # another order: Space checks the cup for it
        assert check_with_space(qtbot, win).verdict_id is not None
        assert len(database.repository.review_queue(limit=50, margin=1.0)) == 2


def test_a_hand_passing_over_a_checked_cup_checks_nothing_and_a_coin_turned_over_checks_it_again(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
) -> None:
    as_laid, one_turned, hand = cups(mint)
    view, controller, asked, _ = wired(qtbot, pipeline, spooling, catalog, clock)
    controller.choose_type(mint.types[0].id, order=ORDER)
    feed(controller, as_laid, 1.0, clock)
    assert len(asked) == 1 and view.banner.text() == "PASS"
    feed(controller, hand, 0.3, clock)  # a hand passes over the tray ...
    assert view.banner.text() == "READY"  # (the PASS gives way while something moves in view)
    feed(controller, as_laid, 2.0, clock)  # ... and leaves the cup as it was
    assert len(asked) == 1  # not checked, nor logged, a second time
    assert view.banner.text() == "PASS" and view.reason.text().startswith(ALREADY_TEXT)
    feed(controller, hand, 0.3, clock)
    feed(controller, one_turned, 1.0, clock)  # a coin turned over where it lay: another view, checked again
    assert len(asked) == 2 and np.array_equal(asked[1].frame.image, one_turned)
    assert len(database.repository.review_queue(limit=50, margin=1.0)) == 2


def test_the_stillness_gate_fires_again_only_on_a_view_that_differs_from_the_one_used(
    mint: Mint, clock: SteppingClock
) -> None:
    as_laid, one_turned, hand = cups(mint)
    gate = StillnessGate(0.5, clock=clock)
    fired, declined = [], []
    for image in [as_laid] * 10 + [hand] * 3 + [as_laid] * 10 + [hand] * 3 + [one_turned] * 10:
        fired.append(gate.update(image))
        declined.append(gate.declined)
        clock.advance(0.1)
    assert [k for k, f in enumerate(fired) if f] == [5, 32]  # the cup, then the turned coin; not the hand's pass
    assert [k for k, d in enumerate(declined) if d] == [19]  # the cup at rest again as it was checked
    assert not gate.armed
    gate.rearm()  # a check on this view failed: fire on it again
    assert not gate.update(one_turned)
    clock.advance(0.6)
    assert gate.update(one_turned)


# -- a type dropped from the gallery -------------------------------------------------------------------------------


def test_a_type_dropped_from_the_gallery_is_no_longer_the_choice(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    clock: SteppingClock,
) -> None:
    view, controller = operator_window(qtbot, catalog, clock)
    asked: list[CheckRequest] = []
    controller.check_requested.connect(asked.append)
    gone = catalog.types[0].type_id
    controller.choose_type(gone, order=ORDER)
    controller.show_frame(Frame(np.full((64, 64, 3), 128, np.uint8)))
    without = TypeCatalog(catalog.types[1:], lambda _type, _side: None)
    controller.use_setup(Loaded(pipeline=None, catalog=without))
    assert controller.expected_type is None and controller.order is None
    assert view.order_status.text() == f"Order {ORDER}'s {gone} is no longer enrolled"
    assert view.reason.text() == (
        f"Order {ORDER}'s {gone} is no longer enrolled (the gallery was changed): scan another order, or pick a type "
        "from the list."
    )
    assert not controller.check() and asked == []  # Space waits for another order, with no failed check
    assert view.reason.text() == "Choose the order first (scan it or pick the type from the list)."
    controller.choose_type(catalog.types[1].type_id)
    controller.use_setup(Loaded(pipeline=None, catalog=without))  # a type still enrolled stays chosen
    assert controller.expected_type == catalog.types[1].type_id


# -- an empty-tray photo on a station never calibrated -------------------------------------------------------------


@pytest.fixture(scope="module")
def tray_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The station's pipeline with a detector and no calibration (nor empty tray yet)."""
    folder = tmp_path_factory.mktemp("bundle")
    path, embedder = write_bundle(folder, embedder_file=write_tiny_checkpoint(folder / "embedder.pt"))
    return Pipeline.from_parts(
        load_bundle(path), enrolled_gallery(embedder), embedder=embedder, detector=Detector.load()
    )


@pytest.fixture
def tray_then_smaller(tmp_path: Path) -> Path:
    """A replay: the empty tray at 480×480, then the webcam come back at 320×320 with a cup on the tray."""
    scene = render_cup(
        SceneAssets(generate_mint(12, 3)),
        31,
        2,
        SceneOptions(image_size=480, kind_weights={CupKind.PURE: 1.0}, max_coins=6, empty_reference=True),
    )
    assert scene.empty is not None
    folder = tmp_path / "replay"
    folder.mkdir()
    cv2.imwrite(str(folder / "00_empty.png"), scene.empty)
    cv2.imwrite(str(folder / "01_cup.png"), cv2.resize(scene.image, (320, 320), interpolation=cv2.INTER_AREA))
    return folder


def test_an_empty_tray_photo_on_an_uncalibrated_station_sets_the_size_frames_must_have(
    qtbot: QtBot,
    tray_pipeline: Pipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    station_config: StationConfig,
    tray_then_smaller: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    assert tray_pipeline.camera_size is None and tray_pipeline.empty_tray is None
    try:
        with shown_window(
            qtbot, tray_pipeline, spooling, catalog, station_config, tray_then_smaller, clock, home=tmp_path
        ) as win:
            controller, view = win.controller, win.view
            assert controller.camera_size is None
            with qtbot.waitSignal(controller.empty_tray_shown, timeout=60_000) as shown:
                qtbot.mouseClick(view.empty_tray_button, Qt.MouseButton.LeftButton)
            assert shown.args[0], shown.args[1]
            assert controller.camera_size == (480, 480)  # what the pipeline now measures frames against
            clock.advance(60.0)  # the webcam comes back at 320×320
            qtbot.waitUntil(lambda: controller.frame is not None and "01_cup" in controller.frame.source)
            controller.show_fps(12.0)
            assert view.camera_label.text() == "Camera 12 fps · 320×320, set up at 480×480: calibrate again"
            assert view.banner.text() == "CAMERA" and not view.check_button.isEnabled()
            controller.choose_type(catalog.types[0].type_id)
            assert not controller.check() and not controller.busy and view.banner.text() == "CAMERA"
    finally:
        tray_pipeline.empty_tray = None


# -- a gallery loaded while the camera is knocked ------------------------------------------------------------------


def test_a_gallery_loaded_while_the_camera_is_knocked_keeps_checks_held_until_the_new_set_up_answers(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    replay_dir: Path,
    clock: SteppingClock,
) -> None:
    image, moved = knocked(SetUpPipeline, pipeline, replay_dir)
    view, controller = operator_window(qtbot, catalog, clock)
    controller.choose_type(catalog.types[0].type_id)
    controller.show_frame(Frame(image, source="knocked"))
    controller.show_camera_move(MOVED)
    assert view.banner.text() == "CAMERA" and not view.check_button.isEnabled()
    controller.use_setup(Loaded(pipeline=moved, catalog=catalog))  # an enrolment on another PC, loaded
    assert view.banner.text() == "CAMERA" and not view.check_button.isEnabled()
    assert "moved since set-up (14 px right)" in view.camera_label.text()
    assert not controller.check() and not controller.busy
    controller.show_camera_move(MOVED)  # the new pipeline's set-up view: still knocked
    assert view.banner.text() == "CAMERA"
    controller.show_camera_move(BACK)  # put back
    assert view.banner.text() == "READY" and view.check_button.isEnabled()


# -- a black camera ------------------------------------------------------------------------------------------------


def test_a_black_picture_is_told_from_a_dark_or_flat_one(mint: Mint) -> None:
    as_laid, _, hand = cups(mint)
    rng = np.random.default_rng(1)
    assert dark_picture(rng.integers(0, 4, (480, 640, 3)).astype(np.uint8))  # a lens cap: dark noise
    assert dark_picture(rng.integers(0, 24, (480, 640, 3)).astype(np.uint8))  # a noisy sensor in the dark
    assert not dark_picture(hand)  # a hand over the tray
    assert not dark_picture(as_laid)
    dim = (as_laid.astype(np.float32) * 0.25).astype(np.uint8)  # a cup under a weak lamp: its coins still show
    assert not dark_picture(dim)


@pytest.fixture
def black_replay(tmp_path: Path) -> Path:
    folder = tmp_path / "black"
    folder.mkdir()
    rng = np.random.default_rng(1)
    cv2.imwrite(str(folder / "00_black.png"), rng.integers(0, 4, (480, 480, 3)).astype(np.uint8))
    return folder


@pytest.fixture
def black_window(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    station_config: StationConfig,
    black_replay: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> Iterator[MainWindow]:
    with shown_window(qtbot, pipeline, spooling, catalog, station_config, black_replay, clock, home=tmp_path) as win:
        yield win


def test_a_black_camera_is_named_and_holds_checks(
    qtbot: QtBot, black_window: MainWindow, database: Database, catalog: TypeCatalog
) -> None:
    win = black_window
    controller, view = win.controller, win.view
    controller.choose_type(catalog.types[0].type_id, order=ORDER)
    controller.show_fps(16.0)
    assert view.camera_label.text() == f"Camera 16 fps · {DARK_PROBLEM}"
    assert view.banner.text() == "CAMERA" and view.reason.text().startswith("The camera's picture is black")
    assert not view.check_button.isEnabled() and not view.empty_tray_button.isEnabled()
    asked: list[CheckRequest] = []
    controller.check_requested.connect(asked.append)
    qtbot.keyClick(view.preview, Qt.Key.Key_Space)
    assert asked == [] and not controller.busy and view.banner.text() == "CAMERA"
    assert database.repository.review_queue(limit=50, margin=1.0) == []  # nothing sent to a supervisor
