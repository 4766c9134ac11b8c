"""Telling a moved camera from the surroundings of the cup: a known shift, zoom and turn are measured, a cup put
down elsewhere or a hand beside it is not taken for a move, and a plain table says nothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.movement import CameraMove, MovementSettings, SetupView
from tests.calibration.views import ROI, H, W, camera, exposure, table, with_coins


@pytest.fixture(scope="module")
def view() -> SetupView:
    return SetupView(exposure(table(), 1), ROI)


def test_a_camera_where_it_was_set_up_has_not_moved(view: SetupView) -> None:
    assert view.features >= 200 and view.recognisable
    for seed in range(3):  # other cups, other exposures, the cup put down a little differently
        move = view.compare(exposure(with_coins(table(), seed, cup_shift=(seed * 6, -seed * 4)), 10 + seed))
        assert move is not None and not move.moved, move
        assert move.rim_shift_px < 1.0 and move.matches >= 50
        assert move.problem() == ""


@pytest.mark.parametrize(
    ("dx", "dy", "scale", "turn", "words"),
    [
        (12.0, 5.0, 1.0, 0.0, "12 px right and 5 px down"),
        (-9.0, 0.0, 1.0, 0.0, "9 px left"),
        (0.0, 0.0, 1.03, 0.0, "3% closer"),
        (0.0, 0.0, 0.96, 0.0, "4% farther"),
        (0.0, 0.0, 1.0, 2.0, "turned 2° clockwise"),
    ],
)
def test_a_knocked_camera_is_measured(
    view: SetupView, dx: float, dy: float, scale: float, turn: float, words: str
) -> None:
    frame = exposure(camera(with_coins(table(), 4), dx, dy, scale, turn), 20)
    move = view.compare(frame)
    assert move is not None and move.moved, move
    # where the cup's centre now appears: the move applied about the image centre
    m = cv2.getRotationMatrix2D((W / 2, H / 2), -turn, scale)
    expect = m[:, :2] @ np.array([ROI.x, ROI.y]) + m[:, 2] + (dx, dy) - (ROI.x, ROI.y)
    assert move.dx == pytest.approx(expect[0], abs=0.6) and move.dy == pytest.approx(expect[1], abs=0.6)
    assert move.scale == pytest.approx(scale, abs=0.002)
    assert move.rotation_deg == pytest.approx(turn, abs=0.1)
    assert words in move.describe()
    assert move.centre == (ROI.x, ROI.y) and move.radius == ROI.radius
    x, y, r = move.cup_now  # where the cup region as set up now appears
    assert (x, y) == pytest.approx((ROI.x + expect[0], ROI.y + expect[1]), abs=0.6)
    assert r == pytest.approx(ROI.radius * scale, rel=0.003)
    assert move.problem().startswith(f"the camera has moved since it was set up (the view: {move.describe()})")
    assert "calibrate again (cupcheck calibrate)" in move.problem()


def test_a_small_move_is_within_tolerance_and_a_hand_beside_the_cup_is_outvoted(view: SetupView) -> None:
    small = view.compare(exposure(camera(with_coins(table(), 5), 2.0, 0.0), 30))
    assert small is not None and not small.moved and small.dx == pytest.approx(2.0, abs=0.6)
    frame = camera(with_coins(table(), 6), 15.0, 0.0)
    cv2.rectangle(frame, (0, 0), (200, 160), (150, 160, 190), -1)  # a hand over one corner
    move = view.compare(exposure(frame, 31))
    assert move is not None and move.moved and move.dx == pytest.approx(15.0, abs=0.6)


def test_another_light_is_not_taken_for_a_move(view: SetupView) -> None:
    cups = with_coins(table(), 7)
    for gain, cast in ((0.5, (1.0, 1.0, 1.0)), (1.1, (0.82, 1.0, 1.18))):  # the lamp dimmed; warmer and brighter
        lit = np.clip(cups.astype(np.float32) * gain * np.array(cast, np.float32), 0, 255).astype(np.uint8)
        still = view.compare(exposure(lit, 40))
        assert still is not None and not still.moved
        knocked = view.compare(exposure(camera(lit, dx=10.0), 41))
        assert knocked is not None and knocked.moved and knocked.dx == pytest.approx(10.0, abs=0.6)


def test_nothing_is_told_without_surroundings_to_tell_by() -> None:
    plain = np.full((H, W, 3), 128, np.uint8)
    blank = SetupView(plain, ROI)
    assert blank.features == 0 and not blank.recognisable
    assert blank.compare(with_coins(plain, 1)) is None
    view = SetupView(table(), ROI)
    assert view.compare(np.full((H, W, 3), 90, np.uint8)) is None  # the surroundings covered
    assert view.compare(table()[:400]) is None  # another size is a problem of its own
    # without a cup region the whole view is used, and the coins are features that are not found again
    whole = SetupView(table(), None)
    move = whole.compare(exposure(camera(with_coins(table(), 2), 0.0, 8.0), 3))
    assert move is not None and move.moved and move.dy == pytest.approx(8.0, abs=0.6)


def test_settings_and_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="work_side"):
        MovementSettings(work_side=10)
    with pytest.raises(ValueError, match="tolerance"):
        MovementSettings(tolerance_px=0)
    with pytest.raises(ValueError, match="8-bit"):
        SetupView(np.zeros((10, 10), np.float32))


def test_the_words_say_what_to_do() -> None:
    move = CameraMove(dx=-3.2, dy=14.0, scale=0.98, rotation_deg=-1.2, rim_shift_px=15.0, matches=40, moved=True)
    assert move.describe() == "3 px left and 14 px down, 2% farther, turned 1° anticlockwise"
    still = CameraMove(dx=0.2, dy=0.1, scale=1.0, rotation_deg=0.0, rim_shift_px=0.3, matches=40, moved=False)
    assert still.describe() == "0.3 px at the rim" and still.problem() == ""
