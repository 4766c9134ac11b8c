"""The operator window end to end on replayed cups: order → Space → worker → banner → a row in SQLite."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from calibration.movement import CameraMove, SetupView
from db.repository import VerdictRepository
from db.spool import SpoolingRepository
from models.reasons import only_the_camera
from models.synth.mint import Mint
from models.types import Decision, Frame, Side, Verdict
from station.camera import FROZEN, FolderSource, OpenCVSource
from station.config import StationConfig, config_from_dict
from station.controllers.catalog import OrderBook, TypeCatalog
from station.controllers.model_follow import Loaded
from station.controllers.operator import CHECK_TEXT, RECHECK_TEXT, OperatorController
from station.controllers.overlay import (
    FLAG_BGR,
    FLAG_HEX,
    PASS_BGR,
    PASS_HEX,
    UNCHECKED_BGR,
    coin_ok,
    draw_camera_move,
    draw_cup_region,
    draw_evidence,
    summarise,
)
from station.controllers.preview import CameraPump
from station.controllers.stillness import StillnessGate
from station.main_window import MainWindow
from station.views.operator import OperatorView
from station.worker import CheckRequest, CheckResult, DbState, InferenceWorker, RecheckWhy, StoreResult
from tests.calibration.views import camera
from tests.station.conftest import OPERATOR, Database, OpenWindow, SteppingClock, shown_window
from tests.station.nearest_type_pipeline import NearestTypePipeline, compose_cup, four_coins
from tests.station.test_camera import write_pictures, write_video

ORDER = "A-1001"
TIMEOUT_MS = 30_000


@pytest.fixture
def window(window_with: OpenWindow, catalog: TypeCatalog) -> Iterator[MainWindow]:
    with window_with(orders=OrderBook({ORDER: catalog.types[0].type_id})) as win:
        yield win


def scan_order(qtbot: QtBot, win: MainWindow, text: str) -> None:
    """Type the order as a barcode scanner does: the characters, then Enter."""
    qtbot.keyClicks(win.view.order_edit, text)
    qtbot.keyClick(win.view.order_edit, Qt.Key.Key_Return)


def click_type(qtbot: QtBot, win: MainWindow, row: int) -> None:
    """Click the ``row``-th type of the list, as the operator does with the mouse."""
    lst = win.view.type_list
    rect = lst.visualItemRect(lst.item(row))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def check_with_space(qtbot: QtBot, win: MainWindow) -> StoreResult:
    """Press Space on the window and wait until the verdict is shown and written; return the write's result."""
    win.activateWindow()
    with (
        qtbot.waitSignal(win.controller.verdict_shown, timeout=TIMEOUT_MS),
        qtbot.waitSignal(win.controller.store_shown, timeout=TIMEOUT_MS) as stored,
    ):
        qtbot.keyClick(win.view.preview, Qt.Key.Key_Space)
    result = stored.args[0]
    assert isinstance(result, StoreResult)
    return result


def next_cup(qtbot: QtBot, win: MainWindow, clock: SteppingClock) -> None:
    """Put the next replayed cup under the camera (Space on the cup just checked, unchanged, checks nothing)."""
    frame = win.controller.frame
    before = None if frame is None else frame.source
    clock.advance(60.0)  # the replay's hold: the next picture
    qtbot.waitUntil(lambda: win.controller.frame is not None and win.controller.frame.source != before)


def test_space_checks_the_cup_and_logs_the_verdict(
    qtbot: QtBot, window: MainWindow, database: Database, clock: SteppingClock, catalog: TypeCatalog
) -> None:
    expected = catalog.types[0].type_id
    scan_order(qtbot, window, ORDER)
    assert window.controller.expected_type == expected and window.controller.order == ORDER
    assert window.view.reference_obverse.has_image()

    stored = check_with_space(qtbot, window)  # the pure cup
    assert window.view.banner.text() == "PASS" and window.view.banner.colour == PASS_HEX
    assert "All 4 coins" in window.view.reason.text()
    assert [t.marked for t in window.view.thumbs.thumbnails()] == [False] * 4
    assert stored.state is DbState.CONNECTED and stored.verdict_id is not None
    assert window.view.db_label.text() == "Database: connected"

    clock.advance(60.0)  # the replay moves on to the mixed cup
    qtbot.waitUntil(lambda: window.controller.frame is not None and "01_mixed" in window.controller.frame.source)
    stored = check_with_space(qtbot, window)
    assert window.view.banner.text() == "FLAG" and window.view.banner.colour == FLAG_HEX
    assert "Coin 2 looks like" in window.view.reason.text()
    assert window.view.session_label.text() == "2 cups checked · 1 flagged"
    assert [t.marked for t in window.view.thumbs.thumbnails()] == [False, True, False, False]

    queue = {item.verdict_id: item for item in database.repository.review_queue()}
    assert stored.verdict_id in queue  # the flagged cup waits for a supervisor
    item = queue[stored.verdict_id]
    assert (item.decision, item.expected_type, item.n_coins, item.station) == (Decision.FLAG, expected, 4, "test-bench")
    assert item.mismatch_share == pytest.approx(0.25)


def test_an_order_with_a_count_flags_a_cup_of_another_number_for_the_operator_to_put_right(
    qtbot: QtBot,
    window_with: OpenWindow,
    catalog: TypeCatalog,
    database: Database,
) -> None:
    first = catalog.types[0]
    orders = OrderBook({"N-5": first.type_id, "N-4": first.type_id}, {"N-5": 5, "N-4": 4})
    with window_with(orders=orders) as win:
        scan_order(qtbot, win, "N-5")
        assert win.view.order_status.text() == "Order N-5: 5 coins"
        assert win.view.expected_label.text() == f"5 × {first.label}"
        stored = check_with_space(qtbot, win)  # the pure cup: 4 coins of the right type
        assert win.view.banner.text() == "FLAG"
        assert win.view.reason.text() == (
            "4 coins seen, the order is for 5: 1 short, or hidden under others — spread them out. "
            "Correct the count, then check the cup again."
        )
        assert stored.verdict_id is not None  # logged as the FLAG it was, with its reason ...
        every = {item.verdict_id: item for item in database.repository.review_queue(margin=1.0)}
        assert every[stored.verdict_id].reasons == (
            "4 coins seen, the order is for 5: 1 short, or hidden under others — spread them out",
        )
        # ... but not queued for a supervisor: its coins passed, and the operator puts the count right
        assert stored.verdict_id not in {item.verdict_id for item in database.repository.review_queue()}

        scan_order(qtbot, win, "N-4")
        check_with_space(qtbot, win)
        assert win.view.banner.text() == "PASS"
        click_type(qtbot, win, 1)  # a type picked from the list asks for no count
        assert win.controller.order_count is None and win.view.expected_label.text() == catalog.types[1].label


def test_next_scan_lands_in_the_order_box_wherever_the_focus_is(
    qtbot: QtBot, window: MainWindow, catalog: TypeCatalog
) -> None:
    scan_order(qtbot, window, ORDER)
    assert window.controller.expected_type == catalog.types[0].type_id
    check_with_space(qtbot, window)
    qtbot.keyClicks(window.view.preview, "Z-9")  # the scanner types while the preview has the focus
    qtbot.keyClick(window.view.order_edit, Qt.Key.Key_Return)
    assert window.view.order_edit.text() == "Z-9"  # the previous order was replaced, not appended to
    assert "Unknown order" in window.view.order_status.text()
    # a type clicked in the list keeps the focus there: a scan then is an order, not the list's own search (which
    # chose whichever type the keys spelled, with no order)
    window.controller.choose_type(catalog.types[1].type_id)
    window.view.type_list.setFocus()
    qtbot.keyClicks(window.view.type_list, ORDER)
    qtbot.keyClick(window.view.order_edit, Qt.Key.Key_Return)
    assert window.view.order_edit.text() == ORDER
    assert (window.controller.expected_type, window.controller.order) == (catalog.types[0].type_id, ORDER)


