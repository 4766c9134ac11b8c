"""Steps shared by the sign-in tests: a supervisor's sign-in dialog over a throttle, a wrong PIN tried in it, and a
dialog locked by wrong PINs, cancelled and asked again."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from station.controllers.auth import FREE_ATTEMPTS, LoginController, OperatorDirectory, SignInThrottle
from station.controllers.auth import SUPERVISOR as SUPERVISOR_ROLE
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


def reopened_locked(
    qtbot: QtBot, open_dialog: Callable[[], tuple[LoginDialog, LoginController]]
) -> tuple[LoginDialog, LoginController]:
    """Open a dialog with ``open_dialog``, try wrong PINs until it locks for 1 s, cancel it and open another at once;
    return the second, checked to start locked where the first stopped."""
    first, first_login = open_dialog()
    for _ in range(FREE_ATTEMPTS):
        refused_pin(qtbot, first, first_login)
    assert refused_pin(qtbot, first, first_login).endswith("wait 1 s.")
    first.reject()  # Cancel, and ask again at once
    second, second_login = open_dialog()
    ok = second.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert second_login.locked and not ok.isEnabled() and second.message.text() == "Too many tries: wait 1 s."
    assert second_login.failures == FREE_ATTEMPTS + 1
    return second, second_login
