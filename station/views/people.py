"""The People dialog's layout (review window, P): who may sign in, with buttons to add a person, set a PIN, change
a role and deactivate, and the selected person's history. Layout only: :mod:`station.controllers.people` drives it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from station.views.operator import STYLE, _section

COLUMNS = ("Name", "Role", "Sign-in", "Cups", "Last check")


class PeopleView(QDialog):
    """Every widget of the People dialog.

    Attributes:
        table: one row per person (:data:`COLUMNS`).
        add_button, pin_button, role_button, active_button: the changes (role and active name what they do for the
            selected person).
        history: the selected person's changes, oldest first.
        message: the answer to the last change, or why it was refused.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("cupcheck — people")
        self.setStyleSheet(STYLE)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.add_button = QPushButton("Add a person…")
        self.pin_button = QPushButton("New PIN…")
        self.role_button = QPushButton("Make supervisor")
        self.active_button = QPushButton("Deactivate")
        for b in (self.pin_button, self.role_button, self.active_button):
            b.setObjectName("secondary")
        self.history = QListWidget()
        self.history.setMaximumHeight(140)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        actions = QGridLayout()
        actions.addWidget(self.add_button, 0, 0)
        actions.addWidget(self.pin_button, 0, 1)
        actions.addWidget(self.role_button, 0, 2)
        actions.addWidget(self.active_button, 0, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(_section("Who may sign in (every station of this database)"))
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addWidget(self.message)
        layout.addWidget(_section("History of the selected person"))
        layout.addWidget(self.history)
        layout.addWidget(buttons)
        self.resize(760, 560)

    def ask_person(self) -> tuple[str, str, str, str] | None:
        """Ask for a new person's name, role and PIN (twice); ``None`` when cancelled."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Add a person")
        name, role = QLineEdit(), QComboBox()
        role.addItems(["operator", "supervisor"])
        pin, again = _pin_edit(), _pin_edit()
        form = QFormLayout(dialog)
        form.addRow("Name", name)
        form.addRow("Role", role)
        form.addRow("PIN", pin)
        form.addRow("PIN again", again)
        _ok_cancel(dialog, form)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return name.text(), role.currentText(), pin.text(), again.text()

    def ask_pin(self, name: str) -> tuple[str, str] | None:
        """Ask for ``name``'s new PIN (twice); ``None`` when cancelled."""
        dialog = QDialog(self)
        dialog.setWindowTitle(f"New PIN for {name}")
        pin, again = _pin_edit(), _pin_edit()
        form = QFormLayout(dialog)
        form.addRow("PIN", pin)
        form.addRow("PIN again", again)
        _ok_cancel(dialog, form)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return pin.text(), again.text()


def _pin_edit() -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setInputMethodHints(Qt.InputMethodHint.ImhDigitsOnly)
    return edit


def _ok_cancel(dialog: QDialog, form: QFormLayout) -> None:
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)
