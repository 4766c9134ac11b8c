"""Sign-in: an operator's name and PIN checked against the hashed PIN in the verdict log, with a role required."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import QDialogButtonBox

from db.records import OperatorInfo
from db.spool import UNREACHABLE_ERRORS
from station.views.login import LoginDialog

SUPERVISOR = "supervisor"
OPERATOR = "operator"
FREE_ATTEMPTS = 3
"""Wrong PINs in a row before each further one locks the dialog for a while."""
MAX_LOCK_S = 60
"""The longest wait: the lock doubles from 1 s with each refusal after :data:`FREE_ATTEMPTS`, up to this."""


class SignInThrottle:
    """Refused sign-ins in a row (wrong PINs only, see :attr:`SignIn.wrong_pin`), kept for as long as the process
    runs: a cancelled dialog and a new one go on where the last one stopped, so the lock cannot be side-stepped by
    asking again.

    After :data:`FREE_ATTEMPTS` refusals in a row, each further one locks sign-in for 1, 2, 4 ... seconds (at most
    :data:`MAX_LOCK_S`); a sign-in that is let through starts the count again.
    """

    def __init__(self) -> None:
        self.failures = 0
        self._until = 0.0  # time.monotonic() before which no attempt is checked

    def wait_s(self) -> float:
        """Seconds until the next attempt is checked (0: now)."""
        return max(0.0, self._until - time.monotonic())

    def refused(self) -> int:
        """Count a refusal; the whole seconds the next attempt must wait (0: none)."""
        self.failures += 1
        if self.failures <= FREE_ATTEMPTS:
            return 0
        wait_s = min(MAX_LOCK_S, 2 ** (self.failures - FREE_ATTEMPTS - 1))
        self._until = time.monotonic() + wait_s
        return wait_s

    def admitted(self) -> None:
        """A sign-in was let through: the count starts again."""
        self.failures = 0
        self._until = 0.0


class OperatorDirectory(Protocol):
    """Checks PINs (``db.repository.VerdictRepository`` fits)."""

    def verify_operator(self, name: str, pin: str) -> OperatorInfo | None:
        """The operator when the PIN is right and the operator active, else ``None``."""
        ...


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the operator when allowed, else ``None`` and the reason in plain words.

    ``wrong_pin`` is set only when a name and PIN were checked and did not match: the one refusal that counts toward
    the sign-in lock. A database that cannot be reached, or a field left empty, says nothing about the PIN, and
    counting it would lock out the right PIN tried again and again during an outage.
    """

    operator: OperatorInfo | None
    message: str
    wrong_pin: bool = False

    @property
    def allowed(self) -> bool:
        """Whether the person may go on."""
        return self.operator is not None


def sign_in(directory: OperatorDirectory, name: str, pin: str, *, role: str | None = None) -> SignIn:
    """Check ``name`` and ``pin``; with ``role = "supervisor"`` an operator's correct PIN is still refused.

    The message never says whether the name or the PIN was wrong. A database that cannot be reached refuses with a
    message saying so (a station's :class:`db.signin_cache.SignInDirectory` answers from its cache instead); only a
    name and PIN checked and not matching is marked :attr:`SignIn.wrong_pin`.
    """
    name = name.strip()
    if not name or not pin:
        return SignIn(None, "Enter your name and PIN.")
    try:
        info = directory.verify_operator(name, pin)
    except UNREACHABLE_ERRORS:
        return SignIn(None, "The database cannot be reached: try again once it is back.")
    if info is None:
        if getattr(directory, "offline", False):  # a station's cache answered (db.signin_cache.SignInDirectory)
            return SignIn(
                None,
                "Name or PIN not recognised. The database is away: until it is back, only people who signed in "
                "at this station before can sign in.",
                wrong_pin=True,
            )
        return SignIn(None, "Name or PIN not recognised.", wrong_pin=True)
    if role == SUPERVISOR and info.role != SUPERVISOR:
        return SignIn(None, f"{info.name} is signed up as {info.role}; only a supervisor may review and relabel.")
    return SignIn(info, f"Signed in as {info.name} ({info.role}).")


