"""A running station follows what is put in force: the registry's model, and its own gallery, camera set-up and orders.

The nightly retrain promotes a model in a registry (a station's own under its home, or a site's shared one: ``models``
in the station TOML), and a supervisor may promote another or roll back with ``cupcheck models``; a supervisor enrols
a new coin type into the station's gallery (``cupcheck enroll``, or the review window), calibrates the camera again,
or a new ``orders.csv`` arrives. A station window left running would keep what it started with.
:class:`ModelFollower` asks its :class:`StationFeed` every :data:`MODEL_CHECK_S` what is in force and, when that
changed, loads it off the GUI thread (a check in progress goes on) and hands the pipeline to the inference worker,
which swaps it in between two checks (``pipeline_loaded``), and the catalogue, orders and camera size to the window
(``setup_loaded``). Something that cannot be loaded leaves what runs in force and is said once (``problem``); it is
tried again after :data:`RETRY_S`, or at once when something else changes. A new ``orders.csv`` is read meanwhile all
the same (a damaged gallery, or a site's registry away, must not keep the day's orders from the order box).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from calibration.camera import CALIBRATION_FILE, EMPTY_TRAY_FILE, SETUP_VIEW_FILE
from station.camera import Clock
from station.controllers.catalog import ORDERS_FILE, OrderLookup, TypeCatalog, read_orders
from station.worker import BackgroundCall, BackgroundThread, VerdictSource

if TYPE_CHECKING:
    from station.config import StationConfig

MODEL_CHECK_S = 60.0
"""How often a running station asks what is in force."""
RETRY_S = 600.0
"""How long something that failed to load waits before it is tried again."""
SETUP_FILES = (CALIBRATION_FILE, EMPTY_TRAY_FILE, SETUP_VIEW_FILE)
"""The station home's own files a pipeline is built from."""
GALLERY_FILES = ("gallery/manifest.json", "gallery/catalog.json")
"""The gallery's files (under the home, or a site's shared folder): the manifest is written last, after the files
it names."""
_STAMP_ORDER = {name: i for i, name in enumerate((*SETUP_FILES, *GALLERY_FILES))}
"""Where each file's part stands in a stamp (:func:`setup_stamp` lists them in this order)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InForce:
    """What a station should run.

    Attributes:
        model: the registry's version in force, or ``shipped``.
        setup: a stamp of the files the pipeline is built from besides the model (:func:`setup_stamp`: the
            gallery, the calibration, the empty tray); another stamp means they changed.
        orders: the stamp of ``orders.csv``: a new one is read without loading the pipeline again (an order file
            an ordering system rewrites every few minutes must not cost a model load each time).
    """

    model: str
    setup: str = ""
    orders: str = ""


@dataclass(frozen=True)
class Loaded:
    """A station's parts, loaded for an :class:`InForce`.

    Attributes:
        pipeline: judges the cups (``None``: only the orders were read again; keep the pipeline and camera size).
        catalog: the enrolled types for the type list (``None``: keep the window's).
        orders: order numbers → types (``None``: keep the window's).
        camera_size: ``(width, height)`` the camera was set up at, ``None`` when not calibrated.
        orders_error: why ``orders.csv`` could not be read (``orders`` is then ``None``); ``""`` when it was.
    """

    pipeline: VerdictSource | None
    catalog: TypeCatalog | None = None
    orders: OrderLookup | None = None
    camera_size: tuple[int, int] | None = None
    orders_error: str = ""


class StationFeed(Protocol):
    """Where a station's parts come from (:class:`RegistryFeed` reads a registry and the station home)."""

    def in_force(self) -> InForce:
        """What is in force now."""
        ...

    def load(self, state: InForce, since: InForce | None = None) -> Loaded:
        """The parts for ``state``, ready to use; ``since``: what runs now (parts it shares need no new load)."""
        ...

    def stamp(self) -> str:
        """The stamp of the station's set-up files as they are now (:attr:`InForce.setup`)."""
        ...

    def orders_stamp(self) -> str:
        """The stamp of ``orders.csv`` as it is now (:attr:`InForce.orders`); read without the registry."""
        ...


def setup_stamp(folder: Path, names: tuple[str, ...] = SETUP_FILES) -> str:
    """Size and modification time of each of ``names`` (the station home's set-up files) that exists under
    ``folder``, as one string."""
    parts = []
    for name in names:
        try:
            st = (folder / name).stat()
        except OSError:
            continue
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def restamp(stamp: str, now: str, name: str) -> str:
    """``stamp`` with file ``name``'s part as ``now`` has it, and every other file's part as it was.

    The window writes one set-up file itself and hands it to the pipeline it runs (the empty-tray photo): that file
    is in force, but a gallery or calibration changed since the last poll is not yet, so the stamp of what runs takes
    only that file's new part, and the next poll still sees the others.

    Args:
        stamp: a stamp of what runs (:attr:`InForce.setup`: sections joined by ``|``, each of :func:`setup_stamp`).
        now: the stamp of the files as they are now (:meth:`StationFeed.stamp`).
        name: the file whose part is taken from ``now`` (``empty_tray.png``); absent from ``now``, it goes.
    """
    sections = []
    for old, new in zip_longest(stamp.split("|"), now.split("|"), fillvalue=""):
        parts = {part.partition(":")[0]: part for part in old.split(";") if part}
        fresh = {part.partition(":")[0]: part for part in new.split(";") if part}
        parts.pop(name, None)
        if name in fresh:
            parts[name] = fresh[name]
        ordered = sorted(parts.items(), key=lambda item: _STAMP_ORDER.get(item[0], len(_STAMP_ORDER)))
        sections.append(";".join(part for _, part in ordered))
    return "|".join(sections)


@dataclass(frozen=True)
class RegistryFeed:
    """The model in force in the registry under ``models``, with the station's gallery, set-up and orders.

    Attributes:
        models: the folder whose ``models/`` holds the registry (the home, or a site's shared folder).
        home: the station home (calibration, empty tray, ``orders.csv``, and the gallery unless ``gallery`` is
            named).
        load_bundle: builds the station's pipeline from a bundle JSON (``None``: the shipped bundle) with the
            station's gallery, calibration and settings.
        bundle: a bundle the station was given (``bundle = "..."`` in its TOML): it stays, whatever the registry
            says; the home's files are still followed.
        gallery: the folder whose ``gallery/`` holds the enrolled types, when not the home (a site's shared one).
        shared: ``models`` is a site's shared folder: a registry missing there is a share that is away
            (:class:`models.registry.RegistryMissing`), never a reason to run the shipped bundle instead.
    """

    models: Path
    home: Path
    load_bundle: Callable[[Path | None], VerdictSource] = field(repr=False)
    bundle: Path | None = None
    gallery: Path | None = None
    shared: bool = False

    @classmethod
    def of_station(
        cls, config: StationConfig, home: Path, *, warn: Callable[[str], None] | None = None
    ) -> RegistryFeed:
        """The feed a station with ``config`` and ``home`` runs on: its registry (or given bundle), gallery and
        settings; ``warn`` hears why a loaded pipeline's guarantee may not hold (``Pipeline.uncertified``)."""
        from models.pipeline import Pipeline

        def load(bundle: Path | None) -> Pipeline:
            built = Pipeline.load(
                home,
                bundle,
                target_precision=config.target_precision,
                backend=config.backend,
                gallery_home=config.gallery,
            )
            if built.uncertified and warn is not None:
                warn(built.uncertified)
            return built

        models = config.models or home
        return cls(models, home, load, config.bundle, config.gallery, config.models is not None)

    @property
    def gallery_dir(self) -> Path:
        """The station's gallery folder (the shared one when ``gallery`` names it)."""
        return (self.gallery or self.home) / "gallery"

    def stamp(self) -> str:
        """The stamp of the home's set-up files and the gallery's (:func:`setup_stamp`)."""
        return setup_stamp(self.home) + "|" + setup_stamp(self.gallery or self.home, GALLERY_FILES)

    def orders_stamp(self) -> str:
        """The stamp of the home's ``orders.csv`` (:func:`setup_stamp`)."""
        return setup_stamp(self.home, (ORDERS_FILE,))

    def state_for(self, model: str) -> InForce:
        """``model`` with the present stamps of the station's files."""
        return InForce(model, self.stamp(), self.orders_stamp())

    def in_force(self) -> InForce:
        """The registered version in force (or ``shipped``, or the given bundle) and the stamp of the home's set-up
        files.

        Raises:
            models.registry.RegistryMissing: a shared registry is not there.
            models.registry.RegistryError: the registry is damaged.
        """
        from models.registry import SHIPPED, RegistryMissing, load_registry, registry_file

        if self.bundle is not None:
            return self.state_for(str(self.bundle))
        if self.shared and not registry_file(self.models).is_file():
            raise RegistryMissing(
                f"no model registry at {registry_file(self.models)}: is the share mounted? (a new site starts one "
                "with `cupcheck init-site`)"
            )
        return self.state_for(load_registry(self.models).current or SHIPPED)

    def load(self, state: InForce, since: InForce | None = None) -> Loaded:
        """The pipeline of version ``state.model`` with the home's gallery, and the window's catalogue and orders;
        only the orders when nothing else changed ``since`` what runs. An ``orders.csv`` that cannot be read stops
        nothing: it is said in ``orders_error``.

        Raises:
            models.registry.RegistryError: the version has no bundle.
            FileNotFoundError, ValueError: the bundle or the gallery is missing or damaged.
        """
        from models.gallery import Gallery
        from models.registry import bundle_path

        orders, orders_error = read_orders(self.home / ORDERS_FILE)
        if since is not None and (since.model, since.setup) == (state.model, state.setup):
            return Loaded(None, None, orders, orders_error=orders_error)
        if not Gallery.exists(self.gallery_dir):  # before any model is loaded: no model does without it
            if self.gallery is None:
                raise FileNotFoundError(f"no gallery in {self.gallery_dir}; enrol coin types first (cupcheck enroll)")
            raise FileNotFoundError(
                f"no gallery in the shared folder {self.gallery_dir}: is the share mounted? (a new site enrols its "
                f"types with `cupcheck enroll CATALOG_DIR --gallery {self.gallery}`)"
            )
        path = self.bundle if self.bundle is not None else bundle_path(self.models, state.model)
        pipeline = self.load_bundle(path)
        return Loaded(
            pipeline,
            TypeCatalog.from_gallery(self.gallery_dir),
            orders,
            getattr(pipeline, "camera_size", None),
            orders_error,
        )

    def fallbacks(self, state: InForce) -> list[InForce]:
        """What to run when ``state`` cannot be loaded at start: the versions successive rollbacks would put back,
        then the shipped bundle (none for a station given a bundle).

        Raises:
            models.registry.RegistryError: the registry is damaged.
        """
        from models.registry import SHIPPED, load_registry, rollback_chain

        if self.bundle is not None:
            return []
        chain = [*rollback_chain(load_registry(self.models), 10), SHIPPED]
        return [replace(state, model=name) for name in dict.fromkeys(chain) if name != state.model]


@dataclass(frozen=True)
class Started:
    """What a station starts with (:func:`start_in_force`).

    Attributes:
        loaded: the parts loaded.
        state: what they were loaded for (what runs, which the follower then compares with what is in force).
        problem: ``""``, or the sentence saying that what is in force could not be loaded and what runs instead.
        detail: the error behind ``problem``.
    """

    loaded: Loaded
    state: InForce
    problem: str = ""
    detail: str = ""


def start_in_force(feed: RegistryFeed) -> Started:
    """Load what is in force; when the model in force cannot be loaded (a damaged bundle, files missing from a
    share), the one a rollback would put back, and so on down to the shipped bundle, so that one bad promotion does
    not keep every station of a site from starting; when a site's shared registry is not there at all, the shipped
    bundle. The follower keeps trying the one in force.

    Raises:
        FileNotFoundError, ValueError: nothing loads (the station's gallery is missing, say): the first error.
    """
    from models.registry import SHIPPED, RegistryMissing

    try:
        state = feed.in_force()
    except RegistryMissing as err:  # the share is away: start on the shipped bundle, say so, follow once it is back
        state = feed.state_for(SHIPPED)
        _log.error("%s; the shipped bundle runs until it can be read", err)
        return Started(
            feed.load(state), state, "no model registry (is the share mounted?); the shipped bundle runs", str(err)
        )
    try:
        return Started(feed.load(state), state)
    except (FileNotFoundError, ValueError) as err:
        first = err
    for other in feed.fallbacks(state):
        try:
            loaded = feed.load(other)
        except (FileNotFoundError, ValueError) as err:
            _log.error("model %s could not be loaded either (%s)", other.model, err)
            continue
        why = f"{first.__class__.__name__}: {first}"
        _log.error("model %s could not be loaded (%s); %s runs instead", state.model, why, other.model)
        return Started(loaded, other, f"model {state.model} could not be loaded; {other.model} runs instead", why)
    raise first


@dataclass(frozen=True)
class _Ask:
    """Tag of the background call that reads what is in force."""


@dataclass(frozen=True)
class _Load:
    """Tag of the background call that loads ``state``."""

    state: InForce


@dataclass(frozen=True)
class _Orders:
    """Tag of the background call that reads ``orders.csv`` alone (:func:`_orders_since`), while what else is in
    force cannot be loaded or the registry read."""


def _orders_since(feed: StationFeed, since: InForce) -> tuple[str, Loaded] | None:
    """The stamp of ``orders.csv`` and the orders read from it, or ``None`` when its stamp is still ``since``'s.

    Args:
        feed: the station's feed.
        since: what runs (its model and set-up stay: only the orders are read, so nothing else is loaded).
    """
    stamp = feed.orders_stamp()
    if stamp == since.orders:
        return None
    return stamp, feed.load(replace(since, orders=stamp), since)


def _without_orders(state: InForce) -> InForce:
    """``state`` less its orders' stamp: what a failed load is remembered by, since a new ``orders.csv`` does not
    make a model or gallery that failed load any better."""
    return replace(state, orders="")


class ModelFollower(QObject):
    """Polls a :class:`StationFeed` and loads what was put in force, off the GUI thread.

    Args:
        feed: what is in force, and how to load it.
        state: what the station runs now.
        clock: monotonic seconds (for :data:`RETRY_S`).
        interval_s: seconds between polls (``0``: no timer; :meth:`poll` is called by hand).

    Signals:
        pipeline_loaded(str, object): the model's name and its pipeline, for the worker to swap in; emitted before
            ``setup_loaded``, so a type the new catalogue offers is only ever checked by the pipeline that knows it.
        setup_loaded(object): the :class:`Loaded` parts, for the window (catalogue, orders, camera size).
        problem(str, str): a sentence for the status bar (the registry cannot be read, or something cannot be
            loaded; ``""`` once what runs is in force again) and the error behind it.
        load_ended(): a load finished or failed (:attr:`loading` is ``None`` again).
    """

    pipeline_loaded = Signal(str, object)
    setup_loaded = Signal(object)
    problem = Signal(str, str)
    load_ended = Signal()
    _submit = Signal(object)

    def __init__(
        self, feed: StationFeed, state: InForce, *, clock: Clock = time.monotonic, interval_s: float = MODEL_CHECK_S
    ) -> None:
        super().__init__()
        self.feed = feed
        self.state = state
        self._clock = clock
        self._busy = False
        self.loading: str | None = None  # what a load under way brings in ("model V", ...)
        self._failed: dict[InForce, float] = {}
        self._said = ""
        self._thread = BackgroundThread()
        self._submit.connect(self._thread.worker.call)
        self._thread.worker.finished.connect(self._finished)
        self._thread.worker.failed.connect(self._failed_call)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        if interval_s > 0:
            self._timer.start(int(interval_s * 1000))

    @property
    def busy(self) -> bool:
        """Whether a poll or a load is under way."""
        return self._busy

    @Slot()
    def poll(self) -> None:
        """Ask what is in force (a poll still under way is left to finish)."""
        if self._busy:
            return
        self._busy = True
        self._submit.emit(BackgroundCall(_Ask(), self.feed.in_force))

    def stop(self) -> None:
        """Stop polling and end the loading thread (a load under way finishes first)."""
        self._timer.stop()
        self._thread.stop()

    def taken_here(self, name: str = EMPTY_TRAY_FILE) -> None:
        """The window itself changed set-up file ``name`` and its pipeline already uses it (an empty-tray photo taken
        in the window): that file as it is on disk now is what runs, so the next poll loads nothing for it. Only its
        part of the stamp is taken: a type enrolled, or a calibration, since the last poll is still loaded then (and
        a gallery that failed to load is still said to)."""
        self.state = replace(self.state, setup=restamp(self.state.setup, self.feed.stamp(), name))

    def say(self, text: str, why: str = "") -> None:
        """Report a problem (``""``: none any more) on ``problem``, once: the same sentence again is not repeated. The
        window reports a start on a fallback model this way, so that the warning goes once the registry names the
        model that runs."""
        if text != self._said:
            self._said = text
            self.problem.emit(text, why)

    @Slot(object, object)
    def _finished(self, tag: object, result: object) -> None:
        if isinstance(tag, _Ask):
            assert isinstance(result, InForce)
            tried = self._failed.get(_without_orders(result))
            if result == self.state and self._said:  # put back as it was: nothing is wrong any more
                self.say("")
            if result == self.state:
                self._busy = False
                return
            if tried is not None and self._clock() - tried < RETRY_S:  # not yet again; the orders all the same
                self._read_orders(result.orders != self.state.orders)
                return
            self.loading = _what(result, self.state)
            _log.info("%s put in force; loading it (%s runs meanwhile)", self.loading, self.state.model)
            since = self.state
            self._submit.emit(BackgroundCall(_Load(result), lambda: self.feed.load(result, since)))
            return
        if isinstance(tag, _Load):
            assert isinstance(result, Loaded)
            self.loading = None
            _log.info("%s loaded; it replaces what ran", _what(tag.state, self.state))
            self.state = tag.state
            self._failed.clear()
            self.say("")  # whatever failed before is what runs now
            self._busy = False
            if result.pipeline is not None:
                self.pipeline_loaded.emit(tag.state.model, result.pipeline)
            self.setup_loaded.emit(result)
            self.load_ended.emit()
            return
        if isinstance(tag, _Orders):
            self._busy = False
            if result is None:
                return
            assert isinstance(result, tuple)
            stamp, loaded = result
            _log.info("the station's new orders read (what else is in force cannot be loaded or read)")
            self.state = replace(self.state, orders=stamp)  # the warning, and what failed, stay
            self.setup_loaded.emit(loaded)

    def _read_orders(self, changed: bool = True) -> None:
        """Read ``orders.csv`` alone off the GUI thread when it may have ``changed`` (a poll or load that failed, or
        one not tried again yet): the orders are the window's whatever the model, gallery or registry."""
        if not changed:
            self._busy = False
            return
        self._busy = True
        since = self.state
        self._submit.emit(BackgroundCall(_Orders(), lambda: _orders_since(self.feed, since)))

    @Slot(object, object)
    def _failed_call(self, tag: object, error: object) -> None:
        self._busy = False
        why = f"{error.__class__.__name__}: {error}"
        if isinstance(tag, _Load):
            self._failed[_without_orders(tag.state)] = self._clock()
            what = _what(tag.state, self.state)
            _log.error("%s could not be loaded (%s); what ran stays in force", what, why)
            stays = f"{self.state.model} stays in force" if tag.state.model != self.state.model else "the old ones stay"
            self.say(f"{what} could not be loaded; {stays}", why)
            self.loading = None
            self._read_orders(tag.state.orders != self.state.orders)
            self.load_ended.emit()
        elif isinstance(tag, _Ask):
            _log.warning("the model registry cannot be read (%s); %s stays in force", why, self.state.model)
            self.say(f"the model registry cannot be read; {self.state.model} stays in force", why)
            self._read_orders()  # its stamp is not known: the call looks
        elif isinstance(tag, _Orders):
            _log.error("orders.csv could not be read again (%s); the orders read before stay in use", why)


def _what(new: InForce, old: InForce) -> str:
    """``"model V"`` when the model changed, else the station's files that did."""
    if new.model != old.model:
        return f"model {new.model}"
    if new.setup != old.setup:
        return "the station's new gallery or camera set-up"
    return "the station's new orders"
