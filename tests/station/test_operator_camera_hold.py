"""The operator window when the camera is lost or knocked while a cup is checked: whatever answer the check brings
(an empty tray, a failure, a verdict), the window then says what holds the next check, never READY and 'press
Space'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from db.spool import SpoolingRepository
from models.bundle import load_bundle
from models.detector import Detector
from models.pipeline import Pipeline
from models.synth.mint import Mint, generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import Frame, Side
from station.controllers.catalog import TypeCatalog
from station.controllers.operator import DARK_PROBLEM, OperatorController
from station.views.operator import OperatorView
from station.worker import EmptyTrayRequest, InferenceWorker, VerdictSource
from tests.calibration.views import camera
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import enrolled_gallery, write_bundle
from tests.station.conftest import SteppingClock
from tests.station.nearest_type_pipeline import NearestTypePipeline, four_coins
from tests.station.test_operator import feed, operator_window
from tests.station.test_operator_runtime import MOVED, EnrolledOnly, held

LOST = "webcam 0 — the camera sends the same picture: frozen"
NO_CAM = (
    "The camera stopped delivering (the camera sends the same picture: frozen); cups can be checked again once it is "
    "back."
)
KNOCKED = (
    "The camera has moved since it was set up (14 px right): put it back where it was, or have it calibrated again. "
    "Cups are checked once it is."
)


def lose_camera(controller: OperatorController, how: str) -> str:
    """The camera is lost (``"lost"``) or knocked 14 px (``"knocked"``) while a check runs; return the banner that
    then holds the checks."""
    if how == "lost":
        controller.camera_lost(LOST)
        return "NO CAM"
    controller.show_camera_move(MOVED)  # the once-a-second look, answered while the cup is checked
    return "CAMERA"


@pytest.mark.parametrize("how", ["lost", "knocked"])
def test_an_empty_tray_checked_while_the_camera_went_leaves_its_hold_up(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    clock: SteppingClock,
    how: str,
) -> None:
    table = np.full((480, 480, 3), 128, np.uint8)
    view, controller, asked, worker = held(qtbot, pipeline, spooling, catalog, clock)
    controller.choose_type(catalog.types[0].type_id)
    feed(controller, table, 1.0, clock)
    assert len(asked) == 1 and asked[0].auto and view.banner.text() == "CHECKING…"
    banner = lose_camera(controller, how)
    assert view.banner.text() == "CHECKING…"  # the answer on its way says it
    with qtbot.waitSignal(worker.nothing_seen):
        worker.check(asked[0])
    assert view.banner.text() == banner and "press Space" not in view.reason.text()
    assert view.reason.text() == (NO_CAM if how == "lost" else KNOCKED)
    assert not controller.busy and not view.check_button.isEnabled()


def test_a_flagged_cup_taken_away_while_the_camera_went_is_still_named(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
) -> None:
    a = mint.types[0]
    laid = four_coins(a)
    turning = NearestTypePipeline(pipeline.embedder, pipeline.gallery, turn_over=frozenset({(a.id, Side.OBVERSE)}))
    view, controller, asked, worker = held(qtbot, turning, spooling, catalog, clock)
    controller.choose_type(a.id)
    feed(controller, laid, 1.0, clock)
    worker.check(asked[0])
    assert view.banner.text() == "FLAG" and controller.recheck is not None  # its coins to turn over
    feed(controller, np.full_like(laid, 128), 1.0, clock)  # the cup is taken away instead
    assert len(asked) == 2
    controller.camera_lost(LOST)
    worker.check(asked[1])
    assert view.banner.text() == "NO CAM" and view.reason.text() == NO_CAM and controller.recheck is None
    assert view.detail.text() == "The flagged cup was taken away: put it aside for a supervisor."


@pytest.mark.parametrize("how", ["lost", "knocked"])
def test_a_check_failing_while_the_camera_went_leaves_its_hold_up(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
    how: str,
) -> None:
    a = mint.types[0]
    laid = four_coins(a)
    strict = EnrolledOnly(pipeline.embedder, pipeline.gallery)
    view, controller, asked, worker = held(qtbot, strict, spooling, catalog, clock)
    controller.choose_type("no-such-type")  # the worker's check fails on it
    controller.show_frame(Frame(laid, source="laid"))
    assert controller.check() and len(asked) == 1
    banner = lose_camera(controller, how)
    with qtbot.waitSignal(worker.check_failed):
        worker.check(asked[0])
    assert view.banner.text() == banner and view.reason.text() == (NO_CAM if how == "lost" else KNOCKED)
    assert view.detail.text() == (
        "The check failed: UnknownTypeError: no-such-type is not enrolled. Check the cup again once the camera is back."
    )
    assert not controller.busy and not view.check_button.isEnabled()


def test_a_pass_arriving_after_the_camera_was_knocked_gives_way_to_its_hold_not_to_ready(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
) -> None:
    a = mint.types[0]
    laid = four_coins(a)
    view, controller, asked, worker = held(qtbot, pipeline, spooling, catalog, clock)
    controller.choose_type(a.id)
    controller.show_frame(Frame(laid, source="laid"))
    assert controller.check()
    lose_camera(controller, "knocked")
    worker.check(asked[0])
    assert view.banner.text() == "PASS"  # the cup photographed before the knock
    controller.show_frame(Frame(camera(laid, dx=14.0), source="knocked"))  # the view the knocked camera gives
    assert view.banner.text() == "CAMERA" and view.reason.text() == KNOCKED
    assert len(asked) == 1 and not view.check_button.isEnabled()


@pytest.mark.parametrize("how", ["lost", "knocked"])
def test_a_verdict_for_the_order_before_never_says_ready_while_the_camera_went(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
    how: str,
) -> None:
    a = mint.types[0]
    laid = four_coins(a)
    view, controller, asked, worker = held(qtbot, pipeline, spooling, catalog, clock)
    controller.choose_type(a.id, order="A-1")
    controller.show_frame(Frame(laid, source="laid"))
    assert controller.check()
    controller.choose_type(a.id, order="A-2")  # the next order scanned while A-1's cup is checked
    banner = lose_camera(controller, how)
    worker.check(asked[0])
    assert view.banner.text() == banner
    assert view.reason.text().startswith(f"The cup checked for order A-1 ({a.id}) passed. ")
    assert "press Space" not in view.reason.text()


@pytest.fixture(scope="module")
def detecting_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """A small real model with a detector, which keeps a photo of an empty tray (as ``test_empty_tray``'s)."""
    folder = tmp_path_factory.mktemp("bundle")
    path, embedder = write_bundle(folder, embedder_file=write_tiny_checkpoint(folder / "embedder.pt"))
    return Pipeline.from_parts(
        load_bundle(path), enrolled_gallery(embedder), embedder=embedder, detector=Detector.load()
    )


def _tray_station(
    qtbot: QtBot,
    pipeline: VerdictSource,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    clock: SteppingClock,
    home: Path,
) -> tuple[OperatorView, OperatorController, list[EmptyTrayRequest], InferenceWorker]:
    """The operator view and controller with a home for the empty-tray photo and a real worker answering it; the
    photos asked for wait in the list until the test hands them to the worker."""
    view, controller = operator_window(qtbot, catalog, clock, home=home)
    worker = InferenceWorker(pipeline, spooling)
    asked: list[EmptyTrayRequest] = []
    controller.empty_tray_requested.connect(asked.append)
    worker.empty_tray_done.connect(controller.show_empty_tray)
    worker.setParent(controller)
    return view, controller, asked, worker


@pytest.mark.parametrize("how", ["lost", "knocked"])
def test_an_empty_tray_refused_while_the_camera_went_leaves_its_hold_up(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    clock: SteppingClock,
    tmp_path: Path,
    how: str,
) -> None:
    view, controller, asked, worker = _tray_station(qtbot, pipeline, spooling, catalog, clock, tmp_path)
    feed(controller, np.full((480, 480, 3), 128, np.uint8), 0.5, clock)
    assert controller.take_empty_tray() and view.banner.text() == "EMPTY TRAY…"
    banner = lose_camera(controller, how)
    with qtbot.waitSignal(controller.empty_tray_shown) as shown:
        worker.take_empty_tray(asked[0])  # the stand-in model has no detector: the photo is refused
    ok, message = shown.args
    assert not ok and view.banner.text() == banner and view.detail.text() == message
    assert view.reason.text() == (NO_CAM if how == "lost" else KNOCKED)


def test_an_empty_tray_kept_while_the_camera_went_says_no_cam_not_ready(
    qtbot: QtBot,
    detecting_pipeline: Pipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    opts = SceneOptions(image_size=320, max_coins=6, empty_reference=True)
    empty = render_cup(SceneAssets(generate_mint(12, 3)), 3, 5, opts).empty
    assert empty is not None
    station = detecting_pipeline.with_threshold(detecting_pipeline.threshold)
    view, controller, asked, worker = _tray_station(qtbot, station, spooling, catalog, clock, tmp_path)
    feed(controller, empty, 0.5, clock)
    assert controller.take_empty_tray()
    controller.camera_lost(LOST)  # unplugged while the photo is judged
    with qtbot.waitSignal(controller.empty_tray_shown) as shown:
        worker.take_empty_tray(asked[0])
    ok, message = shown.args
    assert ok and view.banner.text() == "NO CAM" and view.reason.text() == NO_CAM
    assert view.detail.text() == message and "press Space" not in view.reason.text()


def test_an_unknown_order_scanned_under_a_black_picture_leaves_the_camera_hold_up(
    qtbot: QtBot, catalog: TypeCatalog, clock: SteppingClock
) -> None:
    view, controller = operator_window(qtbot, catalog, clock)
    feed(controller, np.zeros((480, 480, 3), np.uint8), 0.5, clock)  # a lens cap
    controller.show_fps(10.0)
    assert view.banner.text() == "CAMERA" and controller.camera_problem == DARK_PROBLEM
    view.order_edit.setText("Z-9")
    controller.enter_order()
    assert view.banner.text() == "CAMERA"  # not "—": the camera still holds the checks
    assert "Unknown order or type: Z-9" in view.reason.text()
