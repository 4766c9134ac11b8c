"""Which refused sign-ins count toward the sign-in lock (station.controllers.auth): only a name and PIN checked and
not matching. A database that cannot be reached, a field left empty, or an operator's right PIN at a supervisor
sign-in leave the count alone, so the right PIN tried through an outage is not locked out once the database is back.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from db.repository import VerdictRepository
from db.session import make_engine
from station.controllers.auth import FREE_ATTEMPTS, LoginController, sign_in
from station.controllers.auth import SUPERVISOR as SUPERVISOR_ROLE
from station.signin_throttle import THROTTLE_FILENAME, HomeSignInThrottle
from station.views.login import LoginDialog
from tests.station.conftest import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, Database
from tests.station.sign_in_steps import supervisor_sign_in

UNREACHABLE = "The database cannot be reached: try again once it is back."
TRIES = FREE_ATTEMPTS + 3
"""More tries than the free ones: the old count locked from the fourth."""


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then let go): a connection to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unreachable(tmp_path: Path) -> Iterator[VerdictRepository]:
    """A verdict log on a site PostgreSQL server that is away (nothing listens on its port)."""
    engine = make_engine(f"postgresql+psycopg://cupcheck@127.0.0.1:{_closed_port()}/cupcheck")
    yield VerdictRepository(engine, tmp_path / "away-home")
    engine.dispose()


def _try(qtbot: QtBot, dialog: LoginDialog, login: LoginController, name: str, pin: str) -> str:
    """Type ``name`` and ``pin`` and press OK; what the refusal says."""
    dialog.name_edit.setText(name)
    dialog.pin_edit.setText(pin)
    with qtbot.waitSignal(login.refused, timeout=30_000) as refused:
        dialog.buttons.accepted.emit()
    return str(refused.args[0])


def test_the_right_pin_tried_through_an_outage_is_not_locked_out(
    qtbot: QtBot, database: Database, unreachable: VerdictRepository
) -> None:
    """As ``cupcheck review`` retried during an outage: a new dialog each time, over the same station home."""
    for _ in range(TRIES):
        dialog, login = supervisor_sign_in(qtbot, unreachable, HomeSignInThrottle(database.home))
        assert not login.locked
        assert _try(qtbot, dialog, login, SUPERVISOR, SUPERVISOR_PIN) == UNREACHABLE
        assert not login.locked and login.failures == 0
        dialog.reject()
    assert not (database.home / THROTTLE_FILENAME).exists()

    # the database is back: the next dialog opens unlocked and lets the supervisor in
    dialog, login = supervisor_sign_in(qtbot, database.repository, HomeSignInThrottle(database.home))
    assert not login.locked and dialog.message.text() == ""
    dialog.pin_edit.setText(SUPERVISOR_PIN)
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.buttons.accepted.emit()
    assert login.operator is not None and login.operator.name == SUPERVISOR


@pytest.mark.parametrize(
    ("name", "pin", "says"),
    [
        (SUPERVISOR, "", "Enter your name and PIN."),
        ("   ", SUPERVISOR_PIN, "Enter your name and PIN."),
        (OPERATOR, OPERATOR_PIN, "olga is signed up as operator; only a supervisor may review and relabel."),
    ],
)
def test_a_refusal_that_checked_no_wrong_pin_leaves_the_count_alone(
    qtbot: QtBot, database: Database, name: str, pin: str, says: str
) -> None:
    throttle = HomeSignInThrottle(database.home)
    dialog, login = supervisor_sign_in(qtbot, database.repository, throttle)
    for _ in range(TRIES):
        assert _try(qtbot, dialog, login, name, pin) == says
        assert not login.locked and throttle.failures == 0
    assert not (database.home / THROTTLE_FILENAME).exists()
    assert dialog.result() != QDialog.DialogCode.Accepted


def test_only_a_checked_name_and_pin_that_do_not_match_is_a_wrong_pin(
    database: Database, unreachable: VerdictRepository
) -> None:
    assert sign_in(database.repository, SUPERVISOR, "000000").wrong_pin
    assert sign_in(database.repository, "nobody", "1234").wrong_pin
    assert not sign_in(unreachable, SUPERVISOR, SUPERVISOR_PIN).wrong_pin
    assert not sign_in(database.repository, SUPERVISOR, "").wrong_pin
    assert not sign_in(database.repository, OPERATOR, OPERATOR_PIN, role=SUPERVISOR_ROLE).wrong_pin
    assert not sign_in(database.repository, SUPERVISOR, SUPERVISOR_PIN).wrong_pin