def test_each_scan_replaces_the_last_even_once_its_selection_is_gone(
    qtbot: QtBot, window: MainWindow, catalog: TypeCatalog
) -> None:
    def scan_from_the_preview(text: str) -> None:
        window.view.order_edit.deselect()  # what Qt does to the box's selection when the focus leaves it
        qtbot.keyClicks(window.view.preview, text)
        qtbot.keyClick(window.view.order_edit, Qt.Key.Key_Return)

    scan_from_the_preview(ORDER)
    assert window.controller.expected_type == catalog.types[0].type_id
    scan_from_the_preview("Z-9")
    assert window.view.order_edit.text() == "Z-9"
    # a rejected entry drops the order chosen before it: no cup is checked, or logged, under that order
    assert window.controller.expected_type is None and window.controller.order is None
    assert window.view.expected_label.text() == "—" and "Unknown order or type: Z-9" in window.view.reason.text()
    assert not window.controller.check() and "Choose the order first" in window.view.reason.text()
    scan_from_the_preview(ORDER)
    assert window.view.order_edit.text() == ORDER and window.controller.order == ORDER
    scan_from_the_preview(catalog.types[1].type_id)  # a type typed, not picked from the list
    assert window.view.order_status.text() == f"Type {catalog.types[1].type_id}"


def test_unknown_order_is_refused_and_space_waits_for_a_type(qtbot: QtBot, window: MainWindow) -> None:
    scan_order(qtbot, window, "Z-9")
    assert "Unknown order" in window.view.order_status.text()
    assert window.controller.expected_type is None
    assert not window.controller.check()
    assert "Choose the order first" in window.view.reason.text()


def type_by_hand(qtbot: QtBot, widget: QWidget, text: str, clock: SteppingClock) -> None:
    """Type ``text`` into ``widget`` as a person does, a fifth of a second between keys (a scanner's come a few
    milliseconds apart)."""
    for ch in text:
        clock.advance(0.2)
        qtbot.keyClicks(widget, ch)


def test_type_chosen_from_the_searchable_list(
    qtbot: QtBot, window: MainWindow, catalog: TypeCatalog, clock: SteppingClock
) -> None:
    target = catalog.types[2]
    type_by_hand(qtbot, window.view.type_filter, target.type_id, clock)
    assert window.view.type_list.count() == 1
    click_type(qtbot, window, 0)
    assert window.controller.expected_type == target.type_id and window.controller.order is None
    assert target.type_id in window.view.expected_label.text()


def test_a_scan_while_the_type_search_has_the_focus_goes_to_the_order_box(
    qtbot: QtBot, window: MainWindow, catalog: TypeCatalog, clock: SteppingClock
) -> None:
    search = window.view.type_filter
    search.setFocus()
    type_by_hand(qtbot, search, "mo", clock)  # the operator searches the list...
    clock.advance(1.0)
    qtbot.keyClicks(search, ORDER)  # ...then scans the next order's label: its keys arrive all at once
    qtbot.keyClick(search, Qt.Key.Key_Return)
    assert search.text() == "mo"  # the search keeps what the operator typed
    assert window.view.order_edit.text() == ORDER
    assert (window.controller.expected_type, window.controller.order) == (catalog.types[0].type_id, ORDER)
    clock.advance(1.0)
    type_by_hand(qtbot, search, "x", clock)  # the focus back in the search: a key by hand stays there
    assert search.text() == "mox" and window.view.order_edit.text() == ORDER


def test_disabled_secondary_buttons_look_disabled(qtbot: QtBot) -> None:
    view = OperatorView()
    qtbot.addWidget(view)
    view.show()
    button = view.empty_tray_button
    enabled = button.grab().toImage()
    button.setEnabled(False)
    disabled = button.grab().toImage()
    assert enabled.size() == disabled.size() and enabled != disabled


def test_a_long_scanned_code_never_widens_the_window(qtbot: QtBot, window: MainWindow) -> None:
    width = window.minimumSizeHint().width()
    assert width <= 1366
    url = "https://parcels.example.com/t/" + "0123456789" * 5 + "?ref=abc"  # 88 characters, one word
    assert len(url) == 88
    scan_order(qtbot, window, url)
    assert url in window.view.order_status.text() and url in window.view.order_status.toolTip()
    assert window.minimumSizeHint().width() == width


def test_database_outage_spools_and_catches_up(
    qtbot: QtBot, window: MainWindow, database: Database, clock: SteppingClock
) -> None:
    scan_order(qtbot, window, ORDER)
    assert check_with_space(qtbot, window).state is DbState.CONNECTED

    aside = database.folder.with_name("dbdir-away")
    database.repository.engine.dispose()  # pooled connections hold the file open
    os.rename(database.folder, aside)  # the database's share drops away
    try:
        for n in (1, 2):
            next_cup(qtbot, window, clock)  # the mixed cup, then the pure one again
            result = check_with_space(qtbot, window)
            assert result.state is DbState.SPOOLING and result.pending == n
        assert window.view.db_label.text() == "Database: spooling, 2 verdicts waiting"
        assert window.view.banner.text() == "PASS"  # the operator keeps working
        with qtbot.waitSignal(window.controller.store_shown, timeout=TIMEOUT_MS) as still:
            window.flush_timer.timeout.emit()  # the periodic retry while the database is still away
        assert still.args[0].state is DbState.SPOOLING and still.args[0].pending == 2
    finally:
        os.rename(aside, database.folder)

    with qtbot.waitSignal(window.controller.store_shown, timeout=TIMEOUT_MS) as back:
        window.flush_timer.timeout.emit()  # the retry after the database came back sends the journal
    assert back.args[0].state is DbState.CONNECTED and back.args[0].pending == 0
    assert window.view.db_label.text() == "Database: connected"
    assert len(database.repository.review_queue(limit=50, margin=1.0)) == 3  # every cup, PASS included

    next_cup(qtbot, window, clock)
    result = check_with_space(qtbot, window)
    assert result.state is DbState.CONNECTED and result.pending == 0
    assert len(database.repository.review_queue(limit=50, margin=1.0)) == 4


def test_window_shows_camera_lost_and_recovers(
    qtbot: QtBot,
    tmp_path: Path,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    station_config: StationConfig,
) -> None:
    video = write_video(tmp_path / "cam.avi", 3)
    source = OpenCVSource(str(video), reconnect_s=0.2)  # the stream ends after 3 frames, then is reopened
    win = MainWindow(pipeline, spooling, source, station_config, operator=OPERATOR, catalog=catalog)
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(win.controller.camera_state_changed, timeout=TIMEOUT_MS) as lost:
            pass
        assert lost.args == [True]
        assert "CAMERA LOST" in win.view.preview.text() and "LOST" in win.view.camera_label.text()
        assert not win.view.check_button.isEnabled()
        assert win.view.banner.text() == "NO CAM" and win.view.banner.colour == FLAG_HEX
        win.controller.choose_type(catalog.types[0].type_id)  # an order scanned meanwhile: no READY without a camera
        assert not win.controller.check() and win.view.banner.text() == "NO CAM"
        with qtbot.waitSignal(win.controller.camera_state_changed, timeout=TIMEOUT_MS) as back:
            pass
        assert back.args == [False]
        assert win.view.banner.text() == "READY" and "Camera back" in win.view.reason.text()
        qtbot.waitUntil(win.view.preview.has_image, timeout=TIMEOUT_MS)
        assert win.view.check_button.isEnabled()
    finally:
        win.shutdown()


