"""Taking the station's empty-tray photo from the live camera (no Qt here).

Every cup is compared with this photo (:mod:`models.foreground`), so it must show the tray with nothing in it:
the detector looks first, and a photo in which it finds any coin or object is refused. It is also the view a moved
camera is told by (:mod:`calibration.movement`): on a calibrated station, a photo from a camera that has moved since
it was set up (the last empty-tray photo, else the calibration photo), or one of another size than the calibration
photo's (which no comparison can tell a move by), is refused, since taking it would hide that the cup region and
millimetres no longer fit.
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


def check_photo_size(frame: Frame, camera_size: tuple[int, int] | None) -> None:
    """Refuse a photo of another size than the station's camera was set up at (a webcam come back at another
    resolution): the cup region and millimetres would not fit it, and the moved-camera check, which compares views
    of one size only, would go blind (every cup flagged for its size, a knocked camera no longer told).

    Args:
        frame: the photo.
        camera_size: ``(width, height)`` the camera was set up at (:attr:`models.pipeline.Pipeline.camera_size`);
            ``None``: nothing says.

    Raises:
        EmptyTrayError: the sizes differ.
    """
    h, w = frame.image.shape[:2]
    if camera_size is not None and (w, h) != tuple(camera_size):
        cw, ch = camera_size
        raise EmptyTrayError(
            f"the photo is {w}×{h} pixels but the camera was calibrated at {cw}×{ch}: set the camera back to "
            f"{cw}×{ch}, or calibrate again (cupcheck calibrate)"
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
            of a calibrated station delivers another size than it was calibrated at, or has moved since it was set
            up (:attr:`models.pipeline.Pipeline.setup_view`).
    """
    detector = getattr(pipeline, "detector", None)
    if detector is None or not hasattr(pipeline, "empty_tray"):
        raise EmptyTrayError("this model does not compare cups with an empty tray")
    calibration = getattr(detector, "calibration", None)
    if calibration is not None:  # uncalibrated, the empty tray is all that was set up: a new size replaces it
        check_photo_size(frame, getattr(pipeline, "camera_size", None))
    seen = tray_contents(detector, frame)
    if seen:
        raise EmptyTrayError(f"the tray is not empty ({seen} seen): clear it, then take the photo again")
    view = getattr(pipeline, "setup_view", None)
    move = None if view is None or calibration is None else view.compare(frame.image)
    if move is not None and move.moved:
        raise EmptyTrayError(
            f"the camera has moved since it was set up (the view: {move.describe()}); a new empty-tray photo would "
            "hide that the cup region and millimetres no longer fit: put the camera back, or calibrate again "
            "(cupcheck calibrate)"
        )
    path = save_empty_tray(frame.image, home)
    pipeline.empty_tray = frame.image.copy()
    return f"Empty-tray photo saved ({path.name}): every cup is now compared with it."
