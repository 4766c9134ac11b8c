"""Auto-check: decide from the live frames when a new cup has come to rest under the camera, and whether the view has
changed since a cup was photographed (no Qt here)."""

from __future__ import annotations

import functools
import math
import time

import cv2
import numpy as np

from models.types import UInt8Array
from station.camera import Clock

THUMB_PX = 64
CHANGE_LEVEL = 20.0
"""A thumbnail pixel whose grey level (0-255) moved by more than this has changed."""
MOTION_SHARE = 0.005
"""The view is moving when more than this share of the thumbnail's pixels changed since the last frame."""
WATCH_PX = 256
"""The side of the thumbnails :class:`ViewWatch` compares: fine enough to see a coin turned over where it lay."""
WATCH_SHARE = 0.001
"""The view has changed since a photograph when more than this share of a :data:`WATCH_PX` thumbnail's pixels
changed, once aligned (:func:`view_differs`): an 8 × 8 patch. One coin of 4 turned over in place changes 0.8 %, the
smallest of 30 in a simulator cup 0.1-0.3 %; a sensor's noise, none."""
SHIFT_PX = 2.0
"""The most one view may lie off another, in :data:`WATCH_PX` thumbnail pixels (5 px of a 640 px frame), and still
be compared with it as the same view: a camera jolted that settles a pixel or two off. A view further off is another
one (a camera knocked that far is for the movement check, ``calibration/movement.py``, to say)."""


def thumbnail(image: UInt8Array, size: int = THUMB_PX) -> np.ndarray:
    """A small blurred grey version of a ``(H, W, 3)`` uint8 BGR frame, ``(size, size)`` float32."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(small, (3, 3), 0), np.float32)


def differs(before: np.ndarray, after: np.ndarray, share: float = MOTION_SHARE) -> bool:
    """Whether two :func:`thumbnail` s show another view: more than ``share`` of their pixels changed by more than
    :data:`CHANGE_LEVEL` (a live sensor's noise, averaged away in a thumbnail, never does)."""
    return float((np.abs(after - before) > CHANGE_LEVEL).mean()) > share


@functools.cache
def _window(shape: tuple[int, int]) -> np.ndarray:
    """The Hanning window phase correlation weighs a thumbnail of ``shape`` with (its edges fade out)."""
    return np.asarray(cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F), np.float32)


