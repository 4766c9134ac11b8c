"""The camera pump: polls a frame source on a timer in its own thread and reports frames and camera state.

Signals carry :class:`~models.types.Frame` objects to the window; ``camera_lost`` fires once when the source
stops delivering (a camera that sends the same picture over and over is one: the source says so) and
``camera_restored`` once when it delivers again. The measured frame rate is reported about once a second of the
injected clock.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from station.camera import Clock, FrameSource


class CameraPump(QObject):
    """Reads ``source`` every ``1 / fps`` seconds.

    Signals:
        frame_ready(Frame): a frame to show.
        camera_lost(str): the source stopped delivering; the text says which camera, and why when the source knows
            (``"webcam 0 — the camera sends the same picture: frozen"``).
        camera_restored(): the source delivers again.
        fps_measured(float): frames delivered per second over the last second or so.
    """

    frame_ready = Signal(object)
    camera_lost = Signal(str)
    camera_restored = Signal()
    fps_measured = Signal(float)

    def __init__(self, source: FrameSource, fps: float = 15.0, *, clock: Clock = time.monotonic) -> None:
        super().__init__()
        self._source = source
        self._interval_ms = max(1, round(1000.0 / fps))
        self._clock = clock
        self._timer: QTimer | None = None
        self._lost = False
        self._count = 0
        self._since = clock()

    @property
    def source(self) -> FrameSource:
        """The frame source."""
        return self._source

    @Slot()
    def start(self) -> None:
        """Start polling (call in the pump's own thread)."""
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.setInterval(self._interval_ms)
            self._timer.timeout.connect(self.tick)
        self._since = self._clock()
        self._timer.start()

    @Slot()
    def stop(self) -> None:
        """Stop polling and release the source (call in the pump's thread; it hands the pump back to the GUI's)."""
        if self._timer is not None:
            self._timer.stop()
        self._source.close()
        app = QCoreApplication.instance()
        if app is not None and self.thread() is not app.thread():
            self.moveToThread(app.thread())

    @Slot()
    def tick(self) -> None:
        """Read one frame and report it and any change of camera state."""
        try:
            frame = self._source.read()
        except Exception:  # a broken driver must not end the preview; treat it as a lost camera
            frame = None
        lost = frame is None
        if lost and not self._lost:
            self.camera_lost.emit(self._lost_text())
        elif not lost and self._lost:
            self.camera_restored.emit()
        self._lost = lost
        if frame is not None:
            self._count += 1
            self.frame_ready.emit(frame)
        now = self._clock()
        if now - self._since >= 1.0:
            self.fps_measured.emit(self._count / (now - self._since))
            self._count = 0
            self._since = now

    def _lost_text(self) -> str:
        """The camera's name, and why it is lost when its source says (``lost_reason``, which not every source has)."""
        why = str(getattr(self._source, "lost_reason", "") or "")
        return f"{self._source.name} — {why}" if why else self._source.name


class PumpThread:
    """A camera pump with its thread; :meth:`stop` stops the pump in its thread, then ends the thread."""

    def __init__(self, pump: CameraPump, thread: QThread) -> None:
        self.pump = pump
        self.thread = thread

    def stop(self, timeout_ms: int = 5000) -> None:
        """Stop polling, release the camera and join the thread."""
        if self.thread.isRunning():
            self.thread.quit()
            self.thread.wait(timeout_ms)


def start_pump(source: FrameSource, fps: float, *, clock: Clock = time.monotonic) -> PumpThread:
    """Create a :class:`CameraPump` in a new thread and start polling."""
    thread = QThread()
    thread.setObjectName("cupcheck-camera")
    pump = CameraPump(source, fps, clock=clock)
    pump.moveToThread(thread)
    thread.started.connect(pump.start)
    thread.finished.connect(pump.stop, Qt.ConnectionType.DirectConnection)
    thread.start()
    return PumpThread(pump, thread)
