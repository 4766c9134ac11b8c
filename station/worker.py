"""Inference and database writes off the GUI thread.

:class:`InferenceWorker` lives in a ``QThread`` of its own (:func:`start_worker`). The window sends it a
:class:`CheckRequest` through a queued signal; the worker runs the pipeline, reports the verdict at once
(``verdict_ready``), then logs it to the verdict log and reports the database state (``stored``). The pipeline
and the repository are injected; anything with ``run(frame, expected_type) -> Verdict`` and
``log_verdict(record)`` / ``pending_count()`` will do.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from db.records import VerdictRecord
from models.reasons import only_the_camera
from models.types import Decision, Frame, UInt8Array, Verdict

JPEG_QUALITY = 90
THUMB_MARGIN = 0.08

_log = logging.getLogger(__name__)


class VerdictSource(Protocol):
    """The pipeline as the station sees it (``models.pipeline.Pipeline`` fits)."""

    def run(self, frame: Frame, expected_type: str, *, expected_count: int | None = None) -> Verdict:
        """Judge one cup (``expected_count``: the coins the order asks for, when it says)."""
        ...


@runtime_checkable
class ObservingSource(Protocol):
    """A pipeline that can show what it judged of each coin (``models.pipeline.Pipeline`` fits): the worker then
    logs the crops it embedded, their masks and embeddings, which the nightly retrain learns from as the pipeline
    saw them, rather than boxes cut from the photograph."""

    preprocess: Any

    def check_type(self, expected_type: str) -> int:
        """Raise for a type that is not enrolled."""
        ...

    def observe(self, frame: Frame) -> Any:
        """Detect, cut and embed the coins of a frame."""
        ...

    def decide(self, obs: Any, expected_type: str, *, expected_count: int | None = None) -> Verdict:
        """The verdict on an observed cup."""
        ...


@dataclass(frozen=True)
class CoinCuts:
    """What the pipeline judged of each coin, by its instance index, for the verdict log.

    Attributes:
        crops_jpeg: the crop it embedded (cut square around the fitted circle, background removed).
        masks_png: the crop's coin pixels.
        embeddings: the embedding it judged by.
    """

    crops_jpeg: dict[int, bytes]
    masks_png: dict[int, bytes]
    embeddings: dict[int, np.ndarray]


def coin_cuts(frame: Frame, obs: Any, crop_size: int) -> CoinCuts:
    """The crops, masks and embeddings of an observation's coins (``models.pipeline.Observation``)."""
    from models.crops import cut_crops

    crops = cut_crops(frame, [obs.instances[k] for k in obs.coin_idx], size=crop_size)
    return CoinCuts(
        {k: encode_jpeg(c.image) for k, c in zip(obs.coin_idx, crops, strict=True)},
        {k: encode_png(c.mask) for k, c in zip(obs.coin_idx, crops, strict=True)},
        {k: np.asarray(obs.coins.embeddings[j]) for j, k in enumerate(obs.coin_idx)},
    )


class VerdictSink(Protocol):
    """Where verdicts go (``db.spool.SpoolingRepository`` fits): ``None`` from ``log_verdict`` means journalled."""

    def log_verdict(self, record: VerdictRecord) -> int | None:
        """Store one verdict; return its id, or ``None`` when it waits in the local journal."""
        ...

    def pending_count(self) -> int:
        """Verdicts waiting in the local journal."""
        ...

    def replay(self) -> list[int]:
        """Send the journalled verdicts to the database; raises while it is still unreachable."""
        ...


class DbState(StrEnum):
    """What the status bar says about the database."""

    UNKNOWN = "unknown"
    CONNECTED = "connected"
    SPOOLING = "spooling"
    ERROR = "error"


class RecheckWhy(StrEnum):
    """Why the same cup is checked again."""

    TURNED = "turned"
    """The FLAG asked for coins to be turned over first, and the operator turned them."""
    CAMERA = "camera"
    """The FLAG's only reason was the camera, which was not as it was set up; it is again."""


