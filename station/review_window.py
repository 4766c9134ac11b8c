"""The supervisor's window: ``ReviewWindow(repository, supervisor=...)`` wires the review view and controller to one
background thread for rulings and enrolments and another for reads. Everything it talks to is passed in
(:func:`station.app.run_review` builds the real parts)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, Slot
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QWidget

from db.records import OperatorInfo
from station.controllers.auth import SUPERVISOR
from station.controllers.catalog import TypeCatalog
from station.controllers.enrol import Enrolment
from station.controllers.people import PeopleController, PeopleDirectory
from station.controllers.review import ReviewController, ReviewRepository
from station.views.people import PeopleView
from station.views.review import ReviewView
from station.views.widgets import WINDOW_SIZE, fit_to_screen
from station.worker import BackgroundThread

if TYPE_CHECKING:
    from models.registry import SuspectLabels

_log = logging.getLogger(__name__)


class _LettersRule(QObject):
    """Lets the one-letter rulings through the coin-number box, which would otherwise take a letter as text and
    drop it: a supervisor types the coin's number, then N, D, R, W or Y, without touching the mouse."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) and event.text().isalpha():
            event.ignore()  # not the box's: the window's shortcut takes it
            return True
        return False


class ReviewWindow(QMainWindow):
    """The supervisor window: review queue, evidence, one-key rulings (C, T, N, D).

    Args:
        repository: the verdict log.
        supervisor: the signed-in person; refused unless an active supervisor.
        catalog: the enrolled types, for corrections.
        station: only this station's cups, ``None`` for all.
        enrolment: enrol new types from this window (``None``: not offered).
        model: lines about the verdict model in force (see :mod:`station.controllers.model_info`).
        audit_share: the share of PASSes drawn for a supervisor to check.
        suspects: the rulings cleanlab suspects at the newest retrain, shown first for a second look.
        people: who may sign in, for the People dialog (P); ``None``: not offered.
        follow: reads the model in force and its suspected rulings again (F5 then shows a model promoted or rolled
            back since the window opened); ``None``: ``model`` and ``suspects`` stay.

    Raises:
        PermissionError: ``supervisor`` is not an active supervisor.
    """

    def __init__(
        self,
        repository: ReviewRepository,
        *,
        supervisor: OperatorInfo,
        catalog: TypeCatalog,
        station: str | None = None,
        enrolment: Enrolment | None = None,
        model: Sequence[str] = (),
        audit_share: float = 0.0,
        suspects: SuspectLabels | None = None,
        people: PeopleDirectory | None = None,
        follow: Callable[[], tuple[Sequence[str], SuspectLabels | None]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        if supervisor.role != SUPERVISOR or not supervisor.active:
            raise PermissionError(f"{supervisor.name} is not an active supervisor")
        super().__init__(parent)
        self.setWindowTitle(f"cupcheck review — {supervisor.name}")
        self.view = ReviewView()
        self.setCentralWidget(self.view)
        self.controller = ReviewController(
            self.view,
            repository,
            supervisor=supervisor.name,
            catalog=catalog,
            station=station,
            enrolment=enrolment,
            audit_share=audit_share,
            suspects=suspects,
        )
        self.view.model_label.setText("\n".join(model))
        self._db = BackgroundThread()  # writes: rulings, People changes, enrolments
        self._reads = BackgroundThread("cupcheck-reads")  # reads, never held up by a long enrolment
        self._connect(self.controller)
        self._keys: list[QShortcut] = []
        for key, slot in (
            (Qt.Key.Key_C, self.controller.confirm),
            (Qt.Key.Key_T, self.controller.correct),
            (Qt.Key.Key_N, self.controller.not_a_coin),
            (Qt.Key.Key_D, self.controller.damaged),
            (Qt.Key.Key_R, self.controller.coin_right),
            (Qt.Key.Key_W, self.controller.wrong_side),
            (Qt.Key.Key_Y, self.controller.coin_type),
            (Qt.Key.Key_E, self.controller.enrol),
            (Qt.Key.Key_B, self.controller.toggle_before),
            (Qt.Key.Key_F5, self.reload),
            (Qt.Key.Key_P, self.show_people),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.activated.connect(slot)
            self._keys.append(shortcut)
        self._letters = _LettersRule(self)
        self.view.coin_spin.installEventFilter(self._letters)
        self._supervisor = supervisor.name
        self._people = people
        self._follow = follow
        self.view.people_button.setVisible(people is not None)
        self.view.people_button.clicked.connect(self.show_people)
        self._close_when_enrolled = False
        self.controller.enrol_ended.connect(self._enrol_ended)
        # Enter in the type box rules as T does (a letter typed there is part of the type's name)
        type_edit = self.view.type_combo.lineEdit()
        if type_edit is not None:  # the box is editable (views/review.py)
            type_edit.returnPressed.connect(self.controller.correct)
        fit_to_screen(self, WINDOW_SIZE)
        self.controller.refresh()
        self.view.queue.setFocus()  # C, T, N and D rule from the start; the find box takes the focus when clicked

    @Slot()
    def reload(self) -> None:
        """F5: the model in force and its suspected rulings (when followed), the enrolled types and the queue."""
        self.controller.reload(self._follow)

    def people_dialog(self) -> tuple[PeopleView, PeopleController] | None:
        """The People dialog, filled and not shown yet (``None`` when not offered)."""
        if self._people is None:
            return None
        view = PeopleView(self)
        controller = PeopleController(view, self._people, supervisor=self._supervisor)
        self._connect(controller)
        controller.refresh()
        return view, controller

    def _connect(self, controller: ReviewController | PeopleController) -> None:
        """Hand ``controller``'s writes to the database thread and its reads to the reading one, and their answers
        back to it."""
        controller.call_requested.connect(self._db.worker.call)
        self._db.worker.finished.connect(controller.background_done)
        self._db.worker.failed.connect(controller.background_failed)
        controller.read_requested.connect(self._reads.worker.call)
        self._reads.worker.finished.connect(controller.read_done)
        self._reads.worker.failed.connect(controller.read_failed)

    @Slot()
    def show_people(self) -> None:
        """Open the People dialog (P) until it is closed."""
        dialog = self.people_dialog()
        if dialog is not None:
            dialog[0].exec()

    def shutdown(self) -> None:
        """Let a ruling and a read in flight finish, then stop the database threads (idempotent)."""
        self._db.stop()
        self._reads.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the database threads before the window goes; during an enrolment, close once it is done (its thread
        cannot be stopped mid-way, and an enrolment half made would be lost)."""
        folder = self.controller.enrolling
        if folder is not None:
            event.ignore()
            self._close_when_enrolled = True
            self.view.status.showMessage(f"Enrolling the types of {folder}… the window closes once it is done.")
            return
        self.shutdown()
        super().closeEvent(event)

    @Slot()
    def _enrol_ended(self) -> None:
        if self._close_when_enrolled:
            self.close()
