"""The bench of cups put aside: what each ruling tells the operator to do, how the bench is ordered, and the operator
window listing a flagged cup as waiting, then as ready to ship once a supervisor confirms it (real SQLite log)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtWidgets import QLabel, QListWidget
from pytestqt.qtbot import QtBot

from db.records import AsideCup, CoinRuling
from db.schema import LabelKind
from station.app import aside_since
from station.config import StationConfig
from station.controllers.bench import (
    CLEARED_FILE,
    CUP_ROLE,
    BenchController,
    BenchLine,
    BenchState,
    ClearedCups,
    advise,
    bench_lines,
    bench_title,
    photo_thumbnail,
)
from station.controllers.catalog import TypeCatalog
from tests.station.conftest import SUPERVISOR, Database, OpenWindow, SteppingClock
from tests.station.test_operator import check_with_space

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _cup(**kw: object) -> AsideCup:
    fields: dict[str, object] = {
        "cup_id": 1,
        "at": AT,
        "order": "A-7",
        "expected_type": "t0001",
        "reasons": ("coin 2 looks like t0004 (0.91)",),
        "cup_ruling": None,
        "corrected_type": None,
        "ruled_by": None,
        "ruled_at": None,
        "coins": (),
    }
    fields.update(kw)
    return AsideCup(**fields)  # type: ignore[arg-type]


def _head() -> str:
    return f"Order A-7, {AT.astimezone().strftime('%H:%M')}"


def test_each_ruling_says_what_to_do_with_the_cup() -> None:
    ruled = {"ruled_by": "sam", "ruled_at": AT + timedelta(minutes=5)}
    assert advise(_cup()) == BenchLine(1, BenchState.WAITING, f"{_head()}: waiting for a supervisor")
    assert advise(_cup(cup_ruling="confirmed", **ruled)) == BenchLine(
        1, BenchState.SHIP, f"{_head()}: every coin is t0001; ship it (sam)"
    )
    assert advise(_cup(cup_ruling="corrected", corrected_type="t0004", **ruled)) == BenchLine(
        1, BenchState.RETURN, f"{_head()}: it holds t0004, not t0001; keep it off this order (sam)"
    )
    coins = (
        CoinRuling(0, LabelKind.CONFIRMED.value, None),
        CoinRuling(1, LabelKind.CORRECTED.value, "t0004"),
        CoinRuling(2, LabelKind.CORRECTED.value, "t0001"),  # the type it should be: nothing to take out
        CoinRuling(3, LabelKind.WRONG_SIDE.value, None),
        CoinRuling(4, LabelKind.NOT_A_COIN.value, None),
        CoinRuling(6, LabelKind.DAMAGED.value, None),
    )
    fix = advise(_cup(cup_ruling="confirmed", coins=coins, **ruled))  # a coin ruling outweighs the cup's
    assert fix.state is BenchState.FIX
    assert fix.text == (
        f"{_head()}: take out coin 2 (t0004), coin 5 (not a coin), coin 7 (damaged), then check the cup again (sam)"
    )
    only_right = advise(_cup(coins=coins[:1] + coins[2:4], **ruled))  # coin rulings, none wrong, no cup ruling
    assert only_right.state is BenchState.WAITING
    assert advise(_cup(order=None)).text.startswith("t0001, ")


def test_the_bench_lists_what_to_act_on_first_the_newest_ruling_first() -> None:
    cups = [  # as the log gives them: newest first
        _cup(cup_id=4),
        _cup(cup_id=3, cup_ruling="confirmed", ruled_by="sam", ruled_at=AT + timedelta(minutes=1)),
        _cup(cup_id=2),
        _cup(
            cup_id=1, cup_ruling="corrected", corrected_type="t0009", ruled_by="sam", ruled_at=AT + timedelta(minutes=9)
        ),
    ]
    lines = bench_lines(cups)
    assert [line.cup_id for line in lines] == [1, 3, 4, 2]
    assert bench_title(lines) == "Put aside: 2 waiting, 2 to act on"
    assert bench_title([]) == "Put aside: none"
    assert bench_title(lines[2:]) == "Put aside: 2 waiting"


def test_the_operator_window_lists_a_flagged_cup_until_a_supervisor_rules_on_it(
    qtbot: QtBot,
    window_with: OpenWindow,
    catalog: TypeCatalog,
    station_config: StationConfig,
    clock: SteppingClock,
    database: Database,
    tmp_path: Path,
) -> None:
    aside = partial(aside_since, database.repository, station_config.name)
    with window_with(aside=aside, aside_photo=database.repository.read_blob) as win:
        bench = win.bench
        assert bench is not None and win.view.aside_list.isVisible()
        qtbot.waitUntil(lambda: win.view.aside_title.text() == "PUT ASIDE: NONE")
        win.controller.choose_type(catalog.types[0].type_id, order="A-7")
        clock.advance(60.0)  # the replay moves on to the mixed cup
        qtbot.waitUntil(lambda: win.controller.frame is not None and "01_mixed" in win.controller.frame.source)
        with qtbot.waitSignal(bench.shown, timeout=10_000):  # read again once the verdict is stored
            stored = check_with_space(qtbot, win)
        assert win.view.banner.text() == "FLAG" and stored.verdict_id is not None
        qtbot.waitUntil(lambda: win.view.aside_list.count() == 1)
        assert win.view.aside_list.item(0).text().endswith(": waiting for a supervisor")
        assert not win.view.aside_list.item(0).icon().isNull()  # the cup's photograph, to find it on the bench
        assert not bench.news
        assert win.view.aside_title.text() == "PUT ASIDE: 1 WAITING"

        cup = database.repository.cup_of_verdict(stored.verdict_id)
        database.repository.relabel(SUPERVISOR, cup, LabelKind.CONFIRMED)  # in the review window, elsewhere
        with qtbot.waitSignal(bench.shown, timeout=10_000):
            bench.refresh()  # as its timer does
        assert win.view.aside_list.item(0).text().endswith(f"every coin is {catalog.types[0].type_id}; ship it (sam)")
        assert win.view.aside_title.text() == "PUT ASIDE: 1 TO ACT ON"
        assert bench.news and win.view.aside_title.styleSheet()  # the ruling stands out until the operator looks

        win.view.aside_list.itemDoubleClicked.emit(win.view.aside_list.item(0))  # shipped: the operator clears it
        assert win.view.aside_list.count() == 0 and win.view.aside_title.text() == "PUT ASIDE: NONE"
        with qtbot.waitSignal(bench.shown, timeout=10_000):
            bench.refresh()
        assert win.view.aside_list.count() == 0  # read again, it stays cleared
    assert json.loads((tmp_path / CLEARED_FILE).read_text()) == [cup]  # and after the window is gone


def test_a_cup_still_waiting_cannot_be_cleared_and_a_damaged_file_clears_nothing(tmp_path: Path, qtbot: QtBot) -> None:
    title, listing = QLabel(), QListWidget()
    qtbot.addWidget(listing)
    cups = [_cup(cup_id=2), _cup(cup_id=1, cup_ruling="confirmed", ruled_by="sam", ruled_at=AT)]
    (tmp_path / CLEARED_FILE).write_text("not json")
    bench = BenchController(title, listing, lambda: cups, interval_s=0, cleared=ClearedCups(tmp_path / CLEARED_FILE))
    try:
        qtbot.waitUntil(lambda: listing.count() == 2)
        assert [line.cup_id for line in bench.lines] == [1, 2]
        assert not bench.clear_item(listing.item(1))  # waiting for a supervisor: it stays
        assert bench.clear_item(listing.item(0)) and [line.cup_id for line in bench.lines] == [2]
        assert 1 in ClearedCups(tmp_path / CLEARED_FILE)  # saved, and the damaged file replaced
    finally:
        bench.stop()


def test_a_cups_photograph_is_shown_small_and_a_missing_one_leaves_it_without(tmp_path: Path, qtbot: QtBot) -> None:
    photo = cv2.imencode(".jpg", np.full((480, 640, 3), 90, np.uint8))[1].tobytes()
    small = photo_thumbnail(photo)
    assert small is not None and small.shape == (30, 40, 3)
    assert photo_thumbnail(b"not a jpeg") is None

    def read(ref: str) -> bytes:
        if ref == "gone":
            raise FileNotFoundError(ref)
        return photo

    cups = [_cup(cup_id=1, photo="here"), _cup(cup_id=2, photo="gone"), _cup(cup_id=3)]
    title, listing = QLabel(), QListWidget()
    qtbot.addWidget(listing)
    bench = BenchController(title, listing, lambda: cups, interval_s=0, photo=read)
    try:
        qtbot.waitUntil(lambda: listing.count() == 3)
        icons = {listing.item(k).data(CUP_ROLE): not listing.item(k).icon().isNull() for k in range(3)}
        assert icons == {1: True, 2: False, 3: False}
    finally:
        bench.stop()
