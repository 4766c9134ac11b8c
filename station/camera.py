"""Frame sources: a webcam or stream through OpenCV, a folder of images replayed, and a synthetic cup simulator.

Every source answers :meth:`FrameSource.read` with a :class:`~models.types.Frame` or ``None`` (no frame now) and
says through :attr:`FrameSource.lost` whether the camera is currently unavailable. Time comes from an injected
clock (``time.monotonic`` by default) so tests replay frames and step through a reconnection without sleeping.
No Qt here: :mod:`station.controllers.preview` polls a source from a worker thread and turns its state into
signals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from models.frames import read_frame
from models.types import Frame, UInt8Array
from station.config import CameraConfig

Clock = Callable[[], float]
"""Returns seconds (monotonic)."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
FROZEN_S = 2.0
"""A webcam that hands out byte-identical frames this long is frozen (its driver repeats its last buffer): a live
sensor's noise makes every frame it takes differ from the one before."""
FROZEN_STREAM_S = 10.0
"""The same for a network stream or a video file (``kind = "url"``): a compressed stream of a still scene may repeat
a decoded picture exactly until its next key frame, usually a few seconds away."""
FROZEN = "the camera sends the same picture: frozen"
"""Why a frozen camera is lost (:attr:`OpenCVSource.lost_reason`)."""
DARK_LEVEL = 16.0
"""A picture whose mean grey level (0-255) is below this is dark enough to be black (:func:`dark_picture`)."""
DARK_SPREAD = 6.0
"""... when its grey levels also spread less than this (a standard deviation, on a small averaged copy): nothing in
it stands out, not even a coin under the lamp."""
DARK_PX = 64
"""The side of the averaged copy :func:`dark_picture` measures."""

_log = logging.getLogger(__name__)


class FrameSource(Protocol):
    """Anything that hands out camera frames."""

    @property
    def name(self) -> str:
        """A short description for the status bar (``"webcam 0"``, ``"folder cups/"``)."""
        ...

    @property
    def lost(self) -> bool:
        """``True`` while the camera cannot deliver frames (unplugged, stream down)."""
        ...

    def read(self) -> Frame | None:
        """Return the newest frame, or ``None`` when there is none (see :attr:`lost`)."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a camera source uses."""

    def isOpened(self) -> bool:
        """Whether the device or stream is open."""
        ...

    def read(self) -> tuple[bool, UInt8Array | None]:
        """Grab and decode the next frame."""
        ...

    def release(self) -> None:
        """Close the device."""
        ...


def same_picture(a: UInt8Array, b: UInt8Array) -> bool:
    """Whether two frames are byte-identical (every 8th row is looked at first: a live camera's differ there)."""
    return a.shape == b.shape and np.array_equal(a[::8], b[::8]) and np.array_equal(a, b)


