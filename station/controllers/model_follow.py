"""A running station follows the registry's model in force.

The nightly retrain promotes a model in a registry (a station's own under its home, or a site's shared one: ``models``
in the station TOML), and a supervisor may promote another or roll back with ``cupcheck models``. A station window
left running would keep the model it started with; :class:`ModelFollower` asks its :class:`ModelFeed` every
:data:`MODEL_CHECK_S` which model is in force and, when that changed, loads it off the GUI thread (a check in
progress goes on) and hands it on (``loaded``) to the inference worker, which swaps it in between two checks. A
model that cannot be loaded leaves the one in force running and is said once (``problem``); it is tried again
after :data:`RETRY_S`, or at once when the registry names another one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from station.camera import Clock
from station.worker import BackgroundCall, BackgroundThread, VerdictSource

MODEL_CHECK_S = 60.0
"""How often a running station asks which model is in force."""
RETRY_S = 600.0
"""How long a model that failed to load waits before it is tried again."""

_log = logging.getLogger(__name__)


class ModelFeed(Protocol):
    """Where a station's model comes from (:class:`RegistryFeed` reads a registry)."""

    def in_force(self) -> str:
        """The name of the model in force now."""
        ...

    def load(self, name: str) -> VerdictSource:
        """The pipeline of model ``name``, ready to judge cups."""
        ...


@dataclass(frozen=True)
class RegistryFeed:
    """The model in force in the registry under ``models`` (:mod:`models.registry`).

    Attributes:
        models: the folder whose ``models/`` holds the registry (the home, or a site's shared folder).
        load_bundle: builds the station's pipeline from a bundle JSON (``None``: the shipped bundle), with the
            station's gallery, calibration and settings.
    """

    models: Path
    load_bundle: Callable[[Path | None], VerdictSource] = field(repr=False)

    def in_force(self) -> str:
        """The registered version in force, or ``shipped``.

        Raises:
            models.registry.RegistryError: the registry is damaged.
        """
        from models.registry import SHIPPED, load_registry

        return load_registry(self.models).current or SHIPPED

    def load(self, name: str) -> VerdictSource:
        """The pipeline of version ``name`` (``shipped``: the shipped bundle).

        Raises:
            models.registry.RegistryError: the version has no bundle.
            FileNotFoundError, ValueError: the bundle or the station's gallery is missing or damaged.
        """
        from models.registry import bundle_path

        return self.load_bundle(bundle_path(self.models, name))


@dataclass(frozen=True)
class _Ask:
    """Tag of the background call that reads which model is in force."""


@dataclass(frozen=True)
class _Load:
    """Tag of the background call that loads model ``name``."""

    name: str


class ModelFollower(QObject):
    """Polls a :class:`ModelFeed` and loads the model put in force, off the GUI thread.

    Args:
        feed: which model is in force, and how to load one.
        name: the name of the model the station runs now.
        clock: monotonic seconds (for :data:`RETRY_S`).
        interval_s: seconds between polls (``0``: no timer; :meth:`poll` is called by hand).

    Signals:
        loaded(str, object): model ``name`` was loaded; the object is its pipeline, for the worker to swap in.
        problem(str): a sentence for the status bar: the registry cannot be read, or a model cannot be loaded;
            ``""`` once the registry names the model running again.
    """

    loaded = Signal(str, object)
    problem = Signal(str)
    _submit = Signal(object)

    def __init__(
        self, feed: ModelFeed, name: str, *, clock: Clock = time.monotonic, interval_s: float = MODEL_CHECK_S
    ) -> None:
        super().__init__()
        self.feed = feed
        self.name = name
        self._clock = clock
        self._busy = False
        self._failed: dict[str, float] = {}
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
        """Ask which model is in force (a poll still under way is left to finish)."""
        if self._busy:
            return
        self._busy = True
        self._submit.emit(BackgroundCall(_Ask(), self.feed.in_force))

    def stop(self) -> None:
        """Stop polling and end the loading thread (a load under way finishes first)."""
        self._timer.stop()
        self._thread.stop()

    def _say(self, text: str) -> None:
        if text != self._said:
            self._said = text
            self.problem.emit(text)

    @Slot(object, object)
    def _finished(self, tag: object, result: object) -> None:
        if isinstance(tag, _Ask):
            name = str(result)
            tried = self._failed.get(name)
            if name == self.name and self._said:  # put back in the registry: nothing is wrong any more
                self._say("")
            if name == self.name or (tried is not None and self._clock() - tried < RETRY_S):
                self._busy = False
                return
            _log.info("model %s put in force in the registry; loading it (%s runs meanwhile)", name, self.name)
            self._submit.emit(BackgroundCall(_Load(name), lambda: self.feed.load(name)))
            return
        if isinstance(tag, _Load):
            _log.info("model %s loaded; it replaces %s", tag.name, self.name)
            self.name = tag.name
            self._failed.pop(tag.name, None)
            self._said = ""  # the window's model label starts afresh with the new model
            self._busy = False
            self.loaded.emit(tag.name, result)

    @Slot(object, object)
    def _failed_call(self, tag: object, error: object) -> None:
        self._busy = False
        why = f"{error.__class__.__name__}: {error}"
        if isinstance(tag, _Load):
            self._failed[tag.name] = self._clock()
            _log.error("model %s could not be loaded (%s); %s stays in force", tag.name, why, self.name)
            self._say(f"model {tag.name} could not be loaded ({why}); {self.name} stays in force")
        elif isinstance(tag, _Ask):
            _log.warning("the model registry cannot be read (%s); %s stays in force", why, self.name)
            self._say(f"the model registry cannot be read ({why}); {self.name} stays in force")