@dataclass(frozen=True)
class Recheck:
    """The earlier check of the cup in view: a FLAG that asked for coins to be turned over first, or one given for
    the camera alone.

    Attributes:
        key: that check's idempotency key (its :attr:`CheckRequest.key`).
        n_coins: the coins and objects it found; a photograph with another count is another cup, not this one
            checked again.
        why: what the operator did since.
        turned: the cup has had its one turn (this re-check's, or an earlier one's): a FLAG now goes to a person.
    """

    key: str
    n_coins: int
    why: RecheckWhy = RecheckWhy.TURNED
    turned: bool = True


@dataclass(frozen=True)
class CheckRequest:
    """One cup to check.

    Attributes:
        frame: the photographed cup.
        expected_type: the type the order asks for.
        order: the order number, if one was entered.
        operator: the operator's registered name.
        station: the station's name.
        auto: started by the stillness gate, not by a person; one that finds no coin (the table is empty after a
            cup was taken away) is dropped instead of logged.
        recheck: the earlier check this one follows, when the operator was asked to turn coins over and check the
            same cup again; ``None`` for a new cup.
        key: the verdict's idempotency key in the verdict log, made here so a later re-check can name it.
        expected_count: how many coins the order asks for (``None``: it does not say); another number flags the cup.
    """

    frame: Frame
    expected_type: str
    order: str | None
    operator: str
    station: str
    auto: bool = False
    recheck: Recheck | None = None
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    expected_count: int | None = None


@dataclass(frozen=True)
class EmptyTrayRequest:
    """A frame to keep as the station's empty-tray photo, and the station home to store it in."""

    frame: Frame
    home: Path


@dataclass(frozen=True)
class CheckResult:
    """A verdict with the request that produced it and the wall time it took (milliseconds)."""

    request: CheckRequest
    verdict: Verdict
    elapsed_ms: float
    cuts: CoinCuts | None = None

    @property
    def answers(self) -> str | None:
        """The key of the earlier check this one answers: the one its request names, when the same number of coins
        was found (another count is another cup); ``None`` for a new cup."""
        earlier = self.request.recheck
        return earlier.key if earlier is not None and earlier.n_coins == len(self.verdict.coins) else None

    @property
    def is_recheck(self) -> bool:
        """Whether this check answers an earlier one (:attr:`answers`)."""
        return self.answers is not None

    @property
    def answered(self) -> Recheck | None:
        """The earlier check this one answers (:attr:`answers`), ``None`` for a new cup."""
        return self.request.recheck if self.is_recheck else None

    @property
    def turned(self) -> bool:
        """Whether the cup was checked with its coins turned as an earlier FLAG asked (its one turn is spent)."""
        earlier = self.answered
        return earlier is not None and earlier.turned

    def follow_up(self) -> Recheck | None:
        """What the next check of this cup answers: a FLAG given for the camera alone is checked again once the
        camera is as it was set up; a FLAG that asks to turn coins first, once they are turned (one turn per cup);
        ``None``: the next check is a new cup's."""
        verdict = self.verdict
        if verdict.decision is not Decision.FLAG:
            return None
        if only_the_camera(verdict.reasons):
            return Recheck(self.request.key, len(verdict.coins), RecheckWhy.CAMERA, turned=self.turned)
        if verdict.turn_first and not self.turned:
            return Recheck(self.request.key, len(verdict.coins))
        return None


@dataclass(frozen=True)
class StoreResult:
    """What became of a verdict's database write.

    Attributes:
        state: connected (stored), spooling (journalled locally) or error (refused).
        verdict_id: the stored verdict's id, ``None`` when journalled or refused.
        pending: verdicts waiting in the journal after this write.
        message: the error for ``state == ERROR``; for ``SPOOLING``, what the journal waits for (``"database"``,
            ``"image share"``).
    """

    state: DbState
    verdict_id: int | None
    pending: int
    message: str = ""


def model_version(pipeline: object) -> str:
    """The version a pipeline records with its verdicts (``version`` or ``model_version``; ``""`` when it has none)."""
    return str(getattr(pipeline, "version", "") or getattr(pipeline, "model_version", "") or "")


def _camera_size(pipeline: object) -> tuple[int, int] | None:
    """``(width, height)`` a pipeline says the camera was set up at (``camera_size``), ``None`` when it does not."""
    size = getattr(pipeline, "camera_size", None)
    return None if size is None else (int(size[0]), int(size[1]))


