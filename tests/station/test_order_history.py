"""An order scanned again: the operator window says when it passed before, where and by whom (real SQLite log)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from pytestqt.qtbot import QtBot

from db.records import OrderCheck
from db.spool import SpoolingRepository
from models.types import Decision
from station.controllers.catalog import OrderBook, TypeCatalog
from station.controllers.order_history import already_passed
from station.controllers.overlay import FLAG_HEX
from station.main_window import AWAY_AT_START
from station.worker import DbState
from tests.station.conftest import OPERATOR, Database, OpenWindow
from tests.station.test_operator import check_with_space, scan_order

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _check(decision: Decision, at: datetime) -> OrderCheck:
    return OrderCheck(1, at, "packing-2", "olga", decision, 10, 10)


def test_the_newest_pass_is_named_with_its_date_when_not_today() -> None:
    flagged, passed = _check(Decision.FLAG, NOON), _check(Decision.PASS, NOON - timedelta(minutes=30))
    local = passed.at.astimezone()
    assert already_passed([flagged, passed], now=NOON) == f"already passed at {local:%H:%M} on packing-2 (olga)"
    later = NOON + timedelta(days=3)
    on_day = f"already passed at {local:%H:%M} on {local:%Y-%m-%d} on packing-2 (olga)"
    assert already_passed([passed], now=later) == on_day
    assert already_passed([flagged], now=NOON) == already_passed([], now=NOON) == ""


def test_an_order_that_passed_is_named_when_scanned_again(
    qtbot: QtBot, window_with: OpenWindow, catalog: TypeCatalog, database: Database
) -> None:
    type_id = catalog.types[0].type_id
    orders = OrderBook({"A-7": type_id, "B-1": type_id})
    with window_with(orders=orders, order_history=database.repository.order_checks) as win:
        history = win.order_history
        assert history is not None
        with qtbot.waitSignal(history.answered, timeout=10_000):
            scan_order(qtbot, win, "A-7")  # never checked: nothing to say
        assert win.view.order_status.text() == "Order A-7"
        check_with_space(qtbot, win)  # the pure cup passes
        assert win.view.banner.text() == "PASS"

        with qtbot.waitSignal(history.answered, timeout=10_000):
            scan_order(qtbot, win, "B-1")
        assert "already passed" not in win.view.order_status.text()
        with qtbot.waitSignal(history.answered, timeout=10_000):
            scan_order(qtbot, win, "A-7")  # the same order again: a second cup for it?
        status = win.view.order_status.text()
        assert status.startswith("Order A-7, already passed at ")
        assert status.endswith(f" on test-bench ({OPERATOR})") and FLAG_HEX in win.view.order_status.styleSheet()
        assert win.view.reason.text().startswith("Order A-7 already passed at ")
        assert win.view.reason.text().endswith("Another cup for it? If not, scan the right order.")


def test_an_answer_said_again_replaces_the_last_and_never_widens_the_window(
    qtbot: QtBot, window_with: OpenWindow, catalog: TypeCatalog, database: Database
) -> None:
    type_id = catalog.types[0].type_id
    orders = OrderBook({"A-7": type_id})
    with window_with(orders=orders, order_history=database.repository.order_checks) as win:
        history = win.order_history
        assert history is not None
        with qtbot.waitSignal(history.answered, timeout=10_000):
            scan_order(qtbot, win, "A-7")
        check_with_space(qtbot, win)
        assert win.view.banner.text() == "PASS"
        width = win.minimumSizeHint().width()
        answers: list[object] = []
        history.answered.connect(lambda *answer: answers.append(answer))
        scan_order(qtbot, win, "A-7")  # scanned twice before the first answer came
        scan_order(qtbot, win, "A-7")
        qtbot.waitUntil(lambda: len(answers) == 2, timeout=10_000)
        status = win.view.order_status.text()
        assert status.count("already passed") == 1 and status.startswith("Order A-7, already passed at ")
        assert win.minimumSizeHint().width() <= width


def test_with_the_database_away_the_order_box_says_it_could_not_check_and_the_journal_is_read(
    qtbot: QtBot, window_with: OpenWindow, catalog: TypeCatalog, database: Database
) -> None:
    type_id = catalog.types[0].type_id
    orders = OrderBook({"PO-1": type_id, "PO-2": type_id})
    aside = database.folder.with_name("dbdir-away")
    database.repository.engine.dispose()  # pooled connections hold the file open
    os.rename(database.folder, aside)  # the database's share is away from the start
    try:
        with window_with(orders=orders, order_history=database.repository.order_checks) as win:
            history = win.order_history
            assert history is not None
            assert win.view.db_label.text() == "Database: not used yet"
            with qtbot.waitSignal(history.answered, timeout=10_000):
                scan_order(qtbot, win, "PO-1")  # never checked, but nobody can tell
            status = win.view.order_status.text()
            assert status == "Order PO-1, could not check whether it passed before: database away"
            assert FLAG_HEX in win.view.order_status.styleSheet()
            assert win.view.reason.text().startswith("Could not check whether order PO-1 passed before")
            assert win.view.db_label.text() == "Database: away"  # the first cup need not be checked to know

            assert check_with_space(qtbot, win).state is DbState.SPOOLING  # it passes, journalled
            assert win.view.banner.text() == "PASS"
            with qtbot.waitSignal(history.answered, timeout=10_000):
                scan_order(qtbot, win, "PO-2")
            assert "passed" not in win.view.order_status.text().replace("could not check whether it passed", "")
            with qtbot.waitSignal(history.answered, timeout=10_000):
                scan_order(qtbot, win, "PO-1")  # the slip of the order just filled, scanned again
            status = win.view.order_status.text()
            assert status.startswith("Order PO-1, already passed at ") and status.endswith(
                f"on test-bench ({OPERATOR})"
            )
            assert win.view.reason.text().endswith("Another cup for it? If not, scan the right order.")
    finally:
        os.rename(aside, database.folder)


def test_a_database_away_when_the_station_opened_it_is_said_before_the_first_cup(
    window_with: OpenWindow, spooling: SpoolingRepository
) -> None:
    spooling.away_at_start = True  # as open_repository marks it (tests/station/test_site_start.py)
    with window_with() as win:
        assert win.view.db_label.text() == AWAY_AT_START
        assert FLAG_HEX in win.view.db_label.styleSheet()
