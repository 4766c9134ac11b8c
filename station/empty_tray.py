"""Taking the station's empty-tray photo from the live camera (no Qt here).

Every cup is compared with this photo (:mod:`models.foreground`), so it must show the tray with nothing in it:
the detector looks first, and a photo in which it finds any coin or object is refused. It is also the view a moved
camera is told by (:mod:`calibration.movement`): on a calibrated station, a photo from a camera that has moved since
it was set up (the last empty-tray photo, else the calibration photo) is refused, since taking it would hide that
the cup region and millimetres no longer fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calibration.camera import save_empty_tray
from models.types import Frame


class EmptyTrayError(ValueError):
    """The photo cannot serve as the empty tray (something lies in it, or the model cannot use one)."""


def tray_contents(detector: Any, frame: Frame) -> str:
    """What the detector finds on a photo meant to show the empty tray: ``"2 coins, 1 object"``, ``""`` for none.

    Args:
        detector: anything with ``detect(frame) -> list[CoinInstance]`` (:class:`models.detector.Detector`).
        frame: the photo.
    """
    found = detector.detect(frame)
    n_coins = sum(1 for i in found if i.is_coin)
    n_objects = len(found) - n_coins
    return ", ".join(
        f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((n_coins, "coin"), (n_objects, "object")) if n
    )


def record_empty_tray(pipeline: Any, frame: Frame, home: Path) -> str:
    """Check that ``frame`` shows an empty tray, store it in ``home`` and hand it to ``pipeline``.

    Args:
        pipeline: the station's :class:`models.pipeline.Pipeline` (anything with ``detector`` and ``empty_tray``).
        frame: the camera frame.
        home: the station home (``empty_tray.png`` is written there atomically).

    Returns:
        A sentence for the operator.

    Raises:
        EmptyTrayError: the detector finds something in the frame, the pipeline takes no empty tray, or the camera
            of a calibrated station has moved since it was set up (:attr:`models.pipeline.Pipeline.setup_view`).
    """
    detector = getattr(pipeline, "detector", None)
    if detector is None or not hasattr(pipeline, "empty_tray"):
        raise EmptyTrayError("this model does not compare cups with an empty tray")
    seen = tray_contents(detector, frame)
    if seen:
        raise EmptyTrayError(f"the tray is not empty ({seen} seen): clear it, then take the photo again")
    view = getattr(pipeline, "setup_view", None)
    move = None if view is None or getattr(detector, "calibration", None) is None else view.compare(frame.image)
    if move is not None and move.moved:
        raise EmptyTrayError(
            f"the camera has moved since it was set up (the view: {move.describe()}); a new empty-tray photo would "
            "hide that the cup region and millimetres no longer fit: put the camera back, or calibrate again "
            "(cupcheck calibrate)"
        )
    path = save_empty_tray(frame.image, home)
    pipeline.empty_tray = frame.image.copy()
    return f"Empty-tray photo saved ({path.name}): every cup is now compared with it."
