"""Is this station ready? (``cupcheck doctor``): every part a station needs, checked the way the station will use
it, each with what to do about a problem.

The parts, in the order a station needs them: its home (writable, room left), the database (reachable, its
schema, people who may sign in, verdicts waiting in the journal), the image folder, the orders file, the model in
force with the gallery and camera set-up (loaded exactly as the operator window loads them, fallbacks included),
the enrolment (types with fewer photos than the model was calibrated with), the calibration and empty-tray photo,
and last the camera: frames come, at the size the station was calibrated at, and one check of the first frame
runs from frame to verdict.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from station.config import StationConfig
from station.home import LOW_DISK_BYTES

if TYPE_CHECKING:
    import numpy as np

    from calibration.risk import ThresholdChoice
    from db.health import DatabaseHealth

BENCH_STALE_H = 24.0
"""A flagged cup nobody has ruled on for longer than this is named (it waits on the station's bench)."""
CAMERA_WAIT_S = 8.0
"""How long the camera has to deliver a first frame."""
RETRAIN_STALE_H = 36.0
"""A nightly retrain whose log is older than this has missed a night."""
BACKUP_STALE_H = 36.0
"""A nightly backup older than this has missed a night."""


class Status(StrEnum):
    """How a part stands."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One part of the station and how it stands.

    Attributes:
        part: what was checked (``"database"``, ``"camera"``...).
        status: ok, warn (the station runs, with less), fail (the station cannot do its work).
        message: what was found.
        fix: what to do about it (``""`` when nothing).
    """

    part: str
    status: Status
    message: str
    fix: str = ""


Say = Callable[[Finding], None]


def examine(
    config: StationConfig,
    home: Path,
    *,
    camera: bool = True,
    say: Say | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Finding]:
    """Check every part of the station; ``say`` hears each finding as soon as it is made.

    Args:
        config: the station's configuration (database, store, models, gallery, camera, bundle).
        home: the station home.
        camera: open the camera and check one frame (``False``: skip it, e.g. on a PC that is not a station).
        say: called with each finding as it is made.
        clock: monotonic seconds (the camera's first-frame wait).
    """
    findings: list[Finding] = []

    def note(part: str, status: Status, message: str, fix: str = "") -> None:
        finding = Finding(part, status, message, fix)
        findings.append(finding)
        if say is not None:
            say(finding)

    _home(home, note)
    database = _database(config, home, note)
    _bench(config, home, database, note)
    _store(config, note)
    _orders(home, note)
    pipeline = _model(config, home, note)
    _retrain(config, home, note)
    _backup(config, home, database, note)
    if pipeline is not None:
        _set_up(home, pipeline, note)
    if camera:
        _camera(config, pipeline, note, clock)
    return findings


Note = Callable[..., None]


def _unwritable(folder: Path) -> OSError | None:
    """Why a file cannot be created in ``folder`` (``None``: it can)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            return None
    except OSError as err:
        return err


def _home(home: Path, note: Note) -> None:
    err = _unwritable(home)
    if err is not None:
        note("home", Status.FAIL, f"{home} cannot be written: {err}", "give the station's user write access to it")
        return
    free = shutil.disk_usage(home).free
    if free < LOW_DISK_BYTES:
        note(
            "home",
            Status.WARN,
            f"{home}: {free / 1e9:.1f} GB free",
            "remove old photographs: cupcheck prune --older-than-days 90",
        )
    else:
        note("home", Status.OK, f"{home}: {free / 1e9:.0f} GB free")


def _database(config: StationConfig, home: Path, note: Note) -> DatabaseHealth:
    """The database (reachable, its schema, people who may sign in), then the journal beside it, whatever the
    database said: verdicts wait there most of all while the database is away."""
    from db.health import database_health

    db = database_health(config.database_url, home)
    _database_state(db, note)
    _journal(home, note)
    return db


def _database_state(db: DatabaseHealth, note: Note) -> None:
    if db.error:
        note("database", Status.FAIL, db.error, "start the database server, or correct database_url")
        return
    if db.revision is None:  # the station sets it up when it starts, but refuses to start with nobody to sign in
        note(
            "database",
            Status.WARN,
            f"{db.where} is empty",
            "adding the first person sets it up (a site: cupcheck init-site --config FILE)",
        )
        _nobody_signs_in(note)
        return
    if db.newer and not db.usable:
        note(
            "database",
            Status.FAIL,
            f"{db.where} is at schema revision {db.revision}, newer than this software's {db.head}: it cannot use it",
            "upgrade cupcheck on this station",
        )
        return
    if db.newer:
        note("database", Status.WARN, f"{db.where} is at schema {db.revision}, newer than this software's {db.head}")
    elif db.revision != db.head:
        note("database", Status.OK, f"{db.where} at schema {db.revision}; the station upgrades it to {db.head}")
    else:
        note("database", Status.OK, f"{db.where} at schema {db.head}")
    if not db.people:
        _nobody_signs_in(note)
    elif not db.supervisors:
        note(
            "operators",
            Status.WARN,
            f"{db.people} may sign in, no supervisor: nobody can review flagged cups",
            "cupcheck operators add NAME --role supervisor",
        )
    else:
        note("operators", Status.OK, f"{db.people} may sign in, {db.supervisors} of them supervisors")


def _journal(home: Path, note: Note) -> None:
    """Verdicts waiting in the home's journal for the database, and those it set aside (refused, unreadable)."""
    from db.spool import SPOOL_FILENAME, VerdictSpool

    spool = VerdictSpool(home / SPOOL_FILENAME)
    waiting = len(spool)
    if waiting:
        note(
            "journal",
            Status.WARN,
            f"{waiting} verdicts wait in {spool.path} for the database",
            "they are sent when the station runs and reaches the database",
        )
    for path, what in (
        (spool.rejected_path, "verdicts the database refused"),
        (spool.damaged_path, "unreadable lines"),
    ):
        kept = path.read_bytes().count(b"\n") if path.is_file() else 0
        if kept:
            note(
                "journal",
                Status.WARN,
                f"{kept} {what} are kept in {path}",
                "look at them (each line says why); once dealt with, move the file away",
            )


def _nobody_signs_in(note: Note) -> None:
    """No active person is registered: the station window refuses to start (nobody could sign in)."""
    note(
        "operators",
        Status.FAIL,
        "nobody may sign in",
        "cupcheck operators add NAME --role supervisor (with this --config)",
    )


def _bench(config: StationConfig, home: Path, database: DatabaseHealth, note: Note) -> None:
    """Cups this station flagged that nobody has ruled on for more than :data:`BENCH_STALE_H` hours, however long
    ago (:func:`db.activity.read_bench_waiting`): the operator window lists two weeks, and a cup left waiting
    longer is the worst case, not one to drop."""
    from datetime import UTC, datetime, timedelta

    from db.activity import read_bench_waiting
    from db.session import make_engine
    from db.spool import UNREACHABLE_ERRORS

    if database.error or database.revision is None or (database.newer and not database.usable):
        return
    now = datetime.now(UTC)
    engine = make_engine(config.database_url, home=home)
    try:
        bench = read_bench_waiting(engine, config.name, now - timedelta(hours=BENCH_STALE_H))
    except UNREACHABLE_ERRORS:
        return  # said under "database"
    finally:
        engine.dispose()
    if bench.oldest is not None:
        age_h = (now - bench.oldest).total_seconds() / 3600
        note(
            "bench",
            Status.WARN,
            f"{bench.stale} cups flagged here have waited more than {BENCH_STALE_H:.0f} hours for a ruling (the "
            f"oldest has waited {_span(age_h)}, since {bench.oldest.astimezone():%Y-%m-%d %H:%M})",
            "a supervisor rules on them in the review window (cupcheck review --config FILE)",
        )
    else:
        note("bench", Status.OK, f"{bench.waiting} cups flagged here wait for a ruling")


def _store(config: StationConfig, note: Note) -> None:
    from db.store import STORE_DIR, ContentStore

    if config.store is None:
        note("images", Status.OK, "kept under the home")
        return
    folder = ContentStore(config.store, shared=True).root
    if not folder.is_dir():  # as the station's store then refuses to write (StoreUnreachable)
        note(
            "images",
            Status.FAIL,
            f"the shared image folder has no {STORE_DIR}/ at {config.store}: is the share mounted?",
            "mount the share (a new site: cupcheck init-site --config FILE)",
        )
        return
    err = _unwritable(folder)
    if err is not None:
        note("images", Status.FAIL, f"{folder} cannot be written: {err}", "give the station's user write access")
        return
    note("images", Status.OK, f"shared folder {config.store}")


def _orders(home: Path, note: Note) -> None:
    from station.controllers.catalog import ORDERS_FILE, OrderBook

    path = home / ORDERS_FILE
    if not path.is_file():
        note("orders", Status.OK, f"no {ORDERS_FILE}: types are chosen from the list")
        return
    try:
        book = OrderBook.from_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        note(
            "orders",
            Status.FAIL,
            str(err),
            f"correct {path}: one 'order,type[,count]' row each (until then, types are picked from the list)",
        )
        return
    counted = sum(book.count(order) is not None for order, _ in book.items())
    note("orders", Status.OK, f"{len(book)} orders in {path}, {counted} of them with a count of coins")


def _model(config: StationConfig, home: Path, note: Note) -> object | None:
    """Load the model in force with the gallery and set-up as the operator window does; the pipeline, or ``None``."""
    from models.pipeline import Pipeline
    from station.controllers.model_follow import RegistryFeed, start_in_force

    feed = RegistryFeed.of_station(config, home)  # uncertified: said below
    started_at = time.perf_counter()
    try:
        started = start_in_force(feed)
    except (FileNotFoundError, ValueError) as err:
        note(
            "model",
            Status.FAIL,
            f"the station cannot start: {err}",
            "see the message; enrol types with cupcheck enroll",
        )
        return None
    seconds = time.perf_counter() - started_at
    loaded = started.loaded
    pipeline = loaded.pipeline
    assert isinstance(pipeline, Pipeline)
    if started.problem:
        note(
            "model", Status.WARN, f"{started.problem} ({started.detail})", "cupcheck models list; promote or roll back"
        )
    else:
        note("model", Status.OK, f"{pipeline.model_version} loaded in {seconds:.1f} s")
    if pipeline.uncertified:
        note("model", Status.WARN, pipeline.uncertified, "cupcheck train recalibrate (models/weights/README.md)")
    if not pipeline.threshold.can_pass:
        note("threshold", Status.WARN, "no certified threshold: every cup goes to a person", "retrain or recalibrate")
    else:
        note("threshold", Status.OK, _threshold_text(pipeline.threshold))
    _enrolment(config, home, pipeline, loaded.orders, note)
    return pipeline


def _threshold_text(choice: ThresholdChoice) -> str:
    """The threshold a cup's score is held to (:attr:`~calibration.risk.ThresholdChoice.applied`, what the station
    passes at), and beside it the certified one where the floor under it is what applies."""
    guarantee = f"precision ≥ {choice.target:.1%} with {1 - choice.delta:.1%} confidence"
    if choice.floored:
        return (
            f"PASS at p ≥ {choice.applied:.3f}, the floor no cup under which passes (the threshold certified for "
            f"{guarantee} is {choice.threshold:.3f})"
        )
    return f"PASS at p ≥ {choice.applied:.3f}: {guarantee}"


def _enrolment(config: StationConfig, home: Path, pipeline: object, orders: object, note: Note) -> None:
    from models.pipeline import Pipeline
    from station.controllers.catalog import OrderBook

    assert isinstance(pipeline, Pipeline)
    types = pipeline.gallery.types()
    note("gallery", Status.OK, f"{len(types)} types enrolled ({(config.gallery or home) / 'gallery'})")
    per_side = pipeline.enrol_per_side  # the model running, fallbacks included
    thin = {tid: _short_sides(sides, per_side) for tid, sides in types.items()} if per_side else {}
    thin = {tid: text for tid, text in thin.items() if text}
    if thin:
        listed = "; ".join(f"{tid} ({short})" for tid, short in list(thin.items())[:5])
        more = f" and {len(thin) - 5} more" if len(thin) > 5 else ""
        note(
            "gallery",
            Status.WARN,
            f"{len(thin)} types have fewer than the {per_side} photos a side the model was calibrated with: "
            f"{listed}{more}",
            "enrol more photos of them (cupcheck enroll), for the precision guarantee to hold",
        )
    from models.enroll import undeclared_lookalike_warnings

    for warning in undeclared_lookalike_warnings(pipeline.gallery, (pipeline.catalogue or {}).values()):
        note("gallery", Status.WARN, warning, "declare the design or the lookalikes in coin.toml, enrol again")
    if isinstance(orders, OrderBook):
        missing = sorted({t for _, t in orders.items() if t not in types})
        if missing:
            note(
                "orders",
                Status.WARN,
                f"{len(missing)} ordered types are not enrolled: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else ""),
                "enrol them, or correct orders.csv",
            )


def _retrain(config: StationConfig, home: Path, note: Note) -> None:
    """When the nightly retrain last wrote its log beside the registry, and what it said last."""
    from models.registry import registry_root
    from station.retrain_job import LOG_FILE, STOPPED

    log = registry_root(config.models or home) / LOG_FILE
    fix = "cron: 0 2 * * * cupcheck retrain --config FILE (on one PC of a site)"
    if not log.is_file():
        note("retrain", Status.WARN, "the nightly retrain has never run on this registry", fix)
        return
    age_h = (time.time() - log.stat().st_mtime) / 3600
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    last = lines[-1][:200] if lines else ""
    when = _ago(age_h)
    if age_h > RETRAIN_STALE_H:
        note("retrain", Status.WARN, f"the retrain last ran {when}: {last}", f"is its cron line still there? {fix}")
    elif STOPPED in last:
        note("retrain", Status.WARN, f"the retrain {when} did not finish: {last}", "put right what it names")
    else:
        note("retrain", Status.OK, f"last ran {when}: {last}")


def _backup(config: StationConfig, home: Path, database: DatabaseHealth, note: Note) -> None:
    """When ``cupcheck backup`` last copied this home, and where; for a site's PostgreSQL database, whether a
    ``pg_dump`` that can dump its server is installed."""
    from datetime import UTC, datetime

    from db.backup import sqlite_file
    from db.session import URL_ERRORS
    from station.backup import backup_record

    try:
        server_database = sqlite_file(config.database_url, home) is None
    except URL_ERRORS:  # a malformed URL: named under "database"
        server_database = False
    if server_database:
        _pg_dump(database, note)

    record = backup_record(home)
    fix = "cron: 30 3 * * * cupcheck backup --config FILE --out /mnt/backup/cupcheck (another disk)"
    if record is None:
        note("backup", Status.WARN, "this station's data has never been backed up", fix)
        return
    now = datetime.now(UTC)
    if record.failed and record.attempted_at is not None:
        tried = _ago((now - record.attempted_at).total_seconds() / 3600)
        whole = (
            f"; the last whole one: {_ago((now - record.made_at).total_seconds() / 3600)}, to {record.folder}"
            if record.made_at is not None
            else "; none has finished whole yet"
        )
        note(
            "backup",
            Status.WARN,
            f"the last backup, {tried} to {record.attempt_folder}, failed: {record.failed}{whole}",
            "put its cause right (room on the backup disk?), then run cupcheck backup --config FILE --out DIR again",
        )
        return
    if record.made_at is None:
        note("backup", Status.WARN, "this station's data has never been backed up whole", fix)
        return
    folder = record.folder
    age_h = (now - record.made_at).total_seconds() / 3600
    when = _ago(age_h)
    if age_h > BACKUP_STALE_H:
        note("backup", Status.WARN, f"last backed up {when}, to {folder}", f"is its cron line still there? {fix}")
    else:
        note("backup", Status.OK, f"backed up {when}, to {folder}")


def _pg_dump(database: DatabaseHealth, note: Note) -> None:
    """Whether a ``pg_dump`` installed here can dump the site's PostgreSQL server: it refuses a server newer than
    itself, so with the server not reached (its version unknown) this cannot be told."""
    from db.backup import DumpError, pg_tool, tool_version

    client = "install the PostgreSQL client tools of the server's version or newer (apt install postgresql-client)"
    try:
        dump = pg_tool("pg_dump")
    except DumpError as err:
        note("backup", Status.WARN, f"cupcheck backup cannot dump the site's database: {err}", client)
        return
    mine, server = tool_version(dump), database.server_version
    said = ".".join(map(str, mine))
    if not server:
        note(
            "backup",
            Status.WARN,
            f"cannot check whether {dump} ({said}) can dump the site's database: its server was not reached",
            "start the database server, then run cupcheck doctor again",
        )
    elif mine[:1] < server[:1]:
        note(
            "backup",
            Status.WARN,
            f"{dump} ({said}) is older than the database server ({server[0]}): pg_dump refuses it",
            client,
        )
    else:
        note("backup", Status.OK, f"the site's database can be dumped with {dump} ({said})")


def _ago(hours: float) -> str:
    """``"5 hours ago"``, or ``"3 days ago"`` from two days on."""
    return f"{_span(hours)} ago"


def _span(hours: float) -> str:
    """``"30 hours"``, or ``"120 days"`` from two days on (as :func:`_ago` counts)."""
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def _short_sides(sides: dict[str, int], per_side: int) -> str:
    """``"8 reverse"``: the sides with fewer than ``per_side`` references, and how many they have."""
    return ", ".join(f"{sides.get(side, 0)} {side}" for side in ("obverse", "reverse") if sides.get(side, 0) < per_side)


def _set_up(home: Path, pipeline: object, note: Note) -> None:
    from calibration.camera import load_calibration, load_empty_tray

    calibration = load_calibration(home)
    if calibration is None:
        note(
            "calibration",
            Status.WARN,
            "not calibrated: no millimetres, no cup region",
            "cupcheck calibrate IMAGE --reference-mm 24.26 (a photo of a coin of known size on the tray)",
        )
    else:
        region = "whole frame" if calibration.roi is None else "cup region set"
        note(
            "calibration",
            Status.OK,
            f"{calibration.px_per_mm:.2f} px/mm ({calibration.method}), {region}, at "
            f"{calibration.image_width}×{calibration.image_height}",
        )
    if load_empty_tray(home) is None:
        note(
            "empty tray",
            Status.WARN,
            "no empty-tray photo: an object the detector does not box is not caught",
            "press 'Photograph the empty tray' in the operator window (or cupcheck calibrate --empty-tray IMG)",
        )
    else:
        note("empty tray", Status.OK, "photo kept: every cup is compared with it")
    if not hasattr(pipeline, "setup_view"):  # no model loaded: its failure is named above
        return
    view = pipeline.setup_view
    if view is None:
        if calibration is not None:
            note(
                "camera aim",
                Status.WARN,
                "no photo of the camera's view as set up: a camera moved since is not noticed",
                "calibrate again (its photo is kept), or take the empty-tray photo",
            )
    elif not view.recognisable:
        note(
            "camera aim",
            Status.WARN,
            f"only {view.features} features around the cup in the set-up photo: too few to notice reliably that "
            "the camera has moved",
            "print cupcheck mat --out mat.png, lay it under and around the tray, then take the empty-tray photo again",
        )


def _camera(config: StationConfig, pipeline: object, note: Note, clock: Callable[[], float]) -> None:
    from models.pipeline import Pipeline
    from station.camera import open_source

    try:
        source = open_source(config.camera)
    except (FileNotFoundError, ValueError, OSError) as err:
        note("camera", Status.FAIL, str(err), "check the [camera] settings")
        return
    try:
        deadline = clock() + CAMERA_WAIT_S
        frame = source.read()
        while frame is None and clock() < deadline:
            time.sleep(0.1)
            frame = source.read()
        if frame is None:
            note(
                "camera",
                Status.FAIL,
                f"{source.name} gave no frame in {CAMERA_WAIT_S:.0f} s",
                "plug the camera in, or check [camera] index/url; if the station window is running it holds the "
                "camera: run doctor --no-camera",
            )
            return
        h, w = frame.image.shape[:2]
        size = getattr(pipeline, "camera_size", None)
        if size is not None and tuple(size) != (w, h):
            note(
                "camera",
                Status.FAIL,
                f"{source.name} delivers {w}×{h}, the station was set up at {size[0]}×{size[1]}",
                "set [camera] width/height back, or calibrate again",
            )
            return
        note("camera", Status.OK, f"{source.name}: {w}×{h}")
        _camera_position(pipeline, frame.image, note)
        if isinstance(pipeline, Pipeline) and pipeline.gallery.types():
            expected = next(iter(pipeline.gallery.types()))
            started = time.perf_counter()
            verdict = pipeline.run(frame, expected)
            ms = 1000 * (time.perf_counter() - started)
            note("check", Status.OK, f"one check of the camera's frame: {ms:.0f} ms, {verdict.n_coins} coins seen")
    finally:
        source.close()


def _camera_position(pipeline: object, image: np.ndarray, note: Note) -> None:
    """Whether the camera's view is still the one its set-up photo shows (:mod:`calibration.movement`)."""
    view = getattr(pipeline, "setup_view", None)
    if view is None:
        return
    move = view.compare(image)
    if move is None:
        if not view.recognisable:  # the set-up photo was named for it
            return
        note(
            "camera aim",
            Status.WARN,
            "cannot tell whether the camera has moved: the surroundings of the cup are not recognised",
            "clear what covers them; if the camera points elsewhere, put it back or calibrate again",
        )
    elif move.moved:
        note(
            "camera aim",
            Status.FAIL,
            f"the camera has moved since it was set up (the view: {move.describe()}); every cup is flagged",
            "put it back, or calibrate again (cupcheck calibrate IMAGE --reference-mm MM --empty-tray EMPTY)",
        )
    else:
        note(
            "camera aim",
            Status.OK,
            f"where it was set up ({move.rim_shift_px:.1f} px at the cup's rim, {move.matches} features matched)",
        )


def worst(findings: list[Finding]) -> Status:
    """The worst status among ``findings`` (ok for none)."""
    order = [Status.OK, Status.WARN, Status.FAIL]
    return max((f.status for f in findings), key=order.index, default=Status.OK)