def test_outlines_are_coloured_by_each_coins_evidence(pipeline: NearestTypePipeline, replay_dir: Path) -> None:
    image = np.asarray(cv2.imread(str(replay_dir / "01_mixed.png")), np.uint8)
    verdict = pipeline.run(Frame(image), pipeline.gallery.entries[0].type_id)
    drawn = draw_evidence(image, verdict)
    for coin in verdict.coins:
        x1, y1, _x2, y2 = coin.bbox
        row = drawn[round((y1 + y2) / 2), max(0, round(x1) - 1) : round(x1) + 3].reshape(-1, 3)
        colour = FLAG_BGR if coin.suspicious else PASS_BGR
        assert (np.abs(row.astype(int) - colour).sum(axis=1) < 60).any(), f"coin {coin.index} not outlined"
    assert [c.suspicious for c in verdict.coins] == [False, True, False, False]
    assert np.array_equal(draw_evidence(image, None), image)
    # what differs from the empty tray where nothing was found: a red box
    box = (5, 5, 60, 50)
    marked = draw_evidence(image, dataclasses.replace(verdict, unchecked=(box,)))
    edge = marked[20, 4:8].reshape(-1, 3).astype(int)
    assert (np.abs(edge - UNCHECKED_BGR).sum(axis=1) < 60).any()
    assert np.array_equal(marked[:, 70:], drawn[:, 70:]) and not np.array_equal(marked, drawn)
    summary = summarise(verdict)
    assert (summary.headline, summary.colour) == ("FLAG", FLAG_HEX)
    assert summary.reason.startswith("Coin 2 looks like") and "supervisor" in summary.reason
    assert "4 coins · 1 marked" in summary.detail
    # a FLAG that asks for coins to be turned first: turn, check again, and a supervisor only if it flags again
    turn = ("coins 1, 3 show the shared obverse — turn them over",)
    first = summarise(dataclasses.replace(verdict, reasons=turn, turn_first=True))
    assert first.reason == "Coins 1, 3 show the shared obverse — turn them over. Then check the cup again."
    also = summarise(dataclasses.replace(verdict, reasons=(*turn, "coin 2 looks like t0002 (0.91)"), turn_first=True))
    assert also.reason.endswith("Then check the cup again; if it is flagged again, put it aside for a supervisor.")
    assert "Coin 2 looks like t0002 (0.91)." in also.reason
    # the same cup checked again after turning: a FLAG goes to a supervisor, never a second turn
    again = summarise(dataclasses.replace(verdict, reasons=turn, turn_first=True), turned=True)
    assert again.reason == (
        "Coins 1, 3 show the shared obverse — turn them over."
        " Flagged again after turning: put it aside for a supervisor."
    )
    assert summarise(dataclasses.replace(verdict, reasons=()), turned=True).reason.endswith(
        "Flagged again after turning: put it aside for a supervisor."
    )
    # the station's camera is not as it was set up, and nothing else: the camera is put right, not the cup aside
    moved = "the camera has moved since it was set up (the view: 12 px right) — put it back, or calibrate again"
    camera = summarise(dataclasses.replace(verdict, reasons=(moved,)))
    assert camera.reason == (
        "The camera has moved since it was set up (the view: 12 px right) — put it back, or calibrate again."
        " Then check the cup again."
    )
    both = summarise(dataclasses.replace(verdict, reasons=(moved, "object 5 is not a coin")))
    assert both.reason.endswith("Object 5 is not a coin. Put it aside for a supervisor.")
    # checked again once the camera was back: a FLAG then is a first look at the cup, so turning may still settle it
    passed = dataclasses.replace(verdict, decision=Decision.PASS, reasons=())
    assert summarise(passed, camera_back=True).reason.endswith("Checked again with the camera back in place.")
    assert summarise(dataclasses.replace(verdict, reasons=turn, turn_first=True), camera_back=True) == first

    guided = draw_cup_region(image.copy(), (240.0, 240.0, 200.0))
    assert not np.array_equal(guided[40, 235:246], image[40, 235:246])  # the top of the circle
    # a moved camera: the cup region where it was set up, and in orange where it now appears, an arrow between
    knock = CameraMove(
        dx=30.0,
        dy=0.0,
        scale=1.0,
        rotation_deg=0.0,
        rim_shift_px=30.0,
        matches=50,
        moved=True,
        centre=(240.0, 240.0),
        radius=150.0,
    )
    shown = draw_camera_move(np.zeros_like(image), knock)
    assert (np.abs(shown[240, 415:425].astype(int) - FLAG_BGR).sum(axis=1) < 60).any()  # the right of x 270 + 150
    assert (np.abs(shown[240, 245:265].astype(int) - FLAG_BGR).sum(axis=1) < 60).any()  # the arrow, 270 → 240
    assert (shown[85:95, 240] > 200).all(axis=1).any()  # the top of the circle set up (y 90), white


def test_stillness_gate_fires_once_per_cup_at_rest(replay_dir: Path, clock: SteppingClock) -> None:
    pure, mixed = (np.asarray(cv2.imread(str(p)), np.uint8) for p in sorted(replay_dir.glob("*.png")))
    gate = StillnessGate(0.5, clock=clock)
    assert not gate.update(pure)  # still since now
    clock.advance(0.3)
    assert not gate.update(pure)
    clock.advance(0.3)
    assert gate.update(pure)  # 0.6 s at rest: check
    clock.advance(5.0)
    assert not gate.update(pure) and not gate.armed  # same cup: not again
    assert not gate.update(mixed) and gate.armed  # another cup arrives
    assert not gate.update(mixed)
    clock.advance(0.6)
    assert gate.update(mixed)


def test_the_stillness_gate_waits_for_a_check_to_be_possible_and_a_check_by_space_uses_it_up(
    replay_dir: Path, clock: SteppingClock
) -> None:
    pure, mixed = (np.asarray(cv2.imread(str(p)), np.uint8) for p in sorted(replay_dir.glob("*.png")))
    gate = StillnessGate(0.5, clock=clock)
    assert not gate.update(pure, ready=False)
    clock.advance(1.0)
    assert not gate.update(pure, ready=False) and gate.armed  # at rest, but no check could start (a write under way)
    assert gate.update(pure) and not gate.armed  # one can now: the cup that came to rest meanwhile is checked
    assert not gate.update(mixed, ready=False) and gate.armed  # another cup arrives
    gate.consume()  # ... and Space checks it: the gate does not check the same view again
    clock.advance(1.0)
    assert not gate.update(mixed) and not gate.armed


