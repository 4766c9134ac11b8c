"""Sign-in: an operator's name and PIN checked against the hashed PIN in the verdict log, with a role required."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QObject, Signal, Slot

from db.records import OperatorInfo
from station.views.login import LoginDialog

SUPERVISOR = "supervisor"
OPERATOR = "operator"


class OperatorDirectory(Protocol):
    """Checks PINs (``db.repository.VerdictRepository`` fits)."""

    def verify_operator(self, name: str, pin: str) -> OperatorInfo | None:
        """The operator when the PIN is right and the operator active, else ``None``."""
        ...


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the operator when allowed, else ``None`` and the reason in plain words."""

    operator: OperatorInfo | None
    message: str

    @property
    def allowed(self) -> bool:
        """Whether the person may go on."""
        return self.operator is not None


def sign_in(directory: OperatorDirectory, name: str, pin: str, *, role: str | None = None) -> SignIn:
    """Check ``name`` and ``pin``; with ``role = "supervisor"`` an operator's correct PIN is still refused.

    The message never says whether the name or the PIN was wrong.
    """
    name = name.strip()
    if not name or not pin:
        return SignIn(None, "Enter your name and PIN.")
    info = directory.verify_operator(name, pin)
    if info is None:
        return SignIn(None, "Name or PIN not recognised.")
    if role == SUPERVISOR and info.role != SUPERVISOR:
        return SignIn(None, f"{info.name} is signed up as {info.role}; only a supervisor may review and relabel.")
    return SignIn(info, f"Signed in as {info.name} ({info.role}).")


class LoginController(QObject):
    """Checks a :class:`~station.views.login.LoginDialog`'s entry on OK; accepts the dialog only when allowed.

    Args:
        dialog: the sign-in dialog.
        directory: checks PINs.
        role: the role required (``"supervisor"`` for the review window), ``None`` for any.

    Signals:
        refused(str): an attempt was refused; the reason.
    """

    refused = Signal(str)

    def __init__(self, dialog: LoginDialog, directory: OperatorDirectory, *, role: str | None = None) -> None:
        super().__init__()
        self.dialog = dialog
        self._directory = directory
        self._role = role
        self.result: SignIn | None = None
        dialog.buttons.accepted.connect(self.attempt)

    @Slot()
    def attempt(self) -> None:
        """Check the entered name and PIN; accept the dialog, or say why not and clear the PIN."""
        self.result = sign_in(
            self._directory, self.dialog.name_edit.text(), self.dialog.pin_edit.text(), role=self._role
        )
        if self.result.allowed:
            self.dialog.accept()
            return
        self.dialog.message.setText(self.result.message)
        self.dialog.pin_edit.clear()
        self.refused.emit(self.result.message)

    @property
    def operator(self) -> OperatorInfo | None:
        """The signed-in operator once the dialog was accepted."""
        return self.result.operator if self.result is not None else None
