"""An order scanned again: the operator window says when it passed before, where and by whom (real SQLite log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pytestqt.qtbot import QtBot

from db.records import OrderCheck
from models.types import Decision
from station.controllers.catalog import OrderBook, TypeCatalog
from station.controllers.order_history import already_passed
from station.controllers.overlay import FLAG_HEX
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