def _moved(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by ``(dx, dy)`` pixels (sub-pixel, bilinear), its border repeated."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    return np.asarray(cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE))


def view_differs(before: np.ndarray, after: np.ndarray, share: float = WATCH_SHARE) -> bool:
    """Whether two :data:`WATCH_PX` :func:`thumbnail` s show another view, as :func:`differs` tells, once ``after`` is
    aligned on ``before``: moved back by the whole view's shift (phase correlation, up to :data:`SHIFT_PX`) and its
    brightness scaled to ``before``'s. A camera jolted that settles a pixel off, or a lamp or exposure a few per cent
    off, is the same view; a coin put down, taken away, swapped or turned over still changes it.

    The alignment (about 2 ms) is made only when the thumbnails differ as they are, so a view at rest costs what
    :func:`differs` does."""
    if not differs(before, after, share):
        return False
    (dx, dy), _ = cv2.phaseCorrelate(before, after, _window(before.shape))
    if math.hypot(dx, dy) > SHIFT_PX:
        return True  # too far off to be the same view
    # each moved half way, so that both are smoothed alike by the interpolation; the repeated border is left out
    edge = math.ceil(SHIFT_PX)
    a = _moved(before, dx / 2, dy / 2)[edge:-edge, edge:-edge]
    b = _moved(after, -dx / 2, -dy / 2)[edge:-edge, edge:-edge]
    level = float(b.mean())
    if level > 1.0:  # (a black picture has no brightness to scale)
        b = b * (float(a.mean()) / level)
    return differs(a, b, share)


class StillnessGate:
    """Fires once each time a new view has come to rest under the camera (a cup put down, swapped or turned over).

    The gate starts armed, so a cup already in place when checking becomes possible is checked once it is still.
    After firing it waits for the next movement, and a movement that leaves the view as it was used (a hand passing
    over the cup just checked, or a jolt that leaves the camera a pixel off) fires nothing: the view at rest must differ
    from the one last used, compared as :class:`ViewWatch` compares (:func:`view_differs`: a coin turned over in place
    counts, a view a pixel off or a little darker does not), or one cup would be logged twice. While no check can
    start (the last verdict is still being saved, the camera is not as it was set up) it does not fire but stays
    armed: the cup that came to rest meanwhile is checked as soon as one can.

    Args:
        still_s: seconds the view must stay still.
        clock: monotonic seconds.
        motion_share: see :data:`MOTION_SHARE`.
    """

    def __init__(self, still_s: float = 0.8, *, clock: Clock = time.monotonic, motion_share: float = MOTION_SHARE):
        self._still_s = still_s
        self._clock = clock
        self._share = motion_share
        self._previous: np.ndarray | None = None
        self._image: UInt8Array | None = None  # the last frame fed, for the fine look at the view used
        self._used: np.ndarray | None = None  # the view last used, as a WATCH_PX thumbnail (None: none yet)
        self._armed = True
        self._still_since: float | None = None
        self._declined = False

    @property
    def armed(self) -> bool:
        """Whether the gate waits for the view to settle (``False``: it waits for a movement first)."""
        return self._armed

    @property
    def declined(self) -> bool:
        """Whether the last frame fed found the view at rest again as it was last used, after a movement (a hand
        that passed over the cup just checked), so the gate stopped waiting without firing."""
        return self._declined

    def rearm(self) -> None:
        """Fire again once the view is still, even without a movement and even on the view last used (the caller
        knows that view is yet to be checked, e.g. its check failed)."""
        self._armed = True
        self._used = None

    def consume(self) -> None:
        """The view in front was used (a check started on it by Space, the empty tray photographed): fire again only
        after the next movement, and only on a view at rest that differs from this one, so the same view is not
        checked twice."""
        self._armed = False
        self._still_since = None
        if self._image is not None:
            self._used = thumbnail(self._image, WATCH_PX)

    def update(self, image: UInt8Array, *, ready: bool = True) -> bool:
        """Feed one frame; ``True`` exactly when a check should start now.

        Args:
            image: the live frame.
            ready: whether a check can start now; while not, a view that settles keeps the gate armed, and it fires
                on the first frame that finds it ready.
        """
        self._declined = False
        thumb = thumbnail(image)
        moving = self._previous is not None and differs(self._previous, thumb, self._share)
        self._previous = thumb
        self._image = image
        now = self._clock()
        if moving:
            self._armed = True
            self._still_since = None
            return False
        if not self._armed:
            return False
        if self._still_since is None:
            self._still_since = now
            return False
        if not ready or now - self._still_since < self._still_s:
            return False
        if self._used is not None and not view_differs(self._used, thumbnail(image, WATCH_PX), WATCH_SHARE):
            self._armed = False  # back at rest as it was used (a hand passed over it): nothing new to check
            self._still_since = None
            self._declined = True
            return False
        self.consume()
        return True


class ViewWatch:
    """Tells whether the view has changed since a photograph of it (the cup last checked): the cup taken away or
    another put down, its coins turned over, a hand in view.

    Each live frame, as a :func:`thumbnail`, is compared with the frame before it and with the photograph
    (:func:`view_differs`: a camera jolted that settles a pixel off, or a change of light, is no change), so a view
    that moved and came to rest again counts as changed as much as one that differs for good. Once changed it stays
    so until the next :meth:`mark`.

    Args:
        share: see :data:`WATCH_SHARE`.
        size: see :data:`WATCH_PX`.
    """

    def __init__(self, share: float = WATCH_SHARE, size: int = WATCH_PX) -> None:
        self._share = share
        self._size = size
        self._mark: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._changed = False

    @property
    def changed(self) -> bool:
        """Whether the view has changed since the photograph marked (``False`` before any)."""
        return self._changed

    def mark(self, image: UInt8Array) -> None:
        """Watch for changes from the photograph ``image`` on."""
        self._mark = self._previous = thumbnail(image, self._size)
        self._changed = False

    def differs_now(self, image: UInt8Array) -> bool:
        """Whether ``image`` shows another view than the photograph marked (``True`` before any), whatever passed
        in between: a hand that crossed the view and left it as it was makes no difference here, where it makes
        :attr:`changed` true."""
        return self._mark is None or view_differs(self._mark, thumbnail(image, self._size), self._share)

    def update(self, image: UInt8Array) -> bool:
        """Feed one live frame; return :attr:`changed` (a thumbnail is made only while the answer can still change)."""
        if self._mark is None or self._previous is None or self._changed:
            return self._changed
        thumb = thumbnail(image, self._size)
        self._changed = view_differs(self._previous, thumb, self._share) or view_differs(self._mark, thumb, self._share)
        self._previous = thumb
        return self._changed