class LoginController(QObject):
    """Checks a :class:`~station.views.login.LoginDialog`'s entry on OK; accepts the dialog only when allowed.

    Args:
        dialog: the sign-in dialog.
        directory: checks PINs.
        role: the role required (``"supervisor"`` for the review window), ``None`` for any.
        throttle: the refusals so far, shared by every sign-in dialog of the process.

    After :data:`FREE_ATTEMPTS` wrong PINs in a row, each further one locks OK for 1, 2, 4 ... seconds (at most
    :data:`MAX_LOCK_S`), so a PIN cannot be guessed by trying them all at the keyboard (a four-digit PIN would
    take days instead of minutes); a dialog opened while the lock holds starts locked. Only a name and PIN checked
    and not matching counts (:attr:`SignIn.wrong_pin`): a refusal because the database cannot be reached, a field
    was left empty, the role is not the one required, or the check failed leaves the count as it was, so a
    supervisor retrying the right PIN through an outage is not locked out once the database is back.

    The PIN is checked off the GUI thread (Qt's thread pool): a site database that is away takes its connect
    timeout to say so before the station's sign-in cache answers, and meanwhile the dialog says "Checking…" and
    takes no second attempt, instead of freezing.

    Signals:
        refused(str): an attempt was refused; the reason.
        unlocked(): the wait after a refusal is over.
    """

    refused = Signal(str)
    unlocked = Signal()
    _checked = Signal(object)  # a SignIn, or the exception the check raised (from the pool's thread)

    def __init__(
        self, dialog: LoginDialog, directory: OperatorDirectory, *, throttle: SignInThrottle, role: str | None = None
    ) -> None:
        super().__init__()
        self.dialog = dialog
        self._directory = directory
        self._role = role
        self._throttle = throttle
        self.result: SignIn | None = None
        self._lock = QTimer(self)
        self._lock.setSingleShot(True)
        self._lock.timeout.connect(self._unlock)
        self.checking = False
        self._checked.connect(self._answered)
        dialog.buttons.accepted.connect(self.attempt)
        wait_s = throttle.wait_s()
        if wait_s > 0:  # an earlier dialog's refusals still hold
            self._ok_button(False)
            self._lock.start(max(1, round(wait_s * 1000)))
            dialog.message.setText(f"Too many tries: wait {math.ceil(wait_s)} s.")

    @property
    def failures(self) -> int:
        """Wrong PINs in a row, this dialog's and those before it in the process."""
        return self._throttle.failures

    @property
    def locked(self) -> bool:
        """Whether OK waits after too many refusals."""
        return self._lock.isActive()

    @Slot()
    def attempt(self) -> None:
        """Check the entered name and PIN off the GUI thread; then accept the dialog, or say why not and clear the
        PIN."""
        if self.locked or self.checking:
            return
        directory, role = self._directory, self._role
        name, pin = self.dialog.name_edit.text(), self.dialog.pin_edit.text()
        answer = self._checked

        def check() -> None:
            try:
                outcome: object = sign_in(directory, name, pin, role=role)
            except Exception as err:  # said in the dialog
                outcome = err
            with contextlib.suppress(RuntimeError):  # the dialog and its controller are gone: nobody to tell
                answer.emit(outcome)

        self.checking = True
        self._ok_button(False)
        self.dialog.message.setText("Checking…")
        QThreadPool.globalInstance().start(check)

    @Slot(object)
    def _answered(self, outcome: object) -> None:
        self.checking = False
        self._ok_button(True)
        if not isinstance(outcome, SignIn):
            message = f"The PIN could not be checked: {outcome.__class__.__name__}: {outcome}"
            self.dialog.message.setText(message)
            self.refused.emit(message)
            return
        self.result = outcome
        if self.result.allowed:
            self._throttle.admitted()
            self.dialog.accept()
            return
        message = self.result.message
        wait_s = self._throttle.refused() if self.result.wrong_pin else 0
        if wait_s:
            message = f"{message} Too many tries: wait {wait_s} s."
            self._ok_button(False)
            self._lock.start(wait_s * 1000)
        self.dialog.message.setText(message)
        self.dialog.pin_edit.clear()
        self.refused.emit(message)

    @Slot()
    def _unlock(self) -> None:
        self._ok_button(True)
        self.dialog.message.setText("Try again.")
        self.unlocked.emit()

    def _ok_button(self, enabled: bool) -> None:
        button = self.dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if button is not None:
            button.setEnabled(enabled)

    @property
    def operator(self) -> OperatorInfo | None:
        """The signed-in operator once the dialog was accepted."""
        return self.result.operator if self.result is not None else None
