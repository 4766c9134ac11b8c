"""Shift change at the operator window: F2 signs out and asks the next person in, Space asks while nobody is signed
in, an idle window signs its operator out, and every cup is recorded under the name of whoever checked it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from db.activity import read_activity
from db.records import OperatorInfo
from station.config import StationConfig
from station.controllers.catalog import OrderBook, TypeCatalog
from station.controllers.operator import SIGN_IN_TEXT, SIGN_OUT_TEXT
from station.main_window import MainWindow
from tests.station.conftest import (
    OPERATOR,
    SUPERVISOR,
    SUPERVISOR_PIN,
    Database,
    OpenWindow,
    SteppingClock,
)
from tests.station.test_operator import ORDER, check_with_space, next_cup, scan_order


class Door:
    """Who answers the sign-in dialog next (``None``: Cancel), and how often it was shown."""

    def __init__(self) -> None:
        self.next: list[OperatorInfo | None] = []
        self.asked = 0

    def __call__(self) -> OperatorInfo | None:
        self.asked += 1
        return self.next.pop(0)


@pytest.fixture
def door() -> Door:
    return Door()


@pytest.fixture
def window(
    window_with: OpenWindow, station_config: StationConfig, catalog: TypeCatalog, door: Door
) -> Iterator[MainWindow]:
    config = station_config.model_copy(update={"sign_out_after_min": 1.0})
    with window_with(config=config, orders=OrderBook({ORDER: catalog.types[0].type_id}), sign_in=door) as w:
        yield w


def _operators(database: Database) -> list[str]:
    now = datetime.now(UTC)
    checks = read_activity(database.repository.engine, now - timedelta(days=365 * 30), now + timedelta(days=1))
    return [c.operator for c in checks]


def test_f2_hands_the_station_to_the_next_person(
    qtbot: QtBot, window: MainWindow, door: Door, database: Database, clock: SteppingClock
) -> None:
    view, controller = window.view, window.controller
    assert view.sign_out_button.isVisible() and view.sign_out_button.text() == SIGN_OUT_TEXT
    assert window.idle_timer.isActive()
    scan_order(qtbot, window, ORDER)
    check_with_space(qtbot, window)

    door.next = [None]  # F2, then the dialog is cancelled: nobody is signed in
    qtbot.keyClick(view.preview, Qt.Key.Key_F2)
    assert door.asked == 1 and not controller.signed_in
    assert view.banner.text() == "SIGN IN" and view.sign_out_button.text() == SIGN_IN_TEXT
    assert not view.reference_obverse.has_image() and view.reference_obverse.pixmap().isNull()
    assert view.station_label.text() == "Station test-bench · signed out"
    assert controller.expected_type is None and controller.order is None  # the next person scans their own order

    sam = database.repository.verify_operator(SUPERVISOR, SUPERVISOR_PIN)
    assert sam is not None
    door.next = [sam]
    qtbot.keyClick(view.preview, Qt.Key.Key_Space)  # Space while signed out asks for a sign-in; checks nothing
    assert door.asked == 2 and controller.operator == SUPERVISOR
    assert view.station_label.text() == f"Station test-bench · {SUPERVISOR}"
    assert view.session_label.text() == "No cups checked yet"
    assert view.reason.text() == f"Signed in as {SUPERVISOR}: scan the order or pick the type."
    scan_order(qtbot, window, ORDER)
    next_cup(qtbot, window, clock)  # their own cup (the one checked before, unchanged, is not logged again)
    check_with_space(qtbot, window)
    assert view.session_label.text().startswith("1 cup checked")
    assert _operators(database) == [OPERATOR, SUPERVISOR]


def test_an_idle_window_signs_its_operator_out(
    qtbot: QtBot, window: MainWindow, door: Door, clock: SteppingClock
) -> None:
    controller = window.controller
    scan_order(qtbot, window, ORDER)
    check_with_space(qtbot, window)
    counted = window.view.session_label.text()
    assert counted.startswith("1 cup checked")
    scan_order(qtbot, window, ORDER)
    clock.advance(59.0)
    assert not controller.idle_tick()  # an order was scanned 59 s ago
    clock.advance(2.0)
    assert controller.idle_tick() and not controller.signed_in
    assert window.view.reason.text() == "Signed out after 1 minute without a check. Press F2 or Space to sign in."
    assert not controller.idle_tick()  # nobody left to sign out
    assert not controller.check(auto=True) and door.asked == 0  # the stillness gate checks nothing, asks nobody
    controller.sign_in_as(OPERATOR)  # the same person back: their session goes on
    assert window.view.session_label.text() == counted
    controller.sign_in_as(SUPERVISOR)  # another: theirs starts
    assert window.view.session_label.text() == "No cups checked yet"


def test_the_demo_window_has_no_sign_out(window_with: OpenWindow, clock: SteppingClock) -> None:
    with window_with() as win:
        assert not win.view.sign_out_button.isVisible() and not win.idle_timer.isActive()
        clock.advance(3600 * 24)
        assert not win.controller.idle_tick() and win.controller.operator == OPERATOR