def operator_window(
    qtbot: QtBot, catalog: TypeCatalog, clock: SteppingClock, **kwargs: Any
) -> tuple[OperatorView, OperatorController]:
    """The operator window's view and controller alone (frames, checks and writes are handed to it by the test)."""
    view = OperatorView()
    qtbot.addWidget(view)
    controller = OperatorController(
        view,
        catalog,
        OrderBook(),
        station="test-bench",
        operator=OPERATOR,
        clock=clock,
        **kwargs,
    )
    return view, controller


def feed(controller: OperatorController, image: np.ndarray, seconds: float, clock: SteppingClock) -> None:
    """Show ``image`` as the live frame for ``seconds``, ten frames a second."""
    for _ in range(round(seconds * 10)):
        controller.show_frame(Frame(image, source=f"{image.mean():.0f}"))
        clock.advance(0.1)


def test_a_cup_put_down_while_the_last_verdict_is_saved_is_checked_and_the_pass_gives_way(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    replay_dir: Path,
    clock: SteppingClock,
) -> None:
    pure, mixed = (np.asarray(cv2.imread(str(p)), np.uint8) for p in sorted(replay_dir.glob("*.png")))
    table = np.full_like(pure, 128)
    view, controller = operator_window(qtbot, catalog, clock, auto_check=StillnessGate(0.5, clock=clock))
    worker = InferenceWorker(pipeline, spooling)
    asked: list[CheckRequest] = []
    writes: list[StoreResult] = []
    controller.check_requested.connect(asked.append)
    worker.verdict_ready.connect(controller.show_verdict)
    worker.stored.connect(writes.append)  # a database slow to answer: the write is shown later, by hand
    controller.choose_type(catalog.types[0].type_id)
    feed(controller, pure, 1.0, clock)
    assert len(asked) == 1
    worker.check(asked[0])
    assert view.banner.text() == "PASS" and controller.busy  # cup A passed; its write is not answered yet
    feed(controller, table, 0.3, clock)  # cup A is taken away ...
    assert view.banner.text() == "READY"  # its PASS is not left up over whatever comes next
    assert (
        view.reason.text()
        == "The cup that passed was moved. Put the next cup under the camera: it is checked once it is still."
    )
    feed(controller, mixed, 1.0, clock)  # ... and cup B put down, at rest before A's write is answered
    assert len(asked) == 1 and controller.busy
    controller.show_store(writes[0])
    feed(controller, mixed, 0.1, clock)
    assert len(asked) == 2 and np.array_equal(asked[1].frame.image, mixed)  # cup B is checked
    assert view.banner.text() == "CHECKING…"


