"""The supervisor's window: ``ReviewWindow(repository, supervisor=...)`` wires the review view and controller to one
background thread for rulings and enrolments and another for reads. Everything it talks to is passed in
(:func:`station.app.run_review` builds the real parts)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QMainWindow, QWidget

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


SCAN_GAP_S = 0.04
"""Keys that follow one another closer than this come from a barcode scanner (it types an order number in a few
milliseconds a key); a person's keys lie about a tenth of a second apart or more."""

_HELD_MODIFIERS = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
"""The only modifiers of a key the window holds (a scanner types capitals with Shift); Ctrl, Alt and Meta keys are
the focused widget's (Ctrl+C copies)."""


@dataclass(frozen=True)
class _HeldKey:
    """A key press held back until it is known whether a burst follows it, and the widget it was typed into."""

    widget: QWidget
    key: int
    modifiers: Qt.KeyboardModifier
    text: str


def _types_text(widget: QWidget) -> bool:
    """Whether keys typed into ``widget`` are its text: a line edit (the find box, the note) or the type box."""
    return isinstance(widget, QLineEdit) or (isinstance(widget, QComboBox) and widget.isEditable())


class _KeyRouter(QObject):
    """Tells a supervisor's one-key rulings from a barcode scanner typing an order number into the window.

    A scanner types wherever the focus is, most often the queue, where a bare letter rules on the cup shown
    ('CD-1001' would confirm it, then mark a coin damaged). So a printable key typed outside a text box is held for
    :data:`SCAN_GAP_S`: a letter alone (no other key that close before or after it) is the ruling it names; keys
    that follow one another faster than a person types are a scan, and go to the find box with the Enter that ends
    it; a digit or sign alone goes there too (an order number typed by hand), except into the coin-number box,
    whose digits are its own. Text boxes take their keys as they come.

    Installed on the application (a key reaches the focused widget before the window), it looks at the key presses
    of ``window``'s own widgets only.
    """

    def __init__(
        self,
        window: QWidget,
        find_box: QLineEdit,
        rulings: Mapping[int, Callable[[], object]],
        *,
        gap_s: float = SCAN_GAP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._find = find_box
        self._rulings = dict(rulings)
        self._gap = gap_s
        self.clock = clock
        """What key times are read from (seconds): how close keys follow one another tells a scan from a hand."""
        self._held: _HeldKey | None = None  # a key pressed alone so far
        self._scanning = False  # the keys since the last pause are a scan: they go to the find box
        self._last = -float("inf")  # when the last key was held or sent on as part of a scan
        self._replaying = False  # a key this router sends itself is not looked at again
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(max(1, round(gap_s * 1000)))
        self._pause.timeout.connect(self._paused)

    @property
    def holding(self) -> bool:
        """Whether a key waits to be judged: a ruling pressed alone is made :data:`SCAN_GAP_S` after its key."""
        return self._held is not None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Hold, pass on or route one key press (see the class)."""
        if self._replaying or event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self._window or _types_text(watched):
            return False
        if watched.focusPolicy() == Qt.FocusPolicy.NoFocus:
            return False  # a key a text box did not take, passed on to the boxes around it
        if event.modifiers() & ~_HELD_MODIFIERS:
            return False
        key, text = _HeldKey(watched, event.key(), event.modifiers(), event.text()), event.text()
        now = self.clock()
        if now - self._last < self._gap and (self._held is not None or self._scanning):  # hard on another's heels
            self._last = now
            self._scan(key)
            return True
        self._paused()  # the key held before this one was pressed alone
        if not text or not text.isprintable() or text.isspace():
            return False  # Enter, arrows, Space, F-keys: the widget's
        self._last = now
        self._held = key
        self._pause.start()
        return True

    def _scan(self, key: _HeldKey) -> None:
        """Type ``key`` into the find box, after the key held before it when it is the second of a scan (a new
        entry then replaces the box's last one)."""
        if not self._scanning:
            self._start_entry()
            self._scanning = True
        held, self._held = self._held, None
        for k in (held, key):
            if k is not None:
                self._send(self._find, k)
        self._pause.start()

    def _start_entry(self) -> None:
        """Empty the find box for a new order number (its queue stays listed until Enter) and give it the focus."""
        self._find.blockSignals(True)
        self._find.clear()
        self._find.blockSignals(False)
        self._find.setFocus()

    @Slot()
    def _paused(self) -> None:
        """No key followed within the gap: a scan is over, and a key held alone is judged."""
        self._pause.stop()
        self._scanning = False
        held, self._held = self._held, None
        if held is not None:
            self._alone(held)

    def _alone(self, k: _HeldKey) -> None:
        """One key pressed by hand: a letter rules (or does what its widget does with it), a digit is the coin
        number's in its box, anything else starts an order number in the find box."""
        ruling = self._rulings.get(k.key)
        if k.text.isalpha():
            if ruling is not None:
                ruling()
            else:
                self._send(k.widget, k)
        elif k.text.isdigit() and isinstance(k.widget, QAbstractSpinBox):
            self._send(k.widget, k)
        else:
            self._start_entry()
            self._send(self._find, k)

    def _send(self, widget: QWidget, k: _HeldKey) -> None:
        """Press and release ``k`` on ``widget``, unseen by this router."""
        self._replaying = True
        try:
            for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                QApplication.sendEvent(widget, QKeyEvent(kind, k.key, k.modifiers, k.text))
        finally:
            self._replaying = False


class ReviewWindow(QMainWindow):
    """The supervisor window: review queue, evidence, one-key rulings (C, T, N, D, R, W, Y), and an order number
    scanned anywhere in it found in the find box (:class:`_KeyRouter`).

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

    Attributes:
        keys: tells the one-letter rulings from a scanner's keys (:attr:`_KeyRouter.holding`: a key is being judged).

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
        # the one-letter keys: held by the router until it knows they were pressed alone, not typed by a scanner
        letters: dict[int, Callable[[], object]] = {
            Qt.Key.Key_C: self.controller.confirm,
            Qt.Key.Key_T: self.controller.correct,
            Qt.Key.Key_N: self.controller.not_a_coin,
            Qt.Key.Key_D: self.controller.damaged,
            Qt.Key.Key_R: self.controller.coin_right,
            Qt.Key.Key_W: self.controller.wrong_side,
            Qt.Key.Key_Y: self.controller.coin_type,
            Qt.Key.Key_E: self.controller.enrol,
            Qt.Key.Key_B: self.controller.toggle_before,
            Qt.Key.Key_P: self.show_people,
        }
        self.keys = _KeyRouter(self, self.view.order_find, letters)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.keys)
        self._reload_key = QShortcut(QKeySequence(Qt.Key.Key_F5), self)
        self._reload_key.activated.connect(self.reload)
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
        self.view.queue.setFocus()  # C, T, N and D rule from the start; a scan goes to the find box

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
