"""The windows fit a station's small screen, 1366×768 and 1280×720 (the operator window in its compact layout there),
less a task bar and a title bar, with every optional widget shown and the longest words, and no widget drawn over
another at that size."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from models.types import Side
from station.views.enrol_tray import TrayEnrolView
from station.views.operator import OperatorView
from station.views.review import ReviewView
from station.views.widgets import TITLE_BAR_PX, fit_to_screen, wants_compact

SMALL_SCREEN = (1366, 768)
TASK_BAR_PX = 40
ROOM = (SMALL_SCREEN[0], SMALL_SCREEN[1] - TASK_BAR_PX - TITLE_BAR_PX)
SMALLEST_ROOM = (1280, 720 - TASK_BAR_PX - TITLE_BAR_PX)
SCREENS = pytest.mark.parametrize("room", [ROOM, SMALLEST_ROOM], ids=["1366x768", "1280x720"])
LONG_NAME = "us_pa_1999_p_proof — Pennsylvania state quarter 1999, Philadelphia mint, proof strike (silver)"
LONG_REASON = (
    "The type us_pa_1999_p_proof has a lookalike (us_pa_1999_d) — check the date and mint mark by eye. Coin 12 "
    "looks like us_de_1999_p (0.91). Coins 3, 5, 9 show the shared obverse — turn them over. Put it aside."
)


def _at_smallest(qtbot: QtBot, view: QWidget, room: tuple[int, int] = ROOM) -> None:
    qtbot.addWidget(view)
    view.show()
    hint = view.minimumSizeHint()
    view.resize(hint)
    qtbot.waitUntil(lambda: view.size() == hint)
    assert hint.width() <= room[0] and hint.height() <= room[1], f"{hint} does not fit {room}"


def _apart(*widgets: QWidget) -> None:
    """No two of ``widgets`` overlap (geometries mapped to the window)."""
    rects = [QRect(w.mapTo(w.window(), w.rect().topLeft()), w.size()) for w in widgets]
    for i, a in enumerate(rects):
        for j, b in enumerate(rects[i + 1 :], i + 1):
            assert not a.intersects(b), f"{widgets[i].objectName() or i} overlaps {widgets[j].objectName() or j}"


@pytest.mark.parametrize(
    ("compact", "room"),
    [(False, ROOM), (True, SMALLEST_ROOM)],
    ids=["full layout in 1366x768", "compact layout in 1280x720"],
)
def test_the_operator_window_fits_a_small_screen_with_nothing_drawn_over_anything(
    qtbot: QtBot, compact: bool, room: tuple[int, int]
) -> None:
    view = OperatorView(compact=compact)
    view.show_aside(True)
    for button in (view.new_cup_button, view.enrol_tray_button, view.sign_out_button):
        button.setVisible(True)
    view.expected_label.setText(LONG_NAME)
    view.reason.setText(LONG_REASON)
    view.detail.setText("12 coins · 4 marked · p = 0.000 (needs ≥ 0.970) · 437 ms")
    _at_smallest(qtbot, view, room)
    _apart(
        view.order_status,
        view.reference_obverse,
        view.expected_label,
        view.banner,
        view.reason,
        view.detail,
        view.check_button,
        view.new_cup_button,
        view.type_filter,
        view.type_list,
    )
    _apart(view.preview, view.thumbs, view.aside_list)
    assert view.banner.height() >= view.banner.minimumHeight() and view.reference_obverse.height() >= 76
    # the long reason is drawn smaller to show whole in its four lines; a short one at full size
    reason = view.reason
    assert reason.min_px <= reason.text_px < reason.max_px
    assert reason.height_at(reason.text_px, reason.contentsRect().width()) <= reason.contentsRect().height()
    reason.setText("All 10 coins match t0013.")
    assert reason.text_px == reason.max_px


@SCREENS
def test_the_review_window_fits_a_small_screen_with_nothing_drawn_over_anything(
    qtbot: QtBot, room: tuple[int, int]
) -> None:
    view = ReviewView()
    view.people_button.setVisible(True)
    view.before_button.setVisible(True)
    view.summary.setText(f"Cup 7 · order ORD-4714 · olga at packing-2 — expected {LONG_NAME}. Why: {LONG_REASON}")
    _at_smallest(qtbot, view, room)
    _apart(view.summary_box, view.before_button, view.photo, view.thumbs)
    # a summary longer than its five lines scrolls: its last line is there to be read, not cut off
    summary = view.summary
    assert summary.heightForWidth(summary.width()) > view.summary_box.height()
    assert summary.height() >= summary.heightForWidth(summary.width())
    assert view.summary_box.verticalScrollBar().maximum() > 0
    _apart(view.confirm_button, view.type_combo, view.not_coin_button, view.audit, view.enrol_button)


@pytest.mark.parametrize(
    ("free", "compact"),
    [
        ((1280, 720 - TASK_BAR_PX - TITLE_BAR_PX), True),
        (ROOM, True),  # 1366×768 with a task bar
        ((1366, 768 - TITLE_BAR_PX), True),  # and without one (a kiosk): the full layout left the types 1.5 rows
        ((1440, 900 - TASK_BAR_PX - TITLE_BAR_PX), False),
        ((1920, 1080 - TASK_BAR_PX - TITLE_BAR_PX), False),
        (None, False),  # no screen known: the full layout
    ],
)
def test_the_operator_window_is_compact_on_screens_up_to_1366x768(free: tuple[int, int] | None, compact: bool) -> None:
    assert wants_compact(None if free is None else QSize(*free)) is compact


def test_a_window_opens_at_its_size_or_the_screens_free_area_if_smaller(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    free = window.screen().availableGeometry()
    fit_to_screen(window, (300, 200))
    assert (window.width(), window.height()) == (300, 200)
    fit_to_screen(window, (free.width() + 500, free.height() + 500))
    assert (window.width(), window.height()) == (free.width(), free.height() - TITLE_BAR_PX)


@SCREENS
def test_the_tray_enrolment_dialog_fits_with_the_longest_design_guess(qtbot: QtBot, room: tuple[int, int]) -> None:
    view = TrayEnrolView()
    guess = (
        "The same design as f000-obv, shown by t0000, t0001, t0002, t0003 and 9 more (100% of the coins, cosine 0.95)"
    )
    for panel in view.sides.values():
        panel.summary.setText("11 of 11 coins kept as references. The model was calibrated with 15 a side.")
        panel.design_check.setVisible(True)
        panel.design_check.setText(guess)
    _at_smallest(qtbot, view, room)
    panel = view.sides[Side.OBVERSE]
    _apart(panel.picture, panel.shoot_button, panel.summary, panel.design_check)
    # the words wrap under the box, and a click on them ticks it, as on a plain check box's
    assert panel.design_check.label.height() > panel.design_check.label.fontMetrics().height()
    assert not panel.design_check.isChecked()
    qtbot.mouseClick(panel.design_check.label, Qt.MouseButton.LeftButton)
    assert panel.design_check.isChecked()