def dark_picture(image: UInt8Array, level: float = DARK_LEVEL, spread: float = DARK_SPREAD) -> bool:
    """Whether a ``(H, W, 3)`` uint8 BGR frame is black: its brightness and its contrast both near zero, as a lens
    cap, a cover over the camera or a dead sensor gives (dark noise, which differs from frame to frame, so the
    source does not find it frozen). Nothing can be judged on it: a cup checked on it would show no coins.

    The frame is averaged down to :data:`DARK_PX` pixels a side first, so a sensor's noise does not count as
    contrast."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (DARK_PX, DARK_PX), interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(small.mean()) < level and float(small.std()) < spread


class OpenCVSource:
    """A webcam (by index) or a stream or video file (by URL) read through ``cv2.VideoCapture``.

    When a read fails the source becomes :attr:`lost`, releases the capture and tries to reopen it every
    ``reconnect_s`` seconds of the injected clock; the first good frame after that clears :attr:`lost`. A camera
    that sends the same picture, byte for byte, for ``frozen_s`` is lost the same way (it no longer shows what lies
    under it), and stays lost while it is reopened onto that picture. The folder and simulator sources, which show
    a still picture on purpose, are never called frozen.

    Args:
        target: the device index or the URL / file path.
        clock: monotonic seconds.
        reconnect_s: seconds between reopen attempts.
        width: requested capture width, ``None`` for the default.
        height: requested capture height.
        opener: builds a capture for ``target`` (``cv2.VideoCapture`` by default).
        frozen_s: seconds of identical frames after which the camera is frozen (``None``: never).
    """

    def __init__(
        self,
        target: int | str,
        *,
        clock: Clock = time.monotonic,
        reconnect_s: float = 2.0,
        width: int | None = None,
        height: int | None = None,
        opener: Callable[[int | str], Capture] | None = None,
        frozen_s: float | None = FROZEN_S,
    ) -> None:
        self._target = target
        self._frozen_s = frozen_s
        self._last: UInt8Array | None = None  # the last picture delivered, and since when it is repeated
        self._same_since = 0.0
        self._stuck: UInt8Array | None = None  # the picture the camera froze on, until it sends another
        self._why = ""
        self._clock = clock
        self._reconnect_s = reconnect_s
        self._size = (width, height)
        self._opener = opener or self._open_cv
        self._cap: Capture | None = None
        self._lost = False
        self._next_try = 0.0
        self._open()

    @property
    def name(self) -> str:
        """``webcam N`` or the URL."""
        return f"webcam {self._target}" if isinstance(self._target, int) else str(self._target)

    @property
    def lost(self) -> bool:
        """Whether the camera is currently unavailable."""
        return self._lost

    @property
    def lost_reason(self) -> str:
        """Why the camera is lost when a reason is known beyond "no frame" (:data:`FROZEN`), else ``""``."""
        return self._why if self._lost else ""

    def _open_cv(self, target: int | str) -> Capture:
        # OpenCV tries every capture backend it has and prints each one's failure (40 lines for a camera that is not
        # plugged in); whether the camera opened is what the station says, once, in its own words
        logging = cv2.utils.logging
        level = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        try:
            cap: Any = cv2.VideoCapture(target)
        finally:
            logging.setLogLevel(level)
        width, height = self._size
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        return cap

    def _open(self) -> bool:
        cap = self._opener(self._target)
        if not cap.isOpened():
            cap.release()
            self._mark_lost()
            return False
        self._cap = cap
        return True

    def _mark_lost(self, why: str = "") -> None:
        if not self._lost and why:
            _log.warning("camera %s lost (%s); retrying every %.1f s", self.name, why, self._reconnect_s)
        elif not self._lost:
            _log.warning("camera %s lost; retrying every %.1f s", self.name, self._reconnect_s)
        self._lost = True
        self._why = why
        self._last = None
        self._next_try = self._clock() + self._reconnect_s
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def read(self) -> Frame | None:
        """Return the next frame, or ``None`` while the camera is lost (reopening it when the time has come)."""
        if self._cap is None and (self._clock() < self._next_try or not self._open()):
            return None
        assert self._cap is not None
        ok, image = self._cap.read()
        if not ok or image is None or image.ndim != 3:
            self._mark_lost()
            return None
        if self._frozen(image):
            self._mark_lost(FROZEN)
            return None
        if self._lost:
            _log.info("camera %s is back", self.name)
        self._lost = False
        return Frame(image=np.ascontiguousarray(image), timestamp=time.time(), source=self.name)

    def _frozen(self, image: UInt8Array) -> bool:
        """Whether ``image`` shows the camera frozen: the same picture, byte for byte, as every frame of the last
        ``frozen_s``, or the picture it froze on before it was reopened."""
        if self._frozen_s is None:
            return False
        if self._stuck is not None:
            if same_picture(image, self._stuck):
                return True
            self._stuck = None  # a new picture: it is live again
        now = self._clock()
        if self._last is None or not same_picture(image, self._last):
            self._last, self._same_since = image, now
            return False
        if now - self._same_since < self._frozen_s:
            return False
        self._stuck = image
        return True

    def close(self) -> None:
        """Release the capture."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, in name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class FolderSource:
    """Replays the images of a folder in name order, showing each for ``hold_s`` seconds, then starts over.

    Args:
        folder: the image folder.
        clock: monotonic seconds.
        hold_s: how long each image stays in view.
        loop: start over after the last image (else keep showing the last one).

    Raises:
        FileNotFoundError: the folder does not exist or holds no image.
    """

    def __init__(self, folder: Path, *, clock: Clock = time.monotonic, hold_s: float = 4.0, loop: bool = True) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"replay folder {folder} does not exist")
        self._paths = list_images(folder)
        if not self._paths:
            raise FileNotFoundError(f"replay folder {folder} holds no image ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._folder = folder
        self._clock = clock
        self._hold_s = hold_s
        self._loop = loop
        self._start = clock()
        self._shown: tuple[int, Frame] | None = None
        self._lost = False

    @property
    def name(self) -> str:
        """``folder <path>``."""
        return f"folder {self._folder}"

    @property
    def lost(self) -> bool:
        """``True`` when the current image cannot be read."""
        return self._lost

    @property
    def paths(self) -> Sequence[Path]:
        """The replayed files."""
        return tuple(self._paths)

    def position(self) -> int:
        """Index of the image on show now."""
        step = int((self._clock() - self._start) // self._hold_s)
        return step % len(self._paths) if self._loop else min(step, len(self._paths) - 1)

    def advance(self) -> None:
        """Show the next image at once (restarting its hold time)."""
        self._start = self._clock() - (self.position() + 1) * self._hold_s

    def read(self) -> Frame | None:
        """The image on show now (decoded once per image)."""
        i = self.position()
        if self._shown is not None and self._shown[0] == i:
            return self._shown[1]
        path = self._paths[i]
        try:  # as every command reads a photo: a file cut short is not judged with grey where it stops
            image = read_frame(path).image
        except (OSError, ValueError):
            self._lost = True
            return None
        self._lost = False
        frame = Frame(image=image, timestamp=time.time(), source=str(path))
        self._shown = (i, frame)
        return frame

    def close(self) -> None:
        """Nothing to release."""


class SimulatorSource:
    """Synthetic cups from the procedural mint, each shown for ``hold_s`` seconds (a demo without a camera).

    Args:
        n_types: coin types in the mint.
        seed: the mint's and the cups' seed.
        size: frame side in pixels.
        clock: monotonic seconds.
        hold_s: how long each cup stays in view.
        max_coins: the most coins in one cup.
        reverse_share: chance that a coin lies reverse up (``0.9``: an operator who spreads the coins reverse up,
            as the station asks, since a coin on a shared obverse keeps its cup from passing).
    """

    def __init__(
        self,
        n_types: int = 24,
        seed: int = 0,
        *,
        size: int = 640,
        clock: Clock = time.monotonic,
        hold_s: float = 4.0,
        max_coins: int = 14,
        reverse_share: float = 0.9,
    ) -> None:
        from models.synth.mint import generate_mint
        from models.synth.scene import SceneAssets, SceneOptions

        self.mint = generate_mint(n_types, seed)
        self._assets = SceneAssets(self.mint)
        self._opts = SceneOptions(image_size=size, max_coins=max_coins, reverse_share=reverse_share)
        self._seed = seed
        self._clock = clock
        self._hold_s = hold_s
        self._start = clock()
        self._shown: tuple[int, Frame, str] | None = None
        self._expected: dict[str, str] = {}

    @property
    def name(self) -> str:
        """``simulator``."""
        return "simulator"

    @property
    def lost(self) -> bool:
        """The simulator never loses its camera."""
        return False

    @property
    def expected_type(self) -> str | None:
        """The type the cup on show should hold (what an order for it would ask), once a frame was read."""
        return None if self._shown is None else self._shown[2]

    def read(self) -> Frame:
        """The cup on show now (rendered once per cup)."""
        from models.synth.scene import render_cup

        i = int((self._clock() - self._start) // self._hold_s)
        if self._shown is None or self._shown[0] != i:
            scene = render_cup(self._assets, self._seed, i, self._opts)
            frame = Frame(image=scene.image, timestamp=time.time(), source=f"simulator cup {i}")
            self._shown = (i, frame, scene.expected_type)
            recent = {k: v for k, v in self._expected.items() if k != frame.source}
            recent[frame.source] = scene.expected_type
            self._expected = dict(list(recent.items())[-8:])  # replaced whole: readers in other threads see either
        return self._shown[1]

    def empty_tray(self, index: int) -> UInt8Array:
        """Cup ``index``'s tray photographed with nothing in it (what a station keeps as its empty-tray photo)."""
        from dataclasses import replace

        from models.synth.scene import render_cup

        empty = render_cup(self._assets, self._seed, index, replace(self._opts, empty_reference=True)).empty
        assert empty is not None
        return empty

    def expected_for(self, frame: Frame) -> str | None:
        """The type the cup of ``frame`` (one of the last few read) should hold; ``None`` for an older frame.

        Safe to ask from another thread than the one reading: the answer follows the frame, not the cup on show.
        """
        return self._expected.get(frame.source)

    def close(self) -> None:
        """Nothing to release."""


def open_source(cfg: CameraConfig, *, clock: Clock = time.monotonic) -> FrameSource:
    """Build the frame source a camera configuration names.

    Raises:
        FileNotFoundError: a replay folder that does not exist or is empty.
    """
    if cfg.kind in ("index", "url"):
        target = cfg.index if cfg.kind == "index" else cfg.url
        assert target is not None
        return OpenCVSource(
            target,
            clock=clock,
            reconnect_s=cfg.reconnect_s,
            width=cfg.width,
            height=cfg.height,
            frozen_s=FROZEN_S if cfg.kind == "index" else FROZEN_STREAM_S,
        )
    if cfg.kind == "folder":
        assert cfg.folder is not None
        return FolderSource(cfg.folder, clock=clock, hold_s=cfg.hold_s)
    return SimulatorSource(
        cfg.simulator_types, cfg.simulator_seed, size=cfg.simulator_size, clock=clock, hold_s=cfg.hold_s
    )