def test_auto_check_without_space(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    replay_dir: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "auto"
    folder.mkdir()
    shutil.copy(replay_dir / "00_pure.png", folder / "00_pure.png")
    cv2.imwrite(str(folder / "01_empty.png"), np.full((480, 480, 3), 128, np.uint8))  # the cup taken away
    config = config_from_dict(
        {"sound": False, "auto_check": True, "still_s": 0.5, "camera": {"kind": "folder", "folder": str(folder)}}
    )
    source = FolderSource(folder, clock=clock, hold_s=60.0)
    orders = OrderBook({ORDER: catalog.types[0].type_id})
    win = MainWindow(pipeline, spooling, source, config, operator=OPERATOR, catalog=catalog, orders=orders, clock=clock)
    qtbot.addWidget(win)
    win.show()
    empty_checks: list[object] = []
    win.worker.worker.nothing_seen.connect(empty_checks.append)
    try:
        qtbot.waitUntil(win.view.preview.has_image, timeout=TIMEOUT_MS)
        scan_order(qtbot, win, ORDER)
        with qtbot.waitSignal(win.controller.store_shown, timeout=TIMEOUT_MS):
            clock.advance(1.0)  # the cup has been still long enough
        assert win.view.banner.text() == "PASS"

        clock.advance(60.0)  # the cup is taken away
        qtbot.waitUntil(lambda: win.controller.frame is not None and "empty" in win.controller.frame.source)

        def rested() -> bool:
            clock.advance(0.2)  # time passes while the empty table stays still
            return len(empty_checks) == 1

        qtbot.waitUntil(rested, timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: not win.controller.busy and win.view.banner.text() == "READY")
        assert len(database.repository.review_queue(limit=50, margin=1.0)) == 1  # the empty table is not logged
    finally:
        win.shutdown()


def test_a_coin_on_a_shared_side_is_captioned_to_turn_over(
    window: MainWindow, pipeline: NearestTypePipeline, replay_dir: Path
) -> None:
    from station.worker import CheckRequest, CheckResult, Recheck

    image = np.asarray(cv2.imread(str(replay_dir / "00_pure.png")), np.uint8)
    expected = pipeline.gallery.entries[0].type_id
    verdict = pipeline.run(Frame(image), expected)
    coins = tuple(dataclasses.replace(c, shared=c.index == 1) for c in verdict.coins)
    turned = dataclasses.replace(verdict, decision=Decision.FLAG, coins=coins, turn_first=True)
    request = CheckRequest(Frame(image, source="cup"), expected, None, OPERATOR, "test-bench")
    window.controller.show_verdict(CheckResult(request, turned, 0.0))
    captions = [t.caption.text() for t in window.view.thumbs.thumbnails()]
    assert captions[1] == "↻ #2 turn over" and not any("turn" in c for c in captions[:1] + captions[2:])
    # a FLAG that sends the cup to a supervisor as it lies asks for no turning on its thumbnails either
    window.controller.show_verdict(CheckResult(request, dataclasses.replace(turned, turn_first=False), 0.0))
    assert [t.caption.text() for t in window.view.thumbs.thumbnails()][1] == "⚠ #2 shared side"
    # its outline is marked too, whichever type its best match names: a shared side supports no PASS
    assert coins[1].matches[0].type_id == expected and not coins[1].suspicious
    assert [coin_ok(c, expected) for c in coins] == [True, False, True, True]
    drawn = draw_evidence(image, turned)
    x1, y1, _x2, y2 = coins[1].bbox
    row = drawn[round((y1 + y2) / 2), max(0, round(x1) - 1) : round(x1) + 3].reshape(-1, 3)
    assert (np.abs(row.astype(int) - FLAG_BGR).sum(axis=1) < 60).any()
    # the same coin still on a shared side when the cup is checked again after turning: no second turn
    again = CheckRequest(request.frame, expected, None, OPERATOR, "test-bench", recheck=Recheck(request.key, 4))
    window.controller.show_verdict(CheckResult(again, turned, 0.0))
    assert [t.caption.text() for t in window.view.thumbs.thumbnails()][1] == "⚠ #2 shared side"


def showing(controller: OperatorController, name: str) -> bool:
    return controller.frame is not None and name in controller.frame.source


def test_a_cup_whose_coins_were_turned_is_checked_again_as_the_same_cup(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    a = mint.types[0]
    as_laid = [(a, Side.OBVERSE), (a, Side.REVERSE), (a, Side.OBVERSE), (a, Side.REVERSE)]
    turned = [(a, Side.REVERSE)] * 4
    frames = {
        "00_as_laid": as_laid,
        "01_turned": turned,  # the re-check passes: the first FLAG needs no supervisor
        "02_as_laid": as_laid,  # flagged again, then Esc: the next cup is a new one
        "03_turned": turned,
        "04_as_laid": as_laid,
        "05_three": turned[:3],  # another coin count: another cup, not this one turned
    }
    folder = tmp_path / "turns"
    folder.mkdir()
    for name, coins in frames.items():
        cv2.imwrite(str(folder / f"{name}.png"), compose_cup(coins))
    turning = NearestTypePipeline(pipeline.embedder, pipeline.gallery, turn_over=frozenset({(a.id, Side.OBVERSE)}))
    config = config_from_dict({"name": "test-bench", "sound": False, "camera": {"kind": "folder", "folder": "."}})
    orders = OrderBook({ORDER: a.id})
    cups: dict[str, int] = {}
    with shown_window(qtbot, turning, spooling, catalog, config, folder, clock, orders=orders) as win:
        scan_order(qtbot, win, ORDER)
        view, controller = win.view, win.controller
        for k, name in enumerate(frames):
            if k:
                clock.advance(60.0)
                qtbot.waitUntil(partial(showing, controller, name))
            stored = check_with_space(qtbot, win)
            assert stored.verdict_id is not None
            cups[name] = database.repository.cup_of_verdict(stored.verdict_id)
            reason = view.reason.text()
            if name.endswith("as_laid"):
                assert view.banner.text() == "FLAG" and reason.endswith("Then check the cup again.")
                assert controller.recheck is not None
                assert view.check_button.text() == RECHECK_TEXT[RecheckWhy.TURNED]
                assert view.new_cup_button.isVisible()
            else:
                assert view.banner.text() == "PASS" and controller.recheck is None
                assert reason.endswith("Checked again after turning.") == (name == "01_turned")
                assert view.check_button.text() == CHECK_TEXT and not view.new_cup_button.isVisible()
            if name == "02_as_laid":
                qtbot.keyClick(view.preview, Qt.Key.Key_Escape)
                assert controller.recheck is None and not view.new_cup_button.isVisible()
                assert reason != view.reason.text() and "aside for a supervisor" in view.reason.text()
        # six photographs of five cups: the re-check's PASS stands for the first cup
        assert view.session_label.text() == "5 cups checked · 2 flagged"

    queue = {it.cup_id: it for it in database.repository.review_queue(limit=50, margin=1.0)}
    assert cups["00_as_laid"] not in queue  # answered by its re-check
    assert queue[cups["01_turned"]].recheck_of == cups["00_as_laid"]
    for name in ("02_as_laid", "04_as_laid"):  # not re-checked: a supervisor looks
        assert queue[cups[name]].decision is Decision.FLAG and queue[cups[name]].recheck_of is None
    assert queue[cups["03_turned"]].recheck_of is None and queue[cups["05_three"]].recheck_of is None


def test_a_cup_taken_away_after_a_turn_first_flag_is_not_rechecked(
    qtbot: QtBot, window: MainWindow, pipeline: NearestTypePipeline, replay_dir: Path
) -> None:
    image = np.asarray(cv2.imread(str(replay_dir / "00_pure.png")), np.uint8)
    expected = pipeline.gallery.entries[0].type_id
    verdict = pipeline.run(Frame(image), expected)
    turn = dataclasses.replace(verdict, decision=Decision.FLAG, turn_first=True, reasons=("coin 1 — turn it over",))
    request = CheckRequest(Frame(image, source="cup"), expected, None, OPERATOR, "test-bench")
    window.controller.choose_type(expected)
    window.controller.show_verdict(CheckResult(request, turn, 0.0))
    assert window.controller.recheck is not None
    turned = np.asarray(cv2.imread(str(replay_dir / "01_mixed.png")), np.uint8)
    window.controller.show_frame(Frame(turned, source="turned"))  # the coins turned over: the view has changed
    with qtbot.waitSignal(window.controller.verdict_shown, timeout=TIMEOUT_MS):
        assert window.controller.check()
        assert window.view.reason.text() == "Hold the cup still. Checking it again after turning."
    qtbot.waitUntil(lambda: not window.controller.busy)
    window.controller.show_verdict(CheckResult(request, turn, 0.0))
    assert window.controller.recheck is not None
    # the stillness gate then finds the tray empty: that cup is gone, the next one is new
    window.controller.nothing_seen(request)
    assert window.controller.recheck is None and window.view.check_button.text() == CHECK_TEXT
    assert window.view.reason.text().startswith("The flagged cup was taken away: put it aside for a supervisor.")
    window.controller.nothing_seen(request)  # an empty tray with nothing waiting: the plain prompt
    assert window.view.reason.text() == "Put the cup under the camera and press Space."


def test_the_camera_label_says_when_frames_are_not_of_the_size_set_up(window: MainWindow) -> None:
    frame = window.controller.frame
    assert frame is not None
    h, w = frame.image.shape[:2]
    label = window.view.camera_label
    assert window.controller.camera_size is None  # the test pipeline says nothing of a calibration
    window.controller.camera_size = (w, h)
    window.controller.show_fps(12.0)
    assert label.text() == "Camera 12 fps" and window.controller.camera_size_problem == ""
    window.controller.camera_size = (2 * w, 2 * h)  # calibrated at twice the size the camera now delivers
    window.controller.show_fps(12.0)
    assert label.text() == f"Camera 12 fps · {w}×{h}, set up at {2 * w}×{2 * h}: calibrate again"
    assert FLAG_HEX in label.styleSheet()
    assert window.view.banner.text() == "CAMERA" and not window.view.check_button.isEnabled()
    assert window.view.reason.text() == (
        f"The camera delivers {w}×{h} pixels but was set up at {2 * w}×{2 * h}: set it back, or have it calibrated"
        " again. Cups are checked once it is."
    )
    window.controller.camera_size = (w, h)  # set back
    window.controller.show_fps(12.0)
    assert window.view.banner.text() == "READY" and window.view.check_button.isEnabled()


class SetUpPipeline(NearestTypePipeline):
    """The stand-in pipeline with a view of the camera as it was set up (the station's comes from its empty tray)."""

    setup_view: SetupView | None = None


P = TypeVar("P", bound=SetUpPipeline)


def knocked(kind: type[P], pipeline: NearestTypePipeline, replay_dir: Path) -> tuple[np.ndarray, P]:
    """The first replayed frame, and a stand-in pipeline of ``kind`` whose camera was set up 10 px to the left of
    where that frame shows it."""
    frame = np.asarray(cv2.imread(str(sorted(replay_dir.glob("*.png"))[0])), np.uint8)
    moved = kind(pipeline.embedder, pipeline.gallery)
    moved.setup_view = SetupView(camera(frame, dx=-10.0))
    return frame, moved


def test_the_camera_label_says_when_the_camera_has_moved_since_it_was_set_up(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    station_config: StationConfig,
    replay_dir: Path,
    clock: SteppingClock,
) -> None:
    _, moved = knocked(SetUpPipeline, pipeline, replay_dir)
    with shown_window(qtbot, moved, spooling, catalog, station_config, replay_dir, clock) as win:
        label = win.view.camera_label
        win.controller.show_fps(12.0)  # about once a second: the worker compares the live frame
        qtbot.waitUntil(lambda: "moved since set-up" in label.text(), timeout=TIMEOUT_MS)
        assert label.text() == "Camera 12 fps · moved since set-up (10 px right): put it back or calibrate again"
        assert FLAG_HEX in label.styleSheet()
        assert win.controller.camera_problem == label.text().removeprefix("Camera 12 fps · ")
        # no cup is checked meanwhile: each would only be flagged for the camera
        assert win.view.banner.text() == "CAMERA" and not win.view.check_button.isEnabled()
        said = (
            "The camera has moved since it was set up (10 px right): put it back where it was, or have it calibrated"
            " again. Cups are checked once it is."
        )
        assert win.view.reason.text() == said
        win.controller.choose_type(catalog.types[0].type_id)
        assert not win.controller.check() and not win.controller.busy  # Space: the same words, nothing checked
        assert win.view.reason.text() == said and win.view.banner.text() == "CAMERA"
        # calibrated again: the station loads the new set-up; the camera stays held until the new set-up view
        # answers a look (a gallery or model loaded while the camera is knocked must not lift the hold)
        win.controller.use_setup(Loaded(pipeline=SetUpPipeline(pipeline.embedder, pipeline.gallery)))
        assert win.view.banner.text() == "CAMERA" and not win.view.check_button.isEnabled()
        win.controller.show_camera_move(
            CameraMove(dx=0.2, dy=0.0, scale=1.0, rotation_deg=0.0, rim_shift_px=0.2, matches=90, moved=False)
        )
        assert win.view.banner.text() == "READY" and win.view.check_button.isEnabled()
        win.controller.show_camera_move(
            CameraMove(dx=10.0, dy=0.0, scale=1.0, rotation_deg=0.0, rim_shift_px=10.0, matches=90, moved=True)
        )
        assert win.view.banner.text() == "CAMERA"
        # put back: the next comparison clears it
        win.controller.show_camera_move(
            CameraMove(dx=0.3, dy=0.0, scale=1.0, rotation_deg=0.0, rim_shift_px=0.3, matches=90, moved=False)
        )
        assert label.text() == "Camera 12 fps" and win.controller.camera_problem == ""
        assert win.view.banner.text() == "READY" and win.view.check_button.isEnabled()
        assert win.view.reason.text().startswith("The camera is as it was set up again")
        # a model without an empty-tray photo says nothing
        win.controller.show_camera_move(None)
        assert label.text() == "Camera 12 fps"


class CameraCheckingPipeline(SetUpPipeline):
    """The stand-in pipeline that, like the station's, flags a cup for the camera alone when the camera has moved
    since it was set up."""

    def run(self, frame: Frame, expected_type: str, *, expected_count: int | None = None) -> Verdict:
        verdict = super().run(frame, expected_type, expected_count=expected_count)
        move = None if self.setup_view is None else self.setup_view.compare(frame.image)
        if move is None or not move.moved:
            return verdict
        return dataclasses.replace(verdict, decision=Decision.FLAG, reasons=(move.problem(),), turn_first=False)


def test_a_cup_flagged_for_the_camera_alone_is_checked_again_as_the_same_cup_once_the_camera_is_back(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    station_config: StationConfig,
    replay_dir: Path,
    clock: SteppingClock,
) -> None:
    frame, moved = knocked(CameraCheckingPipeline, pipeline, replay_dir)
    with shown_window(qtbot, moved, spooling, catalog, station_config, replay_dir, clock) as win:
        view, controller = win.view, win.controller
        controller.choose_type(catalog.types[0].type_id)
        # the stillness gate checked the cup before the window's once-a-second look told the knock
        first = check_with_space(qtbot, win)
        assert view.banner.text() == "FLAG" and view.reason.text().endswith("Then check the cup again.")
        assert controller.recheck is not None and controller.recheck.why is RecheckWhy.CAMERA
        assert view.check_button.text() == RECHECK_TEXT[RecheckWhy.CAMERA] and view.new_cup_button.isVisible()
        controller.show_fps(12.0)
        qtbot.waitUntil(lambda: view.banner.text() == "CAMERA", timeout=TIMEOUT_MS)
        moved.setup_view = SetupView(frame)  # put back where it was set up
        controller.show_fps(12.0)
        qtbot.waitUntil(lambda: view.banner.text() == "READY", timeout=TIMEOUT_MS)
        assert view.reason.text() == "The camera is as it was set up again: press Space to check the cup again."
        with (
            qtbot.waitSignal(controller.verdict_shown, timeout=TIMEOUT_MS),
            qtbot.waitSignal(controller.store_shown, timeout=TIMEOUT_MS) as stored,
        ):
            assert controller.check()
            assert view.reason.text() == "Hold the cup still. Checking it again."
        second = stored.args[0]
        assert view.banner.text() == "PASS"
        assert view.reason.text().endswith("Checked again with the camera back in place.")
        assert controller.recheck is None and view.check_button.text() == CHECK_TEXT
        assert view.session_label.text() == "1 cup checked · 0 flagged"

    assert first.verdict_id is not None and second.verdict_id is not None
    repo = database.repository
    queue = {it.cup_id: it for it in repo.review_queue(limit=50, margin=1.0)}
    first_cup, second_cup = repo.cup_of_verdict(first.verdict_id), repo.cup_of_verdict(second.verdict_id)
    assert first_cup not in queue  # answered: nobody needs to rule on a FLAG the camera alone caused
    assert queue[second_cup].recheck_of == first_cup and only_the_camera(queue[second_cup].recheck_reasons)


def test_a_verdict_that_cannot_be_saved_sends_the_cup_aside(
    qtbot: QtBot, window: MainWindow, database: Database, clock: SteppingClock
) -> None:
    scan_order(qtbot, window, ORDER)
    assert check_with_space(qtbot, window).state is DbState.CONNECTED
    next_cup(qtbot, window, clock)  # the mixed cup
    store = database.repository.store.root
    aside = store.with_name("captures-away")
    os.rename(store, aside)
    store.write_text("not a folder")  # the store cannot take the photograph, as on a full disk
    try:
        result = check_with_space(qtbot, window)
        assert result.state is DbState.ERROR and result.verdict_id is None
        assert window.view.banner.text() == "NOT SAVED" and window.view.banner.colour == FLAG_HEX
        assert window.view.reason.text().startswith("This verdict could not be saved (")
        assert window.view.reason.text().endswith("Put the cup aside and call a supervisor.")
        assert window.view.db_label.text().startswith("Database: ERROR (")
    finally:
        store.unlink()
        os.rename(aside, store)
    # the cup whose verdict is on no record is checked again as it lies, and logged this time
    assert check_with_space(qtbot, window).state is DbState.CONNECTED
    assert window.view.banner.text() == "FLAG" and window.view.db_label.text() == "Database: connected"


def test_a_nearly_full_disk_asks_for_a_prune(qtbot: QtBot, window: MainWindow, clock: SteppingClock) -> None:
    scan_order(qtbot, window, ORDER)
    assert window.controller.low_disk_bytes == 2_000_000_000
    window.controller.low_disk_bytes = 1  # whatever this disk holds, it has a byte free
    assert check_with_space(qtbot, window).state is DbState.CONNECTED
    assert window.view.db_label.text() == "Database: connected"
    window.controller.low_disk_bytes = 10**18  # more than any disk holds: it reads as nearly full
    next_cup(qtbot, window, clock)
    assert check_with_space(qtbot, window).state is DbState.CONNECTED
    assert window.view.db_label.text().startswith("Database: connected · disk: ")
    assert window.view.db_label.text().endswith(" GB free, run cupcheck prune")
    assert FLAG_HEX in window.view.db_label.styleSheet()


def test_a_long_error_never_widens_or_lengthens_the_window(qtbot: QtBot, window: MainWindow) -> None:
    window.resize(1360, 728)  # as on a 1366×768 screen (the test screen is smaller than the window's minimum)
    qtbot.waitUntil(lambda: window.size().width() == 1360)
    size = window.size()
    error = "IntegrityError: (psycopg.errors.UniqueViolation) duplicate key value " + "x" * 3000 + "\n[SQL: ...]"
    window.controller.show_store(StoreResult(DbState.ERROR, None, 0, error))
    window.controller.show_model_problem("model verdict-9f8e7d6c could not be loaded; verdict-1a2b3c4d stays", error)
    qtbot.wait(50)
    assert window.size() == size
    assert window.minimumSizeHint().width() <= size.width() and window.minimumSizeHint().height() <= size.height()
    shown = window.view.db_label.shown_text()
    assert shown.startswith("Database: ERROR (IntegrityError") and shown.endswith("…")
    assert error in window.view.db_label.toolTip()  # all of it, for whoever fixes it
    assert "\n" not in shown  # one line in the status bar
    assert error in window.view.model_label.toolTip()
    reason = window.view.reason.text()  # the operator's line: the start of it, breakable, and what to do
    assert reason.startswith("This verdict could not be saved (IntegrityError") and len(reason) < 400
    assert reason.endswith("…). Put the cup aside and call a supervisor.")


def test_a_shared_image_folder_that_is_away_keeps_verdicts_waiting_and_says_so(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    database: Database,
    catalog: TypeCatalog,
    station_config: StationConfig,
    replay_dir: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    share = tmp_path / "share"
    share.mkdir()  # the mount point, with nothing mounted on it
    repo = VerdictRepository(database.repository.engine, database.home, store=share)
    spooling = SpoolingRepository(repo)
    orders = OrderBook({ORDER: catalog.types[0].type_id})
    with shown_window(qtbot, pipeline, spooling, catalog, station_config, replay_dir, clock, orders=orders) as win:
        scan_order(qtbot, win, ORDER)
        result = check_with_space(qtbot, win)
        assert result.state is DbState.SPOOLING and result.message == "image share"
        assert win.view.db_label.text() == "Image share away: 1 verdict waiting"
        assert win.view.banner.text() == "PASS"  # the verdict stands: it is in the journal, with its images
        repo.store.create()  # the share is back
        with qtbot.waitSignal(win.controller.store_shown, timeout=TIMEOUT_MS) as flushed:
            win.flush_timer.timeout.emit()  # the periodic flush, as queued to the worker
        assert flushed.args[0].state is DbState.CONNECTED and win.view.db_label.text() == "Database: connected"
        assert any(share.rglob("*.jpg"))


def test_space_pressed_twice_on_a_cup_to_turn_over_does_not_spend_its_turn(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
) -> None:
    a = mint.types[0]
    as_laid = four_coins(a)
    turned = compose_cup([(a, Side.REVERSE)] * 4)  # the same coins where they lay, turned over
    turning = NearestTypePipeline(pipeline.embedder, pipeline.gallery, turn_over=frozenset({(a.id, Side.OBVERSE)}))
    view, controller = operator_window(qtbot, catalog, clock)
    worker = InferenceWorker(turning, spooling)
    stored: list[StoreResult] = []
    controller.check_requested.connect(worker.check)
    worker.verdict_ready.connect(controller.show_verdict)
    worker.stored.connect(controller.show_store)
    worker.stored.connect(stored.append)
    controller.choose_type(a.id)
    controller.show_frame(Frame(as_laid, source="as laid"))
    assert controller.check()
    assert view.banner.text() == "FLAG" and controller.recheck is not None
    clock.advance(0.3)
    controller.show_frame(Frame(as_laid, source="as laid"))  # nobody has touched the cup
    assert not controller.check()  # the second press of a double tap checks nothing
    assert view.reason.text() == (
        "Nothing has moved since the cup was flagged: turn over the coins it names (↻ below), then press Space to"
        " check it again."
    )
    assert view.banner.text() == "FLAG" and controller.recheck is not None and len(stored) == 1
    assert view.check_button.text() == RECHECK_TEXT[RecheckWhy.TURNED]
    controller.show_frame(Frame(turned, source="turned"))
    assert controller.check()  # the turn, checked as that cup's one re-check
    assert view.banner.text() == "PASS" and view.reason.text().endswith("Checked again after turning.")
    repo = database.repository
    first, second = (repo.cup_of_verdict(s.verdict_id) for s in stored if s.verdict_id is not None)
    queue = {it.cup_id: it for it in repo.review_queue(limit=50, margin=1.0)}
    assert first not in queue and queue[second].recheck_of == first


def test_a_knocked_camera_unplugged_and_plugged_back_still_says_it_has_moved(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    replay_dir: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    image, moved = knocked(SetUpPipeline, pipeline, replay_dir)
    view, controller = operator_window(qtbot, catalog, clock, home=tmp_path)
    worker = InferenceWorker(moved, spooling)
    controller.camera_look_requested.connect(worker.look_at_camera)  # the once-a-second look, in this thread
    worker.camera_seen.connect(controller.show_camera_move)
    controller.choose_type(catalog.types[0].type_id)
    said = (
        "The camera has moved since it was set up (10 px right): put it back where it was, or have it calibrated"
        " again. Cups are checked once it is."
    )
    controller.show_frame(Frame(image, source="knocked"))
    controller.show_fps(15.0)
    assert view.banner.text() == "CAMERA" and view.reason.text() == said
    assert not view.check_button.isEnabled() and not view.empty_tray_button.isEnabled()
    controller.camera_lost("webcam 0")  # unplugged while knocked
    assert view.banner.text() == "NO CAM"
    controller.camera_restored()  # plugged back in, still knocked
    assert view.banner.text() == "CAMERA" and view.reason.text() == said
    for _ in range(3):
        controller.show_frame(Frame(image, source="knocked"))
        controller.show_fps(15.0)
        clock.advance(1.0)
    assert view.banner.text() == "CAMERA" and view.reason.text() == said
    assert not view.check_button.isEnabled() and not view.empty_tray_button.isEnabled()
    # a sign-in, or the end of another task's hold, does not invite a Space the knocked camera would refuse
    controller.sign_in_as("Bo")
    assert view.banner.text() == "CAMERA" and view.reason.text() == said
    assert controller.hold("ENROL", "Enrolling coins from the tray.")
    controller.release("Enrolled t0001 from 6 coins.")
    assert view.banner.text() == "CAMERA" and view.reason.text() == said
    assert view.detail.text() == "Enrolled t0001 from 6 coins." and not view.check_button.isEnabled()
    controller.camera_lost("webcam 0")
    controller.sign_in_as("Cy")
    assert view.banner.text() == "NO CAM"
    controller.camera_restored()
    controller.show_frame(Frame(image, source="knocked"))
    moved.setup_view = SetupView(image)  # put back where it was set up
    controller.show_fps(15.0)
    assert view.banner.text() == "READY" and view.check_button.isEnabled() and view.empty_tray_button.isEnabled()


def test_a_frozen_camera_is_lost_and_no_cup_is_checked_on_its_picture(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    replay_dir: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    cup = cv2.resize(np.asarray(cv2.imread(str(replay_dir / "00_pure.png")), np.uint8), (96, 64))
    video = write_pictures(tmp_path / "frozen.avi", [cup] * 150)  # the driver hands out its last picture forever
    source = OpenCVSource(str(video), clock=clock)
    pump = CameraPump(source, fps=15, clock=clock)
    view, controller = operator_window(qtbot, catalog, clock)
    worker = InferenceWorker(pipeline, spooling)
    pump.frame_ready.connect(controller.show_frame)
    pump.camera_lost.connect(controller.camera_lost)
    pump.camera_restored.connect(controller.camera_restored)
    controller.check_requested.connect(worker.check)
    worker.verdict_ready.connect(controller.show_verdict)
    worker.stored.connect(controller.show_store)
    controller.choose_type(catalog.types[0].type_id, order=ORDER)
    for _ in range(60):  # 4 s of the same picture: the cup it shows was taken away long ago
        pump.tick()
        clock.advance(1 / 15)
    assert controller.camera_is_lost and view.banner.text() == "NO CAM"
    assert view.camera_label.text() == f"Camera: LOST ({FROZEN}), reconnecting"
    assert view.reason.text() == f"The camera stopped delivering ({FROZEN}); cups can be checked again once it is back."
    assert not controller.check() and not view.check_button.isEnabled()
    assert database.repository.review_queue(limit=50, margin=1.0) == []
    source.close()


def test_a_verdict_for_the_order_before_is_never_shown_as_the_answer_for_the_order_scanned_meanwhile(
    qtbot: QtBot, window_with: OpenWindow, catalog: TypeCatalog, database: Database, clock: SteppingClock
) -> None:
    first, second = catalog.types[0].type_id, catalog.types[1].type_id
    with window_with(orders=OrderBook({ORDER: first, "B-2": second})) as win:
        view, controller = win.view, win.controller

        def check_and_scan(scanned: str) -> CheckResult:
            """Press Space on the cup of order A-1001, scan ``scanned`` while it is checked; the verdict."""
            scan_order(qtbot, win, ORDER)
            with (
                qtbot.waitSignal(controller.verdict_shown, timeout=TIMEOUT_MS) as shown,
                qtbot.waitSignal(controller.store_shown, timeout=TIMEOUT_MS),
            ):
                qtbot.keyClick(view.preview, Qt.Key.Key_Space)
                assert controller.busy
                scan_order(qtbot, win, scanned)
            result = shown.args[0]
            assert isinstance(result, CheckResult) and controller.recheck is None
            return result

        ready = f"Now order B-2 ({second}): put its cup under the camera and press Space."
        assert check_and_scan("B-2").verdict.decision is Decision.PASS
        # the banner waits for the cup of the order in hand; the PASS is said of its own order and type
        assert view.banner.text() == "READY" and view.expected_label.text() == catalog.types[1].label
        assert view.reason.text() == f"The cup checked for order {ORDER} ({first}) passed. {ready}"
        assert view.detail.text().startswith(f"PASS for order {ORDER} ({first}): 4 coins · 0 marked")
        check_and_scan("Z-9")  # an unknown order: none in hand
        assert view.banner.text() == "—"
        assert view.reason.text() == (
            f"The cup checked for order {ORDER} ({first}) passed. Scan the next order, or pick the type from the list."
        )
        clock.advance(60.0)  # the replay moves on to the mixed cup
        qtbot.waitUntil(partial(showing, controller, "01_mixed"))
        flagged = check_and_scan("B-2")
        assert flagged.verdict.decision is Decision.FLAG and view.banner.text() == "READY"
        coin = flagged.verdict.reasons[0]
        assert coin.startswith("coin 2 looks like") and view.reason.text() == (
            f"The cup checked for order {ORDER} ({first}) was flagged: {coin}. Put it aside for a supervisor. {ready}"
        )
    # each check is logged against the order it was made for
    logged = database.repository.order_checks(ORDER)
    assert [(c.decision, c.expected_type) for c in logged] == [
        (Decision.FLAG, first), (Decision.PASS, first), (Decision.PASS, first),
    ]  # fmt: skip
    assert database.repository.order_checks("B-2") == []


def test_tabbing_into_the_type_list_keeps_the_order_in_hand_and_only_a_click_or_enter_chooses(
    qtbot: QtBot, window_with: OpenWindow, catalog: TypeCatalog
) -> None:
    scanned = catalog.types[2].type_id
    with window_with(orders=OrderBook({ORDER: scanned})) as win:
        view, controller = win.view, win.controller
        lst = view.type_list
        scan_order(qtbot, win, ORDER)
        assert lst.currentItem().data(Qt.ItemDataRole.UserRole) == scanned  # the list shows the type in hand
        view.type_filter.setFocus()
        qtbot.keyClick(view.type_filter, Qt.Key.Key_Tab)  # on into the list
        assert lst.hasFocus()
        assert (controller.expected_type, controller.order) == (scanned, ORDER)
        qtbot.keyClick(lst, Qt.Key.Key_Up)  # moving through the list only highlights
        assert lst.currentRow() == 1 and (controller.expected_type, controller.order) == (scanned, ORDER)
        qtbot.keyClick(lst, Qt.Key.Key_Return)  # Enter chooses the highlighted type, and Space is the preview's
        assert (controller.expected_type, controller.order) == (catalog.types[1].type_id, None)
        assert view.preview.hasFocus()
        click_type(qtbot, win, 0)
        assert (controller.expected_type, controller.order) == (catalog.types[0].type_id, None)
        scan_order(qtbot, win, ORDER)  # the scanned type is the list's current row again, chosen by nothing
        assert lst.currentRow() == 2 and view.order_status.text() == f"Order {ORDER}"
        click_type(qtbot, win, 2)  # a click on the type in hand keeps its order
        assert (controller.expected_type, controller.order) == (scanned, ORDER)


def test_the_longest_camera_words_never_widen_the_window_off_a_small_screen(
    qtbot: QtBot, window: MainWindow, replay_dir: Path
) -> None:
    window.resize(1360, 728)  # as on a 1366×768 screen (the test screen is smaller than the window's minimum)
    qtbot.waitUntil(lambda: window.size().width() == 1360)
    controller, label = window.controller, window.view.camera_label
    window.pump.stop()  # the test says what the camera does
    image = np.asarray(cv2.imread(str(replay_dir / "00_pure.png")), np.uint8)

    def fits() -> None:
        qtbot.wait(50)
        assert window.width() <= 1366 and window.minimumSizeHint().width() <= 1366

    controller.camera_lost(f"webcam 0 — {FROZEN}")
    fits()
    assert label.toolTip() == f"Camera: LOST ({FROZEN}), reconnecting" and label.shown_text().endswith("…")
    controller.camera_restored()
    assert label.text() == "Camera: back"
    controller.show_fps(15.0)  # (no frame yet: the view is not compared with the set-up photo, as the test does)
    far = CameraMove(-123.0, -87.0, 1.12, -13.0, 160.0, 40, moved=True)
    controller.show_camera_move(far)
    fits()
    assert label.toolTip() == f"Camera 15 fps · moved since set-up ({far.describe()}): put it back or calibrate again"
    # the banner and the reason say it in full
    assert window.view.banner.text() == "CAMERA" and far.describe() in window.view.reason.text()
    controller.camera_size = (1920, 1080)  # frames of another size than set up
    controller.show_frame(Frame(image))
    controller.show_camera_move(far)
    fits()
    assert label.toolTip().endswith(", set up at 1920×1080: calibrate again")
    controller.camera_size = None
    controller.show_camera_move(None)  # all well again: the short words, whole
    fits()
    assert label.text() == label.shown_text() == "Camera 15 fps"
