"""Drives the People dialog: a supervisor adds people, sets a forgotten PIN, changes a role, deactivates someone
who left, from the review window. Every change goes through :class:`db.operators.OperatorRoster`, so the same
rules hold as for ``cupcheck operators`` (the last supervisor stays, names unique whatever their case, PINs of four
characters or more) and the same history records it, with the supervisor's name and computer as who made it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QTableWidgetItem

from db.operators import OperatorError, UnknownOperatorError
from db.records import OperatorChangeEntry, OperatorInfo, OperatorSummary
from db.spool import UNREACHABLE_ERRORS
from station.controllers.overlay import FLAG_HEX
from station.views.people import PeopleView

CHANGE_WORDS = {
    "added": "added as {new}",
    "pin_changed": "new PIN",
    "role_changed": "role {old} → {new}",
    "deactivated": "deactivated",
    "activated": "activated",
}


class PeopleDirectory(Protocol):
    """The operators of the database (:class:`db.operators.OperatorRoster` fits)."""

    def summaries(self) -> list[OperatorSummary]:
        """Everyone, by name."""
        ...

    def history(self, name: str | None = None) -> list[OperatorChangeEntry]:
        """The changes, oldest first."""
        ...

    def add(self, name: str, role: str, pin: str, *, by: str | None = None, note: str = "") -> OperatorInfo:
        """Register a person."""
        ...

    def set_pin(self, name: str, pin: str, *, by: str | None = None, note: str = "") -> OperatorInfo:
        """Give a person a new PIN."""
        ...

    def set_role(self, name: str, role: str, *, by: str | None = None, note: str = "") -> OperatorInfo:
        """Make a person an operator or a supervisor."""
        ...

    def set_active(self, name: str, active: bool, *, by: str | None = None, note: str = "") -> OperatorInfo:
        """Give back or take away the right to sign in."""
        ...


class PeopleController(QObject):
    """Fills a :class:`~station.views.people.PeopleView` and carries out its changes.

    Args:
        view: the dialog.
        directory: the database's operators.
        supervisor: who makes the changes (recorded as ``"<name> (review window on <computer>)"``).
    """

    def __init__(self, view: PeopleView, directory: PeopleDirectory, *, supervisor: str) -> None:
        super().__init__()
        self.view = view
        self.directory = directory
        self.by = f"{supervisor} (review window on {socket.gethostname()})"
        self.people: list[OperatorSummary] = []
        view.add_button.clicked.connect(self.add)
        view.pin_button.clicked.connect(self.new_pin)
        view.role_button.clicked.connect(self.toggle_role)
        view.active_button.clicked.connect(self.toggle_active)
        view.table.itemSelectionChanged.connect(self._selection_changed)
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        """Read everyone again and show them (selecting ``select``, else whoever was selected)."""
        keep = select or (self.selected.name if self.selected is not None else None)
        try:
            self.people = self.directory.summaries()
        except UNREACHABLE_ERRORS as err:
            self._say(f"The database cannot be reached: {str(err).splitlines()[0]}", error=True)
            return
        table = self.view.table
        table.blockSignals(True)
        table.setRowCount(len(self.people))
        for row, p in enumerate(self.people):
            last = "—" if p.last_check is None else p.last_check.astimezone().strftime("%Y-%m-%d %H:%M")
            cells = (p.name, p.role, "active" if p.active else "deactivated", str(p.cups), last)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, col, item)
            if p.name == keep:
                table.selectRow(row)
        table.blockSignals(False)
        self._selection_changed()

    @property
    def selected(self) -> OperatorSummary | None:
        """The person selected in the table."""
        rows = self.view.table.selectionModel().selectedRows() if self.view.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.people):
            return None
        return self.people[rows[0].row()]

    def select(self, name: str) -> None:
        """Select ``name``'s row."""
        for row, p in enumerate(self.people):
            if p.name == name:
                self.view.table.selectRow(row)

    @Slot()
    def add(self) -> None:
        """Ask for a new person and register them."""
        answer = self.view.ask_person()
        if answer is None:
            return
        name, role, pin, again = answer
        if pin != again:
            self._say("The two PINs differ: nobody was added.", error=True)
            return
        if self._change(lambda: self.directory.add(name, role, pin, by=self.by)):
            self._say(f"{name.strip()} was added as {role}; they can sign in now.")
            self.refresh(select=name.strip())

    @Slot()
    def new_pin(self) -> None:
        """Ask for the selected person's new PIN and set it."""
        person = self.selected
        if person is None:
            return
        answer = self.view.ask_pin(person.name)
        if answer is None:
            return
        pin, again = answer
        if pin != again:
            self._say("The two PINs differ: the PIN was not changed.", error=True)
            return
        if self._change(lambda: self.directory.set_pin(person.name, pin, by=self.by)):
            self._say(f"{person.name} has a new PIN.")
            self.refresh()

    @Slot()
    def toggle_role(self) -> None:
        """Make the selected operator a supervisor, or the selected supervisor an operator."""
        person = self.selected
        if person is None:
            return
        role = "operator" if person.role == "supervisor" else "supervisor"
        if self._change(lambda: self.directory.set_role(person.name, role, by=self.by)):
            self._say(f"{person.name} is {'a supervisor' if role == 'supervisor' else 'an operator'} now.")
            self.refresh()

    @Slot()
    def toggle_active(self) -> None:
        """Deactivate the selected person, or give a deactivated one back the right to sign in."""
        person = self.selected
        if person is None:
            return
        if self._change(lambda: self.directory.set_active(person.name, not person.active, by=self.by)):
            self._say(f"{person.name} {'can no longer sign in' if person.active else 'may sign in again'}.")
            self.refresh()

    def _change(self, change: Callable[[], object]) -> bool:
        try:
            change()
        except (OperatorError, UnknownOperatorError) as err:
            self._say(str(err), error=True)
            return False
        except UNREACHABLE_ERRORS as err:
            self._say(f"The database cannot be reached: {str(err).splitlines()[0]}", error=True)
            return False
        return True

    def _say(self, text: str, *, error: bool = False) -> None:
        self.view.message.setText(text)
        self.view.message.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;" if error else "color: #aab0b8;")

    def _selection_changed(self) -> None:
        person = self.selected
        view = self.view
        for b in (view.pin_button, view.role_button, view.active_button):
            b.setEnabled(person is not None)
        view.history.clear()
        if person is None:
            return
        view.role_button.setText("Make operator" if person.role == "supervisor" else "Make supervisor")
        view.active_button.setText("Deactivate" if person.active else "Activate")
        try:
            changes = self.directory.history(person.name)
        except UnknownOperatorError:
            return
        except UNREACHABLE_ERRORS:
            return
        for c in changes:
            words = CHANGE_WORDS.get(c.action, c.action).format(old=c.old_value, new=c.new_value)
            when = c.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            note = f" — {c.note}" if c.note else ""
            view.history.addItem(f"{when}  {words}  by {c.changed_by}{note}")
