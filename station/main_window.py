"""The operator's window: ``MainWindow(pipeline, repository, source, config, operator=...)`` wires a camera pump (its
own thread) and an inference worker (its own thread) to the operator view and controller, and, when it follows what
is in force, a model follower. Everything it talks to is passed in (:mod:`station.app` builds the real parts)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QWidget

from db.records import AsideCup, OperatorInfo, OrderCheck
from db.spool import SpoolingRepository
from models.enroll_tray import look_at_tray
from station.camera import Clock, FrameSource
from station.config import StationConfig
from station.controllers.bench import CLEARED_FILE, BenchController, ClearedCups
from station.controllers.catalog import OrderBook, OrderLookup, TypeCatalog
from station.controllers.enrol_tray import TrayEnrolController, TrayEnrolment
from station.controllers.model_follow import InForce, ModelFollower, StationFeed
from station.controllers.operator import OperatorController
from station.controllers.order_history import OrderHistory
from station.controllers.overlay import FLAG_HEX
from station.controllers.preview import PumpThread, start_pump
from station.controllers.sound import Silent, SoundCue, SpokenCue
from station.controllers.stillness import StillnessGate
from station.review_window import SCAN_GAP_S
from station.views.enrol_tray import TrayEnrolView
from station.views.operator import OperatorView
from station.views.widgets import WINDOW_SIZE, fit_to_screen, free_area, wants_compact
from station.worker import VerdictSink, VerdictSource, WorkerThread, model_version, start_worker

if TYPE_CHECKING:
    pass

_log = logging.getLogger(__name__)

SPOOL_RETRY_S = 30.0
"""How often the window asks the worker to send journalled verdicts to the database."""
AWAY_AT_START = "Database: away since start-up, verdicts are journalled"
"""The status bar of a window whose database could not be reached when the station opened it, before any verdict."""

IDLE_CHECK_MS = 15_000
"""How often the window looks whether its operator has been idle long enough to be signed out."""


@dataclass(frozen=True)
class _SearchKey:
    """A key typed into the type search box, and the box as it was before it, to take the key back out should a
    scan turn out to have begun with it."""

    at: float
    text: str
    before: str
    cursor: int


class MainWindow(QMainWindow):
    """The operator window.

    Args:
        pipeline: judges cups (``run(frame, expected_type) -> Verdict``).
        repository: stores verdicts (``log_verdict`` / ``pending_count``; a spooling repository keeps them
            through a database outage).
        source: the camera.
        config: the station's configuration.
        operator: the signed-in operator's registered name.
        catalog: the enrolled types to choose from.
        orders: order numbers → types (default: none, types are chosen directly).
        orders_error: why ``orders.csv`` could not be read (the order box says so; ``""``: it was read).
        sound: the verdict's sound cue (default: spoken when ``config.sound``, else silent).
        clock: monotonic seconds for the preview's frame rate and the outlines' hold time.
        home: the station home: the operator can photograph the empty tray into it (``None``: no such button).
        follow: the feed of what is in force (model, gallery, camera set-up, orders) and what ``pipeline``,
            ``catalog`` and ``orders`` were loaded from: the window loads what is put in force later, and the worker
            judges the next cups with it (``None``: they stay).
        sign_in: asks the next person to sign in (the sign-in dialog) and returns who did, ``None`` when they
            cancelled. With it the window has a Sign out button and F2, and signs its operator out after
            ``config.sign_out_after_min`` minutes without a check; ``None`` (the demo): nobody signs in or out.
        aside: reads the cups put aside at this station with their rulings (:func:`aside_since`), listed under
            the preview with what to do with each (:mod:`station.controllers.bench`); ``None``: no bench.
        aside_photo: reads a bench cup's photograph by its store reference (``VerdictRepository.read_blob``), shown
            small beside it; ``None``: the bench lists no pictures.
        order_history: reads an order's checks at every station (``VerdictRepository.order_checks``): an order
            scanned again that passed before is named (:mod:`station.controllers.order_history`), a PASS still waiting
            in ``repository``'s journal too, and one that cannot be looked up is said to be; ``None``: not asked.
        tray_enrolment: a supervisor may enrol a new type from the tray (:mod:`station.controllers.enrol_tray`),
            with a model that detects coins; ``None``: no such button.
    """

    def __init__(
        self,
        pipeline: VerdictSource,
        repository: VerdictSink,
        source: FrameSource,
        config: StationConfig,
        *,
        operator: str,
        catalog: TypeCatalog,
        orders: OrderLookup | None = None,
        orders_error: str = "",
        sound: SoundCue | None = None,
        clock: Clock = time.monotonic,
        parent: QWidget | None = None,
        home: Path | None = None,
        follow: tuple[StationFeed, InForce] | None = None,
        sign_in: Callable[[], OperatorInfo | None] | None = None,
        aside: Callable[[], Sequence[AsideCup]] | None = None,
        aside_photo: Callable[[str], bytes] | None = None,
        order_history: Callable[[str], Sequence[OrderCheck]] | None = None,
        tray_enrolment: TrayEnrolment | None = None,
    ) -> None:
        super().__init__(parent)
        self.config = config
        self.setWindowTitle(f"cupcheck — {config.name}")
        self.view = OperatorView(compact=wants_compact(free_area(self)))  # a 1366×768 screen or smaller
        self.setCentralWidget(self.view)
        if sound is None:
            sound = SpokenCue(config.pass_word, config.flag_word) if config.sound else Silent()
        version = model_version(pipeline)
        self.controller = OperatorController(
            self.view,
            catalog,
            orders if orders is not None else OrderBook(),
            station=config.name,
            operator=operator,
            sound=sound,
            clock=clock,
            model_version=version,
            auto_check=StillnessGate(config.still_s, clock=clock) if config.auto_check else None,
            cup_region=None
            if config.cup_region is None
            else (config.cup_region.cx, config.cup_region.cy, config.cup_region.radius),
            home=home,
            camera_size=getattr(pipeline, "camera_size", None),
            sign_out_after_s=60 * config.sign_out_after_min if sign_in is not None else 0.0,
        )
        self.controller.show_orders_problem(orders_error)
        self.view.type_list.installEventFilter(self)  # a scan while a clicked type has the focus: see eventFilter
        self.view.type_filter.installEventFilter(self)  # a scan while the operator searches the types: the same
        self._key_clock = clock  # how close keys follow one another tells a scan from a person typing
        self._search_key: _SearchKey | None = None  # the last key a person typed into the type search, so far
        self._scan_at: float | None = None  # when the last key of a scan arriving at the type search came
        self._worker: WorkerThread = start_worker(pipeline, repository)
        worker = self._worker.worker
        self.controller.check_requested.connect(worker.check)
        self.controller.empty_tray_requested.connect(worker.take_empty_tray)
        worker.empty_tray_done.connect(self.controller.show_empty_tray)
        worker.empty_tray_done.connect(self._empty_tray_taken)
        worker.verdict_ready.connect(self.controller.show_verdict)
        worker.check_failed.connect(self.controller.show_failure)
        worker.nothing_seen.connect(self.controller.nothing_seen)
        worker.stored.connect(self.controller.show_store)
        worker.model_changed.connect(self.controller.show_model)
        self.controller.camera_look_requested.connect(worker.look_at_camera)
        worker.camera_seen.connect(self.controller.show_camera_move)
        self.follower: ModelFollower | None = None
        if follow is not None:
            self.follower = ModelFollower(*follow, clock=clock)
            self.follower.pipeline_loaded.connect(worker.use_pipeline)  # first: queued before any check of a new type
            self.follower.setup_loaded.connect(self.controller.use_setup)
            self.follower.problem.connect(self.controller.show_model_problem)
            self.follower.load_ended.connect(self._load_ended)
        self._close_when_loaded = False
        pending = _pending(repository)
        if pending:
            self.view.db_label.setText(f"Database: spooling, {pending} verdicts waiting")
        elif isinstance(repository, SpoolingRepository) and repository.away_at_start:
            self.view.db_label.setText(AWAY_AT_START)
            self.view.db_label.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;")
        self._flush = QTimer(self)  # journalled verdicts go to the database once it is back, checks or not
        self._flush.setInterval(round(SPOOL_RETRY_S * 1000))
        self._flush.timeout.connect(worker.flush)
        self._flush.start()

        self._pump: PumpThread = start_pump(source, config.camera.fps, clock=clock)
        pump = self._pump.pump
        pump.frame_ready.connect(self.controller.show_frame)
        pump.camera_lost.connect(self.controller.camera_lost)
        pump.camera_restored.connect(self.controller.camera_restored)
        pump.fps_measured.connect(self.controller.show_fps)

        self.order_history: OrderHistory | None = None
        if order_history is not None:  # an order scanned again: did it pass before?
            # a PASS made here while the database was away waits in the journal, not yet in the log: it counts too
            journal = repository.spool.records if isinstance(repository, SpoolingRepository) else None
            self.order_history = OrderHistory(order_history, journal)
            self.controller.order_chosen.connect(self.order_history.ask)
            self.order_history.answered.connect(self.controller.show_order_history)

        self.bench: BenchController | None = None
        if aside is not None:  # the cups put aside here, and what to do with each once ruled on
            self.view.show_aside(True)
            cleared = ClearedCups(None if home is None else home / CLEARED_FILE)
            self.bench = BenchController(
                self.view.aside_title, self.view.aside_list, aside, cleared=cleared, photo=aside_photo
            )
            self.controller.store_shown.connect(self.bench.refresh)

        self._tray_enrolment = tray_enrolment
        self.tray_dialog: tuple[TrayEnrolView, TrayEnrolController] | None = None
        self.view.enrol_tray_button.setVisible(tray_enrolment is not None)
        self.view.enrol_tray_button.clicked.connect(self.enrol_from_tray)

        self.demo_driver: QObject | None = None  # the demo's cup orderer (see open_station), kept alive here
        self._space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self._space.activated.connect(self.controller.check)
        self._escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self._escape.activated.connect(self.controller.new_cup)
        self._sign_in = sign_in
        self._asking = False
        self._idle = QTimer(self)
        if sign_in is not None:
            self.view.sign_out_button.setVisible(True)
            self.view.sign_out_button.clicked.connect(self.switch_operator)
            self._f2 = QShortcut(QKeySequence(Qt.Key.Key_F2), self)
            self._f2.activated.connect(self.switch_operator)
            self.controller.sign_in_requested.connect(self.ask_sign_in)
            self._idle.setInterval(IDLE_CHECK_MS)
            self._idle.timeout.connect(self.controller.idle_tick)
            if config.sign_out_after_min > 0:
                self._idle.start()
        fit_to_screen(self, WINDOW_SIZE)

    @Slot(bool, str, object)
    def _empty_tray_taken(self, ok: bool, _message: str, _camera_size: object = None) -> None:
        """The worker's pipeline already compares cups with the new photo: the follower need not load it again."""
        if ok and self.follower is not None:
            self.follower.taken_here()

    @Slot()
    def enrol_from_tray(self) -> tuple[TrayEnrolView, TrayEnrolController] | None:
        """Open the enrolment of a new type from the tray, after a supervisor's sign-in; return the dialog shown
        (``None``: not offered, cancelled, or the station is busy). No cup is checked while it is open."""
        from models.pipeline import Pipeline

        offer = self._tray_enrolment
        if offer is None or self.tray_dialog is not None or self.controller.busy:
            return None
        pipeline = self._worker.worker.pipeline
        if not isinstance(pipeline, Pipeline) or pipeline.detector is None:
            self.controller.show_failure("This model finds no coins in a photograph, so it cannot enrol from the tray.")
            return None
        if offer.authorise is not None and offer.authorise() is None:
            return None
        if not self.controller.hold("ENROLLING", "Enrolling a new type from the tray: no cup is checked meanwhile."):
            return None
        view = TrayEnrolView(self)
        controller = TrayEnrolController(
            view,
            look=partial(look_at_tray, pipeline),
            enrol=offer.enrol(pipeline.embedder.without_adapter),
            enrolled_types=[t.type_id for t in self.controller.catalog.types],
            per_side=pipeline.enrol_per_side,
        )
        self.pump.pump.frame_ready.connect(controller.show_frame)
        self.pump.pump.camera_lost.connect(controller.camera_lost)
        if self.controller.frame is not None:  # None while the camera is lost
            controller.show_frame(self.controller.frame)
        controller.enrolled.connect(self._tray_enrolled)
        view.finished.connect(self._tray_dialog_closed)
        self.tray_dialog = (view, controller)
        self.view.enrol_tray_button.setEnabled(False)
        self.view.empty_tray_button.setEnabled(False)
        view.open()
        return self.tray_dialog

    @Slot(object)
    def _tray_enrolled(self, _result: object) -> None:
        """A type was enrolled: load the new gallery now rather than at the follower's next look."""
        if self.follower is not None:
            self.follower.poll()

    @Slot(int)
    def _tray_dialog_closed(self, _code: int) -> None:
        if self.tray_dialog is None:
            return
        view, controller = self.tray_dialog
        self.pump.pump.frame_ready.disconnect(controller.show_frame)
        self.pump.pump.camera_lost.disconnect(controller.camera_lost)
        self.tray_dialog = None  # (the controller ends its thread when its dialog finishes)
        self.view.enrol_tray_button.setEnabled(True)
        self.view.empty_tray_button.setEnabled(True)
        added = controller.result is not None
        self.controller.release(
            "The new type can be chosen once the gallery is loaded." if added else "Enrolment closed."
        )
        view.deleteLater()

    @Slot()
    def switch_operator(self) -> None:
        """F2 / the Sign out button: sign the operator out and ask the next person to sign in (or, signed out
        already, just ask)."""
        if self.controller.signed_in:
            self.controller.sign_out()
        self.ask_sign_in()

    @Slot()
    def ask_sign_in(self) -> None:
        """Ask whoever is at the station to sign in; cancelled, the window stays signed out."""
        if self._sign_in is None or self._asking:
            return
        self._asking = True
        try:
            person = self._sign_in()
        finally:
            self._asking = False
        if person is not None:
            self.controller.sign_in_as(person.name)

    @property
    def idle_timer(self) -> QTimer:
        """Runs the controller's idle sign-out check (active when people sign in and a limit is set)."""
        return self._idle

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Keys no widget took (the focus is on the preview or a list) start a new order entry."""
        if not self.controller.type_ahead(event.text()):
            super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """A barcode scanner typing while the type list has the focus (a type was just clicked) types into the
        order box, not into the list's own search, which would choose whichever type the keys spell; typing while
        the type search box has it, its keys and Enter go there too (:meth:`_search_key_pressed`)."""
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return super().eventFilter(watched, event)
        if watched is self.view.type_list and self.controller.type_ahead(event.text()):
            return True
        if watched is self.view.type_filter and self._search_key_pressed(event):
            return True
        return super().eventFilter(watched, event)

    def _search_key_pressed(self, event: QKeyEvent) -> bool:
        """Tell a scanner from the operator in the type search box, as the review window's find box does
        (:data:`~station.review_window.SCAN_GAP_S`): a key that follows the one before it faster than a person types
        is a scan, so both go to the order box (the first is taken back out of the search), and so does every key
        of the burst after them, and the Enter that ends it, which resolves the order. Return whether the key was
        taken from the search box."""
        now = self._key_clock()
        text = event.text()
        scanning = self._scan_at is not None and now - self._scan_at < SCAN_GAP_S
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._search_key, self._scan_at = None, None
            if scanning:
                self.controller.enter_order()
            return scanning
        if not text or not text.isprintable() or text.isspace():
            self._search_key = None  # (arrows, Backspace: the operator's)
            return False
        if scanning and self.controller.type_ahead(text):
            self._scan_at = now
            return True
        last, box = self._search_key, self.view.type_filter
        if last is not None and now - last.at < SCAN_GAP_S:  # a scan began with the key before: take it back
            box.setText(last.before)
            box.setCursorPosition(last.cursor)
            self._search_key, self._scan_at = None, now
            self.controller.type_ahead(last.text)
            self.controller.type_ahead(text)
            return True
        self._search_key = _SearchKey(now, text, box.text(), box.cursorPosition())
        self._scan_at = None
        return False

    @property
    def worker(self) -> WorkerThread:
        """The inference worker and its thread."""
        return self._worker

    @property
    def flush_timer(self) -> QTimer:
        """Fires the worker's periodic journal flush."""
        return self._flush

    @property
    def pump(self) -> PumpThread:
        """The camera pump and its thread."""
        return self._pump

    def shutdown(self) -> None:
        """Stop the camera, the model follower and the worker threads (idempotent)."""
        self._flush.stop()
        self._pump.stop()
        if self.follower is not None:
            self.follower.stop()
        if self.bench is not None:
            self.bench.stop()
        if self.order_history is not None:
            self.order_history.stop()
        if self.tray_dialog is not None:
            self.tray_dialog[1].stop()
        self._worker.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the threads before the window goes; while a new model loads, close once it is loaded (its thread
        cannot be stopped mid-way: a promoted model's first load, its ONNX graphs made, takes many seconds)."""
        loading = self.follower.loading if self.follower is not None else None
        if loading is not None:
            event.ignore()
            self._close_when_loaded = True
            self.view.status_bar.showMessage(f"Loading {loading}… the window closes once it is loaded.")
            return
        self.shutdown()
        super().closeEvent(event)

    @Slot()
    def _load_ended(self) -> None:
        if self._close_when_loaded:
            self.close()


def _pending(repository: VerdictSink) -> int:
    try:
        return int(repository.pending_count())
    except Exception:  # pragma: no cover - the journal is a local file
        return 0
