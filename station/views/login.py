"""The sign-in dialog's layout: name, PIN (hidden), a message line, OK / Cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from station.views.operator import STYLE


class LoginDialog(QDialog):
    """Asks for a name and a PIN; the caller checks them (see :mod:`station.controllers.auth`).

    Attributes:
        name_edit: the operator's name.
        pin_edit: the PIN, shown as dots.
        message: why the last attempt was refused.
    """

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setStyleSheet(STYLE)
        self.name_edit = QLineEdit()
        self.pin_edit = QLineEdit()
        self.pin_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.message = QLabel("")
        self.message.setStyleSheet("color: #c77800; font-weight: bold;")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.addRow("Name", self.name_edit)
        form.addRow("PIN", self.pin_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(title))
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.buttons.rejected.connect(self.reject)
        self.setMinimumWidth(380)
