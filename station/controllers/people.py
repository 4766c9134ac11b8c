"""Drives the People dialog: a supervisor adds people, sets a forgotten PIN, changes a role, deactivates someone
who left, from the review window. Every change goes through :class:`db.operators.OperatorRoster`, so the same
rules hold as for ``cupcheck operators`` (the last supervisor stays, names unique whatever their case, PINs of four
characters or more) and the same history records it, with the supervisor's name and computer as who made it.
Changes are written and the table and a person's history read off the GUI thread
(:attr:`PeopleController.call_requested`, :attr:`PeopleController.read_requested`), so a database that is slow or
away never freezes the window.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QTableWidgetItem

from db.operators import OperatorError, UnknownOperatorError
from db.records import OperatorChangeEntry, OperatorInfo, OperatorSummary
from db.spool import UNREACHABLE_ERRORS
from station.controllers.overlay import FLAG_HEX
from station.views.people import PeopleView
from station.worker import BackgroundCall, LatestReads

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

    def add(
        self, name: str, role: str, pin: str, *, by: str | None = None, note: str = "", acting: str | None = None
    ) -> OperatorInfo:
        """Register a person."""
        ...

    def set_pin(
        self, name: str, pin: str, *, by: str | None = None, note: str = "", acting: str | None = None
    ) -> OperatorInfo:
        """Give a person a new PIN."""
        ...

    def set_role(
        self, name: str, role: str, *, by: str | None = None, note: str = "", acting: str | None = None
    ) -> OperatorInfo:
        """Make a person an operator or a supervisor."""
        ...

    def set_active(
        self, name: str, active: bool, *, by: str | None = None, note: str = "", acting: str | None = None
    ) -> OperatorInfo:
        """Give back or take away the right to sign in."""
        ...


@dataclass(frozen=True)
class PeopleChange:
    """A change on its way to the database: what to say once it is made, and whom to select then."""

    done: str
    select: str | None = None


@dataclass(frozen=True)
class PeopleRead:
    """A read of everyone in flight, to select ``select`` once it answers; ``ticket`` tells the newest."""

    ticket: int
    select: str | None


@dataclass(frozen=True)
class HistoryRead:
    """A read of one person's history in flight; ``ticket`` tells the newest."""

    ticket: int
    name: str


