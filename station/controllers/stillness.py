"""Auto-check: decide from the live frames when a new cup has come to rest under the camera (no Qt here)."""

from __future__ import annotations

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


def thumbnail(image: UInt8Array, size: int = THUMB_PX) -> np.ndarray:
    """A small blurred grey version of a ``(H, W, 3)`` uint8 BGR frame, ``(size, size)`` float32."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(small, (3, 3), 0), np.float32)


class StillnessGate:
    """Fires once each time the view has changed (a cup was put down or moved) and then stayed still.

    The gate starts armed, so a cup already in place when checking becomes possible is checked once it is still.
    After firing it waits for the next movement.

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
        self._armed = True
        self._still_since: float | None = None

    @property
    def armed(self) -> bool:
        """Whether the gate waits for the view to settle (``False``: it waits for a movement first)."""
        return self._armed

    def rearm(self) -> None:
        """Fire again once the view is still, even without a movement (e.g. a new order was chosen)."""
        self._armed = True

    def update(self, image: UInt8Array) -> bool:
        """Feed one frame; ``True`` exactly when a check should start now."""
        thumb = thumbnail(image)
        moving = (
            self._previous is not None and float((np.abs(thumb - self._previous) > CHANGE_LEVEL).mean()) > self._share
        )
        self._previous = thumb
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
        if now - self._still_since >= self._still_s:
            self._armed = False
            self._still_since = None
            return True
        return False
