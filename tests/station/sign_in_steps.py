"""Steps shared by the sign-in tests: a supervisor's sign-in dialog over a throttle, and a wrong PIN tried in it."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from station.controllers.auth import SUPERVISOR as SUPERVISOR_ROLE
from station.controllers.auth import LoginController, OperatorDirectory, SignInThrottle
from station.views.login import LoginDialog
from tests.station.conftest import SUPERVISOR


def supervisor_sign_in(
    qtbot: QtBot, directory: OperatorDirectory, throttle: SignInThrottle
) -> tuple[LoginDialog, LoginController]:
    """A supervisor sign-in dialog with the supervisor's name typed in, counting refusals in ``throttle``."""
    dialog = LoginDialog("Supervisor sign-in")
    qtbot.addWidget(dialog)
    login = LoginController(dialog, directory, throttle=throttle, role=SUPERVISOR_ROLE)
    dialog.name_edit.setText(SUPERVISOR)
    return dialog, login


def refused_pin(qtbot: QtBot, dialog: LoginDialog, login: LoginController) -> str:
    """Try a wrong PIN; return what the refusal says."""
    dialog.pin_edit.setText("0000")
    with qtbot.waitSignal(login.refused) as refused:
        dialog.buttons.accepted.emit()
    return str(refused.args[0])