class PeopleController(QObject):
    """Fills a :class:`~station.views.people.PeopleView` and carries out its changes.

    Changes are handed out through :attr:`call_requested` (connect it to a
    :class:`~station.worker.BackgroundWorker` in its own thread, and its ``finished`` / ``failed`` to
    :meth:`background_done` / :meth:`background_failed`); without a connection nothing is written. The buttons
    wait while a change is on its way. Reads go through :attr:`read_requested` the same way (to
    :meth:`read_done` / :meth:`read_failed`), from the first :meth:`refresh`.

    Args:
        view: the dialog.
        directory: the database's operators.
        supervisor: who makes the changes (recorded as ``"<name> (review window on <computer>)"``; each change is
            refused once they are no longer an active supervisor).

    Signals:
        call_requested(BackgroundCall): a change to write off the GUI thread.
        read_requested(BackgroundCall): a read to make off the GUI thread.
        answered(str): a change was made, or refused (the words the dialog shows).
        shown(): the table, or the selected person's history, was read and drawn.
    """

    call_requested = Signal(object)
    read_requested = Signal(object)
    answered = Signal(str)
    shown = Signal()

    def __init__(self, view: PeopleView, directory: PeopleDirectory, *, supervisor: str) -> None:
        super().__init__()
        self.view = view
        self.directory = directory
        self.supervisor = supervisor
        self.by = f"{supervisor} (review window on {socket.gethostname()})"
        self.people: list[OperatorSummary] = []
        self.busy = False
        view.add_button.clicked.connect(self.add)
        view.pin_button.clicked.connect(self.new_pin)
        view.role_button.clicked.connect(self.toggle_role)
        view.active_button.clicked.connect(self.toggle_active)
        view.table.itemSelectionChanged.connect(self._selection_changed)
        self._reads = LatestReads(self.read_requested.emit, (PeopleRead, HistoryRead))

    @property
    def reading(self) -> bool:
        """Whether a read is on its way (its answer not drawn yet)."""
        return self._reads.busy

    def refresh(self, select: str | None = None) -> None:
        """Read everyone again and show them (selecting ``select``, else whoever is selected when they come)."""
        self._reads.ask(PeopleRead(self._reads.ticket(PeopleRead), select), self.directory.summaries)

    def _show_people(self, people: list[OperatorSummary], select: str | None) -> None:
        keep = select or (self.selected.name if self.selected is not None else None)
        self.people = people
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
        self.shown.emit()

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
        self._change(
            lambda: self.directory.add(name, role, pin, by=self.by, acting=self.supervisor),
            PeopleChange(f"{name.strip()} was added as {role}; they can sign in now.", name.strip()),
        )

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
        self._change(
            lambda: self.directory.set_pin(person.name, pin, by=self.by, acting=self.supervisor),
            PeopleChange(f"{person.name} has a new PIN."),
        )

    @Slot()
    def toggle_role(self) -> None:
        """Make the selected operator a supervisor, or the selected supervisor an operator."""
        person = self.selected
        if person is None:
            return
        role = "operator" if person.role == "supervisor" else "supervisor"
        self._change(
            lambda: self.directory.set_role(person.name, role, by=self.by, acting=self.supervisor),
            PeopleChange(f"{person.name} is {'a supervisor' if role == 'supervisor' else 'an operator'} now."),
        )

    @Slot()
    def toggle_active(self) -> None:
        """Deactivate the selected person, or give a deactivated one back the right to sign in."""
        person = self.selected
        if person is None:
            return
        self._change(
            lambda: self.directory.set_active(person.name, not person.active, by=self.by, acting=self.supervisor),
            PeopleChange(f"{person.name} {'can no longer sign in' if person.active else 'may sign in again'}."),
        )

    def _change(self, change: Callable[[], object], tag: PeopleChange) -> None:
        """Hand ``change`` to the database thread; the buttons wait for its answer."""
        if self.busy:
            return
        self.busy = True
        self._enable()
        self._say("Saving…")
        self.call_requested.emit(BackgroundCall(tag, change))

    @Slot(object, object)
    def background_done(self, tag: object, _result: object) -> None:
        """A change was made: say so and read everyone again (another call's answer is not this dialog's)."""
        if not isinstance(tag, PeopleChange):
            return
        self.busy = False
        self._say(tag.done)
        self._enable()
        self.refresh(select=tag.select)
        self.answered.emit(tag.done)

    @Slot(object, object)
    def background_failed(self, tag: object, error: object) -> None:
        """A change was refused (a rule of the roster) or not made (the database is away): say why."""
        if not isinstance(tag, PeopleChange):
            return
        self.busy = False
        if isinstance(error, OperatorError | UnknownOperatorError):
            text = str(error)
        elif isinstance(error, UNREACHABLE_ERRORS):
            text = f"The database cannot be reached: {str(error).splitlines()[0]}"
        else:
            text = f"Not saved: {error.__class__.__name__}: {error}"
        self._say(text, error=True)
        self._enable()
        self.answered.emit(text)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.view.message.setText(text)
        self.view.message.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;" if error else "color: #aab0b8;")

    def _enable(self) -> None:
        person = self.selected
        view = self.view
        view.add_button.setEnabled(not self.busy)
        for b in (view.pin_button, view.role_button, view.active_button):
            b.setEnabled(person is not None and not self.busy)

    def _selection_changed(self) -> None:
        person = self.selected
        view = self.view
        self._enable()
        view.history.clear()
        if person is None:
            return
        view.role_button.setText("Make operator" if person.role == "supervisor" else "Make supervisor")
        view.active_button.setText("Deactivate" if person.active else "Activate")
        directory, name = self.directory, person.name
        self._reads.ask(HistoryRead(self._reads.ticket(HistoryRead), name), lambda: directory.history(name))

    def _show_history(self, changes: list[OperatorChangeEntry]) -> None:
        view = self.view
        view.history.clear()
        for c in changes:
            words = CHANGE_WORDS.get(c.action, c.action).format(old=c.old_value, new=c.new_value)
            when = c.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            note = f" — {c.note}" if c.note else ""
            view.history.addItem(f"{when}  {words}  by {c.changed_by}{note}")
        self.shown.emit()

    # -- reads ------------------------------------------------------------------------------------------------

    @Slot(object, object)
    def read_done(self, tag: object, result: object) -> None:
        """A read returned: draw it, unless a later one has been asked for since."""
        if not self._reads.fresh(tag):
            return
        if isinstance(tag, PeopleRead):
            self._show_people(result, tag.select)  # type: ignore[arg-type]
        elif isinstance(tag, HistoryRead) and self.selected is not None and self.selected.name == tag.name:
            self._show_history(result)  # type: ignore[arg-type]

    @Slot(object, object)
    def read_failed(self, tag: object, error: object) -> None:
        """A read raised: a person gone meanwhile has no history to show; a database away is said."""
        if not self._reads.fresh(tag) or isinstance(error, UnknownOperatorError):
            return
        if isinstance(error, UNREACHABLE_ERRORS):
            self._say(f"The database cannot be reached: {str(error).splitlines()[0]}", error=True)
        else:
            self._say(f"Could not read the people: {error.__class__.__name__}: {error}", error=True)
