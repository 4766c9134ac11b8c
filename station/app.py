"""The composition root: the station's windows built from their real parts (no globals, no singletons).

The windows themselves take every part they talk to (:class:`~station.main_window.MainWindow`,
:class:`~station.review_window.ReviewWindow`), so tests build them from a replayed folder, a small real pipeline
and a temporary database. :func:`run_station` and :func:`run_review` load the real parts for ``cupcheck station``
and ``cupcheck review``: the camera, the pipeline in force, the verdict log with its journal, the sign-in.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication, QDialog

from db.records import AsideCup, OperatorInfo
from db.repository import VerdictRepository
from db.session import init_db_when_reached
from db.signin_cache import CACHE_FILENAME as SIGN_IN_CACHE
from db.signin_cache import SignInCache, SignInDirectory, database_identity
from db.spool import UNREACHABLE_ERRORS, SpoolingRepository
from models.types import Side
from station.camera import open_source
from station.config import StationConfig
from station.controllers.auth import SUPERVISOR, LoginController, OperatorDirectory
from station.controllers.bench import ASIDE_HOURS, WAITING_DAYS
from station.controllers.catalog import TypeCatalog
from station.controllers.enrol import Enrolment
from station.controllers.enrol_tray import TrayEnrolment
from station.controllers.model_follow import RegistryFeed, start_in_force
from station.main_window import MainWindow
from station.review_window import ReviewWindow
from station.signin_throttle import HomeSignInThrottle
from station.views.login import LoginDialog

if TYPE_CHECKING:
    from models.embedder import Embedder
    from models.registry import SuspectLabels

_log = logging.getLogger(__name__)


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
    """The station's verdict log behind a spool, its database migrated to the newest schema; when the database cannot
    be reached at start, verdicts spool, and the migration runs once it is reached
    (:func:`db.session.init_db_when_reached`), before the journal is replayed or anything is read or written: the
    software before this one may have left it at an older schema.

    Raises:
        ValueError: the database's schema is newer than this software can use.
        sqlalchemy.exc.ArgumentError: a malformed database URL.
    """
    try:
        repository = VerdictRepository.open(home, url, store=store)
    except UNREACHABLE_ERRORS:
        _log.warning(
            "database unreachable at start-up; verdicts are journalled until it is back, and it is upgraded then"
        )
        repository = VerdictRepository.open(home, url, migrate=False, store=store)
        init_db_when_reached(repository.engine)
        spooling = SpoolingRepository(repository)
        spooling.away_at_start = True
        return spooling
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


def sign_in_dialog(directory: OperatorDirectory, title: str, role: str | None, *, home: Path) -> OperatorInfo | None:
    """Show the sign-in dialog until a person is admitted (returned) or cancels (``None``).

    A station's sign-in cache is brought in line with the database as the dialog opens (:func:`refresh_sign_in_cache`),
    so a PIN changed or a person deactivated on another PC while this window ran counts at the next outage too.

    The refusals in a row and the lock they earned are read from and kept in ``home``
    (:class:`~station.signin_throttle.HomeSignInThrottle`), so every dialog of the station shares them: a process
    that ends when the dialog is cancelled (``cupcheck review``, the station's first sign-in) would otherwise start
    each new one unlocked.
    """
    refresh_sign_in_cache(directory)
    dialog = LoginDialog(title)
    login = LoginController(dialog, directory, throttle=HomeSignInThrottle(home), role=role)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return login.operator


def refresh_sign_in_cache(directory: OperatorDirectory) -> None:
    """Start :meth:`SignInDirectory.refresh` off the window's thread (Qt's thread pool, as the PIN check runs): a
    database that is away takes its connect timeout to say so, and the dialog must not freeze meanwhile. A directory
    without a cache (the review window's) has nothing to refresh."""
    if not isinstance(directory, SignInDirectory):
        return

    def refresh() -> None:
        try:
            directory.refresh()
        except Exception:  # on the pool's thread nobody else would hear of it; the sign-in goes on either way
            _log.exception("the sign-in cache could not be brought in line with the database")

    QThreadPool.globalInstance().start(refresh)


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
    assert loaded.pipeline is not None and loaded.catalog is not None
    if loaded.orders_error:
        print(f"warning: {loaded.orders_error}; orders cannot be scanned until it is put right", file=sys.stderr)
    title = f"cupcheck {config.name}: operator sign-in"
    # who signed in here can sign in again while the database is away (the journal keeps the verdicts meanwhile)
    cache = SignInCache(home / SIGN_IN_CACHE, database=database_identity(repository.repository.engine))
    directory = SignInDirectory(repository.repository.operators, cache)  # refreshed as each sign-in dialog opens

    def sign_in() -> OperatorInfo | None:
        return sign_in_dialog(directory, title, None, home=home)

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
        orders_error=loaded.orders_error,
        home=home,
        follow=(feed, started.state),
        sign_in=None if demo else sign_in,
        aside=partial(aside_since, repository.repository, config.name),  # the demo's flagged cups too
        aside_photo=repository.repository.read_blob,
        order_history=repository.repository.order_checks,
        tray_enrolment=TrayEnrolment(
            home,
            feed.gallery_dir,
            None
            if demo
            else lambda: sign_in_dialog(directory, f"cupcheck {config.name}: enrol a type", SUPERVISOR, home=home),
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
        view.order_status.setText(f"Demo: {cup} ordered as {type_id}; it is checked once still")

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
    supervisor = sign_in_dialog(repository, "cupcheck review: supervisor sign-in", SUPERVISOR, home=home)
    if supervisor is None:
        return 1
    enrolment = Enrolment(gallery_dir, lambda: _bundle_embedder(bundle), per_side=_enrol_per_side(bundle))
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


def _enrol_per_side(bundle: Path | None) -> int | None:
    """The references a side the model's calibration galleries held, below which an enrolled type is noted
    (``None`` when the bundle cannot be read: the enrolment falls back to the shipped bundle's)."""
    from models.bundle import BundleError, load_bundle

    try:
        return load_bundle(bundle).enrol_per_side
    except (FileNotFoundError, BundleError):
        return None


def _no_picture(type_id: str, side: Side) -> None:
    return None
