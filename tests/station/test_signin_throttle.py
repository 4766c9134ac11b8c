"""The sign-in lock kept in the station home (station.signin_throttle): a new process, or a new throttle over the same
home, goes on where the last one stopped; a damaged file neither crashes the sign-in nor locks it for good."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from pytestqt.qtbot import QtBot

from station.app import sign_in_dialog
from station.controllers.auth import FREE_ATTEMPTS, MAX_LOCK_S, LoginController
from station.controllers.auth import SUPERVISOR as SUPERVISOR_ROLE
from station.signin_throttle import THROTTLE_FILENAME, HomeSignInThrottle
from station.views.login import LoginDialog
from tests.station.conftest import Database
from tests.station.sign_in_steps import refused_pin, reopened_locked, supervisor_sign_in

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A wall clock that moves only when told."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_second_throttle_over_the_same_home_is_still_locked(tmp_path: Path) -> None:
    """Each ``cupcheck review`` process makes its own throttle; the second must go on where the first stopped."""
    clock = Clock()
    first = HomeSignInThrottle(tmp_path, clock=clock)
    assert [first.refused() for _ in range(FREE_ATTEMPTS + 1)] == [0] * FREE_ATTEMPTS + [1]

    second = HomeSignInThrottle(tmp_path, clock=clock)  # the window cancelled and started again at once
    assert second.failures == FREE_ATTEMPTS + 1 and second.wait_s() == 1.0
    assert second.refused() == 2  # the wait goes on doubling

    clock.now += timedelta(seconds=5)
    third = HomeSignInThrottle(tmp_path, clock=clock)
    assert third.wait_s() == 0.0 and third.failures == FREE_ATTEMPTS + 2  # the lock is over, the count is not
    assert third.refused() == 4
    third.admitted()
    assert not (tmp_path / THROTTLE_FILENAME).exists()
    fourth = HomeSignInThrottle(tmp_path, clock=clock)
    assert (fourth.failures, fourth.wait_s()) == (0, 0.0)


def test_a_new_dialog_over_the_same_home_starts_locked(qtbot: QtBot, database: Database) -> None:
    """As two ``cupcheck review`` processes: each dialog gets a throttle of its own, read from the home."""
    clock = Clock()

    def dialog_and_login() -> tuple[LoginDialog, LoginController]:
        return supervisor_sign_in(qtbot, database.repository, HomeSignInThrottle(database.home, clock=clock))

    second, second_login = reopened_locked(qtbot, dialog_and_login)
    with qtbot.waitSignal(second_login.unlocked, timeout=3000):
        pass
    clock.now += timedelta(seconds=1)
    assert refused_pin(qtbot, second, second_login).endswith("wait 2 s.")


def test_the_review_sign_in_reads_the_lock_from_the_home(qtbot: QtBot, database: Database) -> None:
    """``sign_in_dialog(..., home=)``, as ``cupcheck review`` calls it: a lock earned by an earlier process holds."""
    earlier = HomeSignInThrottle(database.home)
    for _ in range(FREE_ATTEMPTS + 6):
        earlier.refused()  # the last one locks for 32 s
    seen: list[tuple[str, bool]] = []

    def look_and_cancel() -> None:
        shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, LoginDialog) and w.isVisible()]
        if not shown:
            QTimer.singleShot(10, look_and_cancel)
            return
        ok = shown[0].buttons.button(QDialogButtonBox.StandardButton.Ok)
        seen.append((shown[0].message.text(), ok.isEnabled()))
        shown[0].reject()

    QTimer.singleShot(0, look_and_cancel)
    assert (
        sign_in_dialog(database.repository, "cupcheck review: supervisor sign-in", SUPERVISOR_ROLE, home=database.home)
        is None
    )
    assert len(seen) == 1
    message, ok_enabled = seen[0]
    assert message.startswith("Too many tries: wait ") and not ok_enabled


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        b"\xff\xfe\x00",
        '{"failures": "many", "locked_until": null}',
        '{"failures": -3, "locked_until": null}',
        '{"failures": 9}',
        '{"failures": 9, "locked_until": "yesterday"}',
        '{"failures": 9, "locked_until": "2026-03-01T09:00:30"}',
        "[1, 2]",
        None,  # a folder where the file should be: cannot be read, written or removed
    ],
)
def test_a_damaged_lock_file_counts_as_no_refusals_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | bytes | None
) -> None:
    path = tmp_path / THROTTLE_FILENAME
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="station.signin_throttle"):
        throttle = HomeSignInThrottle(tmp_path, clock=Clock())
    assert (throttle.failures, throttle.wait_s()) == (0, 0.0)
    assert str(path) in caplog.text and "could not be read" in caplog.text
    assert [throttle.refused() for _ in range(FREE_ATTEMPTS + 1)][-1] == 1  # the dialog still counts
    throttle.admitted()
    assert (throttle.failures, throttle.wait_s()) == (0, 0.0)


def test_a_lock_further_ahead_than_the_longest_wait_is_cut_to_it(tmp_path: Path) -> None:
    """A clock set back, or a file written by hand, never locks sign-in for longer than :data:`MAX_LOCK_S`."""
    far = NOW + timedelta(days=365)
    (tmp_path / THROTTLE_FILENAME).write_text(json.dumps({"failures": 30, "locked_until": far.isoformat()}))
    clock = Clock()
    throttle = HomeSignInThrottle(tmp_path, clock=clock)
    assert throttle.wait_s() == MAX_LOCK_S
    clock.now += timedelta(seconds=MAX_LOCK_S)
    assert throttle.wait_s() == 0.0
