"""The composition root: the station's windows, built from parts handed in (no globals, no singletons).

``MainWindow(pipeline, repository, source, config, operator=...)`` wires a camera pump (its own thread) and an
inference worker (its own thread) to the operator view and controller. ``ReviewWindow(repository, supervisor=...)``
wires the review view and controller to a background thread for rulings and enrolment. Everything they talk to is
passed in, so tests build them from a replayed folder, a small real pipeline and a temporary database.
:func:`run_station` and :func:`run_review` load the real parts for ``cupcheck station`` and ``cupcheck review``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QDialog, QMainWindow, QWidget

from db.records import AsideCup, OperatorInfo, OrderCheck
from db.repository import VerdictRepository
from db.signin_cache import CACHE_FILENAME as SIGN_IN_CACHE
from db.signin_cache import SignInCache, SignInDirectory
from db.spool import UNREACHABLE_ERRORS, SpoolingRepository
from models.enroll_tray import look_at_tray
from models.types import Side
from station.camera import Clock, FrameSource, open_source
from station.config import StationConfig
from station.controllers.auth import SUPERVISOR, LoginController, OperatorDirectory
from station.controllers.bench import ASIDE_HOURS, CLEARED_FILE, WAITING_DAYS, BenchController, ClearedCups
from station.controllers.catalog import OrderBook, OrderLookup, TypeCatalog
from station.controllers.enrol import Enrolment
from station.controllers.enrol_tray import TrayEnrolController, TrayEnrolment
from station.controllers.model_follow import InForce, ModelFollower, RegistryFeed, StationFeed, start_in_force
from station.controllers.operator import OperatorController
from station.controllers.order_history import OrderHistory
from station.controllers.people import PeopleController, PeopleDirectory
from station.controllers.preview import PumpThread, start_pump
from station.controllers.review import ReviewController, ReviewRepository
from station.controllers.sound import Silent, SoundCue, SpokenCue
from station.controllers.stillness import StillnessGate
from station.views.enrol_tray import TrayEnrolView
from station.views.login import LoginDialog
from station.views.operator import OperatorView
from station.views.people import PeopleView
from station.views.review import ReviewView
from station.views.widgets import WINDOW_SIZE, fit_to_screen, free_area, wants_compact
from station.worker import BackgroundThread, VerdictSink, VerdictSource, WorkerThread, model_version, start_worker

if TYPE_CHECKING:
    from models.embedder import Embedder
    from models.registry import SuspectLabels

_log = logging.getLogger(__name__)

SPOOL_RETRY_S = 30.0
"""How often the window asks the worker to send journalled verdicts to the database."""
IDLE_CHECK_MS = 15_000
"""How often the window looks whether its operator has been idle long enough to be signed out."""


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
            scanned again that passed before is named (:mod:`station.controllers.order_history`); ``None``: not asked.
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
            self.order_history = OrderHistory(order_history)
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

    @Slot(bool, str)
    def _empty_tray_taken(self, ok: bool, _message: str) -> None:
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
            (Qt.Key.Key_E, self.controller.enrol),
            (Qt.Key.Key_B, self.controller.toggle_before),
            (Qt.Key.Key_F5, self.reload),
            (Qt.Key.Key_P, self.show_people),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.activated.connect(slot)
            self._keys.append(shortcut)
        self._supervisor = supervisor.name
        self._people = people
        self._follow = follow
        self.view.people_button.setVisible(people is not None)
        self.view.people_button.clicked.connect(self.show_people)
        self._close_when_enrolled = False
        self.controller.enrol_ended.connect(self._enrol_ended)
        fit_to_screen(self, WINDOW_SIZE)
        self.controller.refresh()

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


def _pending(repository: VerdictSink) -> int:
    try:
        return int(repository.pending_count())
    except Exception:  # pragma: no cover - the journal is a local file
        return 0


def qt_application() -> QApplication:
    """The running ``QApplication``, or a new one.

    ``import cv2`` (the opencv-python wheel) points ``QT_QPA_PLATFORM_PLUGIN_PATH`` and ``QT_QPA_FONTDIR`` at the
    Qt build bundled inside OpenCV, whose plugins do not fit PySide6's Qt; those two settings are dropped first
    when they point into OpenCV's package.
    """
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    for var in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(var, "")
        if f"{os.sep}cv2{os.sep}" in value:
            del os.environ[var]
    return QApplication(sys.argv[:1])


def open_repository(home: Path, url: str | None, store: Path | None = None) -> SpoolingRepository:
    """The station's verdict log behind a spool; when the database cannot be reached at start, verdicts spool.

    Raises:
        ValueError: a malformed database URL.
    """
    try:
        repository = VerdictRepository.open(home, url, store=store)
    except UNREACHABLE_ERRORS:
        _log.warning("database unreachable at start-up; verdicts will be journalled until it is back")
        repository = VerdictRepository.open(home, url, migrate=False, store=store)
    return SpoolingRepository(repository)


class NobodyToSignIn(ValueError):
    """No active person (in the role a window needs) is registered, so no sign-in could succeed."""


def require_someone_to_sign_in(repository: VerdictRepository, role: str | None) -> None:
    """Refuse to open a sign-in nobody could pass, saying how to register the first person.

    A database that cannot be reached is let through: the dialog says so when it checks a PIN.

    Raises:
        NobodyToSignIn: nobody active (with ``role = "supervisor"``: no active supervisor) is registered.
    """
    try:
        count = repository.operators.count_active(role)
    except UNREACHABLE_ERRORS:
        return
    if count:
        return
    who = "supervisor" if role == SUPERVISOR else "operator or supervisor"
    where = repository.engine.url.render_as_string(hide_password=True)
    raise NobodyToSignIn(
        f"nobody can sign in: no active {who} is registered in the database {where}; register one with "
        "`cupcheck operators add NAME --role supervisor` (with this station's --config or --db)"
    )


def sign_in_dialog(directory: OperatorDirectory, title: str, role: str | None) -> OperatorInfo | None:
    """Show the sign-in dialog until a person is admitted (returned) or cancels (``None``)."""
    dialog = LoginDialog(title)
    login = LoginController(dialog, directory, role=role)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return login.operator


def run_station(
    config: StationConfig,
    home: Path,
    *,
    demo: bool = False,
    started: float | None = None,
    quit_after: int | None = None,
) -> int:
    """Open the operator window with the configured camera, the home's model and gallery; return the exit code.

    With ``demo`` the home is first made a demo home (:func:`station.demo.prepare_demo_home`: the simulator's
    types enrolled, a demo operator), the camera is the simulator, nobody needs to sign in, and each new cup is
    ordered and checked by itself (see :func:`open_station`).

    Args:
        config: the station's configuration.
        home: the station home.
        demo: run the demo.
        started: the command's start (``time.perf_counter()``): say on stderr how long the first frame and the
            first verdict took.
        quit_after: close the window after this many verdicts (``None``: when the operator closes it).

    Raises:
        FileNotFoundError, ValueError: the model, the gallery or the replay folder is missing or damaged.
    """
    app = qt_application()
    window = open_station(config, home, demo=demo)
    if window is None:
        return 1
    if started is not None:
        from station.demo import StartupTimer

        timer = StartupTimer(started)
        window.pump.pump.frame_ready.connect(timer.frame_shown)
        window.controller.verdict_shown.connect(timer.verdict_shown)
    if quit_after is not None:
        shown = [0]

        def count(_result: object) -> None:
            shown[0] += 1
            if shown[0] == quit_after:
                window.close()  # the last window: the application's loop ends (a second quit would linger)

        window.controller.verdict_shown.connect(count)
    window.show()
    code = app.exec()
    window.shutdown()
    return int(code)


def open_station(config: StationConfig, home: Path, *, demo: bool = False) -> MainWindow | None:
    """Build the operator window :func:`run_station` shows (not shown yet); ``None`` when sign-in was cancelled.

    Needs a running :func:`qt_application`. With ``demo``, see :func:`run_station`; a
    :class:`station.demo.DemoDriver` chooses each simulator cup's type and the stillness gate checks it.

    Raises:
        FileNotFoundError, ValueError: the model, the gallery or the replay folder is missing or damaged.
        NobodyToSignIn: no active operator or supervisor is registered (not with ``demo``).
    """

    if demo:
        from station.demo import prepare_demo_home

        cam = config.camera
        home = prepare_demo_home(home, n_types=cam.simulator_types, seed=cam.simulator_seed, bundle_path=config.bundle)
        config = config.model_copy(update={"camera": cam.model_copy(update={"kind": "simulator"}), "auto_check": True})

    repository = open_repository(home, config.database_url, config.store)
    if not demo:  # before the model loads: a first start says at once that somebody must be registered
        require_someone_to_sign_in(repository.repository, None)

    # the registry's model in force (or the bundle named), and later whatever is put in force there or in the home
    feed = RegistryFeed.of_station(config, home, warn=lambda why: print(f"warning: {why}", file=sys.stderr))
    started = start_in_force(feed)
    if started.problem:
        print(f"warning: {started.problem} ({started.detail})", file=sys.stderr)
    loaded = started.loaded
    assert loaded.pipeline is not None and loaded.catalog is not None and loaded.orders is not None
    title = f"cupcheck {config.name}: operator sign-in"
    # who signed in here can sign in again while the database is away (the journal keeps the verdicts meanwhile)
    directory = SignInDirectory(repository.repository.operators, SignInCache(home / SIGN_IN_CACHE))
    directory.refresh()

    def sign_in() -> OperatorInfo | None:
        return sign_in_dialog(directory, title, None)

    if demo:
        from station.demo import DEMO_OPERATOR

        operator_name = DEMO_OPERATOR
    else:
        operator = sign_in()
        if operator is None:
            return None
        operator_name = operator.name
    source = open_source(config.camera)
    window = MainWindow(
        loaded.pipeline,
        repository,
        source,
        config,
        operator=operator_name,
        catalog=loaded.catalog,
        orders=loaded.orders,
        home=home,
        follow=(feed, started.state),
        sign_in=None if demo else sign_in,
        aside=partial(aside_since, repository.repository, config.name),  # the demo's flagged cups too
        aside_photo=repository.repository.read_blob,
        order_history=repository.repository.order_checks,
        tray_enrolment=TrayEnrolment(
            home,
            feed.gallery_dir,
            None if demo else lambda: sign_in_dialog(directory, f"cupcheck {config.name}: enrol a type", SUPERVISOR),
        ),
    )
    if started.problem and window.follower is not None:
        window.follower.say(started.problem, started.detail)
    if not demo:
        return window

    from station.camera import SimulatorSource
    from station.demo import DemoDriver

    assert isinstance(source, SimulatorSource)
    view, controller = window.view, window.controller

    def choose(type_id: str, cup: str) -> None:
        controller.choose_type(type_id)
        view.order_status.setText(f"Demo: {cup} ordered as {type_id}; it is checked once still (Space: again)")

    driver = DemoDriver(source, choose)
    window.pump.pump.frame_ready.connect(driver.frame_shown)  # after the controller's: the frame is shown first
    window.demo_driver = driver
    return window


def aside_since(repository: VerdictRepository, station: str, hours: float = ASIDE_HOURS) -> list[AsideCup]:
    """The station's bench: its cups put aside for a person over the last ``hours`` with their rulings, and those
    still waiting for one over the last :data:`~station.controllers.bench.WAITING_DAYS`."""
    now = datetime.now(UTC)
    return repository.set_aside(station, now - timedelta(hours=hours), waiting_since=now - timedelta(days=WAITING_DAYS))


def run_review(
    home: Path,
    url: str | None,
    station: str | None = None,
    bundle: Path | None = None,
    target_precision: float | None = None,
    audit_share: float = 0.0,
    store: Path | None = None,
    models: Path | None = None,
    gallery: Path | None = None,
) -> int:
    """Open the supervisor window after a supervisor's sign-in; return the exit code (1 when cancelled).

    Enrolment from the window uses the embedder of ``bundle`` (default: the model in force in the registry under
    ``models``, else the home's, else the shipped bundle) and writes the gallery under ``gallery`` (else the home).
    """
    from models.gallery import Gallery
    from models.registry import resolve_bundle, suspect_labels
    from station.controllers.model_info import describe_model

    registry = models or home
    given = bundle
    bundle = resolve_bundle(registry, given)  # the registry's version in force, else the shipped bundle

    def in_force() -> tuple[Sequence[str], SuspectLabels | None]:
        return describe_model(resolve_bundle(registry, given), target_precision), suspect_labels(registry)

    gallery_dir = (gallery or home) / "gallery"
    catalog = TypeCatalog.from_gallery(gallery_dir) if Gallery.exists(gallery_dir) else TypeCatalog([], _no_picture)
    app = qt_application()
    repository = VerdictRepository.open(home, url, store=store)
    require_someone_to_sign_in(repository, SUPERVISOR)
    supervisor = sign_in_dialog(repository, "cupcheck review: supervisor sign-in", SUPERVISOR)
    if supervisor is None:
        return 1
    enrolment = Enrolment(gallery_dir, lambda: _bundle_embedder(bundle))
    window = ReviewWindow(
        repository,
        supervisor=supervisor,
        catalog=catalog,
        station=station,
        enrolment=enrolment,
        model=describe_model(bundle, target_precision),
        audit_share=audit_share,
        suspects=suspect_labels(registry),
        people=repository.operators,
        follow=in_force,
    )
    window.show()
    code = app.exec()
    window.shutdown()
    return int(code)


def _bundle_embedder(bundle: Path | None) -> Embedder:
    from models.bundle import load_bundle
    from models.embedder import Embedder

    loaded = load_bundle(bundle)
    return Embedder.load(loaded.path(loaded.embedder_file), threads=2)


def _no_picture(type_id: str, side: Side) -> None:
    return None