def encode_jpeg(image: UInt8Array, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of a ``(H, W, 3)`` uint8 BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def encode_png(mask: np.ndarray) -> bytes:
    """PNG bytes of a boolean mask (255 where true)."""
    ok, buf = cv2.imencode(".png", np.asarray(mask, np.uint8) * 255)
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise ValueError("PNG encoding failed")
    return bytes(buf.tobytes())


def decode(data: bytes) -> UInt8Array | None:
    """Decode JPEG/PNG bytes (a stored photograph or crop) to ``(H, W, 3)`` uint8 BGR, ``None`` when they are not
    an image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, np.uint8)


def cut_thumbnail(
    image: UInt8Array, bbox: tuple[float, float, float, float], margin: float = THUMB_MARGIN
) -> UInt8Array:
    """The part of ``image`` inside ``bbox`` (``x1, y1, x2, y2``) widened by ``margin`` of its size, clipped.

    Returns:
        ``(h, w, 3)`` uint8, at least 1×1.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = bbox
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    a = int(np.clip(np.floor(x1 - mx), 0, w - 1))
    b = int(np.clip(np.floor(y1 - my), 0, h - 1))
    c = int(np.clip(np.ceil(x2 + mx), a + 1, w))
    d = int(np.clip(np.ceil(y2 + my), b + 1, h))
    return np.ascontiguousarray(image[b:d, a:c])


def make_record(result: CheckResult) -> VerdictRecord:
    """The verdict log's record for a check: the photograph and one crop per coin, JPEG-encoded, under the
    request's key, linked to the earlier check it answers (:attr:`CheckResult.answers`)."""
    req, verdict, cuts = result.request, result.verdict, result.cuts
    image = req.frame.image
    if cuts is None:  # a pipeline that shows nothing of what it judged: the boxes as the photograph shows them
        cuts = CoinCuts({c.index: encode_jpeg(cut_thumbnail(image, c.bbox, 0.0)) for c in verdict.coins}, {}, {})
    return VerdictRecord.from_verdict(
        verdict,
        encode_jpeg(image),
        station=req.station,
        operator=req.operator,
        order=req.order,
        crops_jpeg=cuts.crops_jpeg,
        masks_png=cuts.masks_png,
        embeddings=cuts.embeddings,
        idempotency_key=req.key,
        recheck_of=result.answers,
    )


class InferenceWorker(QObject):
    """Runs the pipeline and writes verdicts; lives in its own thread.

    Signals:
        verdict_ready(CheckResult): a cup was judged.
        check_failed(str): the pipeline raised; the message is for the operator.
        stored(StoreResult): the verdict was written, journalled, or refused.
        nothing_seen(CheckRequest): an automatic check found no coin; nothing was logged.
        empty_tray_done(bool, str, object): an empty-tray photo was stored (``True``) or refused, with a sentence,
            and the ``(width, height)`` the pipeline now says the camera was set up at (``None``: nothing says; a
            station never calibrated takes it from its empty-tray photo, so the window learns it here).
        model_changed(str): a pipeline of another version was swapped in (:meth:`use_pipeline`); the string is its
            version.
        camera_seen(object): the answer to :meth:`look_at_camera`: a :class:`calibration.movement.CameraMove`, or
            ``None`` when the pipeline has no set-up photo to compare with (nothing to tell by: not emitted).
    """

    verdict_ready = Signal(object)
    check_failed = Signal(str)
    stored = Signal(object)
    nothing_seen = Signal(object)
    empty_tray_done = Signal(bool, str, object)
    model_changed = Signal(str)
    camera_seen = Signal(object)

    def __init__(self, pipeline: VerdictSource, sink: VerdictSink) -> None:
        super().__init__()
        self._pipeline = pipeline
        self._sink = sink

    @Slot(object)
    def check(self, request: CheckRequest) -> None:
        """Judge ``request`` and log the verdict (runs in the worker's thread)."""
        t0 = time.perf_counter()
        pipeline, obs = self._pipeline, None
        try:
            if isinstance(pipeline, ObservingSource):  # as Pipeline.run, keeping what it judged of each coin
                pipeline.check_type(request.expected_type)
                obs = pipeline.observe(request.frame)
                verdict = pipeline.decide(obs, request.expected_type, expected_count=request.expected_count)
            else:
                verdict = pipeline.run(request.frame, request.expected_type, expected_count=request.expected_count)
        except Exception as err:  # the operator must see every failure, not a frozen window
            _log.exception("check failed")
            self.check_failed.emit(f"{err.__class__.__name__}: {err}")
            return
        if request.auto and not verdict.coins:  # nothing at all in view, not even an object
            self.nothing_seen.emit(request)
            return
        result = CheckResult(request, verdict, (time.perf_counter() - t0) * 1000.0)
        self.verdict_ready.emit(result)
        if obs is not None and isinstance(pipeline, ObservingSource):  # cut for the log once the verdict is shown
            result = replace(result, cuts=coin_cuts(request.frame, obs, pipeline.preprocess.crop_size))
        self.stored.emit(self._store(result))

    @property
    def pipeline(self) -> VerdictSource:
        """The pipeline the next cup is judged with."""
        return self._pipeline

    @Slot(str, object)
    def use_pipeline(self, name: str, pipeline: VerdictSource) -> None:
        """Judge the next cups with ``pipeline`` (model ``name``); runs in the worker's thread, so never mid-check.
        ``model_changed`` is emitted when its version is another than the pipeline's it replaces."""
        before = model_version(self._pipeline)
        self._pipeline = pipeline
        version = model_version(pipeline) or name
        if version != before:
            self.model_changed.emit(version)

    @Slot(object)
    def look_at_camera(self, frame: Frame) -> None:
        """Compare a live frame with the set-up photo's view (a camera moved since it was set up), between checks in
        the worker's thread, which owns the pipeline and its set-up view."""
        view = getattr(self._pipeline, "setup_view", None)
        if view is None:
            self.camera_seen.emit(None)
            return
        try:
            move = view.compare(frame.image)
        except Exception:  # a status-bar hint; the check itself compares again and reports any failure
            _log.exception("comparing the camera's view failed")
            return
        if move is not None:
            self.camera_seen.emit(move)

    @Slot(object)
    def take_empty_tray(self, request: EmptyTrayRequest) -> None:
        """Check, store and use a new empty-tray photo (runs in the worker's thread, between checks)."""
        from station.empty_tray import EmptyTrayError, record_empty_tray

        pipeline = self._pipeline
        try:
            message = record_empty_tray(pipeline, request.frame, request.home)
        except EmptyTrayError as err:
            self.empty_tray_done.emit(False, str(err)[0].upper() + str(err)[1:] + ".", _camera_size(pipeline))
            return
        except Exception as err:  # a full disk, a detector failure: the operator must see it
            _log.exception("empty-tray photo failed")
            said = f"The empty-tray photo failed: {err.__class__.__name__}: {err}"
            self.empty_tray_done.emit(False, said, _camera_size(pipeline))
            return
        self.empty_tray_done.emit(True, message, _camera_size(pipeline))

    def _store(self, result: CheckResult) -> StoreResult:
        try:
            verdict_id = self._sink.log_verdict(make_record(result))
        except Exception as err:  # refused outright (not an outage: the spool handles those)
            _log.exception("verdict refused by the database")
            return StoreResult(DbState.ERROR, None, self._pending(), f"{err.__class__.__name__}: {err}")
        pending = self._pending()
        state = DbState.SPOOLING if verdict_id is None or pending else DbState.CONNECTED
        return StoreResult(state, verdict_id, pending, self._waiting_on() if state is DbState.SPOOLING else "")

    @Slot()
    def flush(self) -> None:
        """Send journalled verdicts to the database if any wait; report the state only when some did."""
        if not self._pending():
            return
        try:
            self._sink.replay()
        except Exception as err:  # still unreachable: keep spooling, say so again
            _log.info("still unreachable (%s); %d verdicts wait", err.__class__.__name__, self._pending())
            self.stored.emit(StoreResult(DbState.SPOOLING, None, self._pending(), self._waiting_on()))
            return
        pending = self._pending()
        state = DbState.SPOOLING if pending else DbState.CONNECTED
        self.stored.emit(StoreResult(state, None, pending, self._waiting_on() if pending else ""))

    def _waiting_on(self) -> str:
        """What journalled verdicts wait for (``"database"`` or ``"image share"``), as the sink says."""
        return str(getattr(self._sink, "waiting_on", "") or "")

    def _pending(self) -> int:
        try:
            return int(self._sink.pending_count())
        except Exception:  # pragma: no cover - the journal is a local file
            return 0


def join_thread(thread: QThread, patience_ms: int = 10_000) -> None:
    """Ask ``thread``'s event loop to end and wait until it has, however long the call in progress takes.

    A ``QThread`` destroyed while it runs aborts the process, and what its call was doing (a verdict being
    written, an enrolment) would be lost; every call made here ends (database calls have a connect timeout), so
    the wait is only logged once it passes ``patience_ms``.
    """
    if not thread.isRunning():
        return
    thread.quit()
    if not thread.wait(patience_ms):
        _log.warning("%s is still busy after %.1f s; waiting for it to finish", thread.objectName(), patience_ms / 1000)
        thread.wait()


class WorkerThread:
    """A worker object with the thread it runs in; :meth:`stop` quits and joins the thread."""

    def __init__(self, worker: InferenceWorker, thread: QThread) -> None:
        self.worker = worker
        self.thread = thread

    def stop(self, patience_ms: int = 10_000) -> None:
        """Ask the thread's event loop to end and wait for it, a check or a verdict being written included
        (:func:`join_thread`)."""
        join_thread(self.thread, patience_ms)


def start_worker(pipeline: VerdictSource, sink: VerdictSink) -> WorkerThread:
    """Create an :class:`InferenceWorker` in a new, started ``QThread``."""
    thread = QThread()
    thread.setObjectName("cupcheck-inference")
    worker = InferenceWorker(pipeline, sink)
    worker.moveToThread(thread)
    thread.start()
    return WorkerThread(worker, thread)


@dataclass(frozen=True)
class BackgroundCall:
    """Work to do off the GUI thread (a database write, an enrolment): ``fn()``, and a tag to recognise its answer."""

    tag: object
    fn: Callable[[], object]


class LatestReads:
    """Reads handed to a background thread where only the newest read of each kind is drawn.

    Each read's tag is a frozen dataclass with a ``ticket`` field from :meth:`ticket`; a click that asks again
    (another cup, the table once more) makes the earlier answers of that kind stale, so a slow answer never
    draws over a newer one.

    Args:
        send: hands a :class:`BackgroundCall` to the thread (a signal's ``emit``).
        kinds: the tag classes.
    """

    def __init__(self, send: Callable[[BackgroundCall], object], kinds: Sequence[type]) -> None:
        self._send = send
        self._tickets = dict.fromkeys(kinds, 0)
        self._in_flight = 0

    @property
    def busy(self) -> bool:
        """Whether a read is on its way (its answer not come yet)."""
        return self._in_flight > 0

    def ticket(self, kind: type) -> int:
        """The next ticket of ``kind``: from now on, the earlier ones are stale."""
        self._tickets[kind] += 1
        return self._tickets[kind]

    def ask(self, tag: Any, read: Callable[[], object]) -> None:
        """Hand ``read`` to the thread under ``tag``."""
        self._in_flight += 1
        self._send(BackgroundCall(tag, read))

    def fresh(self, tag: object) -> bool:
        """An answer came for ``tag``: whether it is one of these reads and the newest of its kind."""
        kind = type(tag)
        if kind not in self._tickets:
            return False
        self._in_flight -= 1
        return bool(getattr(tag, "ticket", None) == self._tickets[kind])


class BackgroundWorker(QObject):
    """Makes :class:`BackgroundCall` s in its own thread, so a slow database or a long job never freezes a window.

    Signals:
        finished(tag, result): the call returned.
        failed(tag, error): the call raised; ``error`` is the exception.
    """

    finished = Signal(object, object)
    failed = Signal(object, object)

    @Slot(object)
    def call(self, call: BackgroundCall) -> None:
        """Make the call (runs in the worker's thread)."""
        try:
            result = call.fn()
        except Exception as err:  # handed to the window, which says what went wrong
            self.failed.emit(call.tag, err)
            return
        self.finished.emit(call.tag, result)


class BackgroundThread:
    """A :class:`BackgroundWorker` with its running thread; :meth:`stop` joins it."""

    def __init__(self, name: str = "cupcheck-background") -> None:
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.worker = BackgroundWorker()
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self, patience_ms: int = 10_000) -> None:
        """Let the call in progress finish, then end the thread (:func:`join_thread`)."""
        join_thread(self.thread, patience_ms)
