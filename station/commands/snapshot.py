"""``cupcheck snapshot``: one photo from the station's own camera, as the station sees it (same device, same
resolution settings), for ``cupcheck calibrate`` and the empty-tray photo.

A calibration photo taken with another program, or at another resolution, does not fit the station's frames: the
station then flags every cup ("the photo is 1920×1080 pixels, not the 1280×720 the station's camera was set up
at"). Taking it through the station's camera settings avoids that.

Examples::

    cupcheck snapshot --config station.toml coin.png         # a reference coin on the tray
    cupcheck calibrate coin.png --reference-mm 24.26 --config station.toml
    cupcheck snapshot --config station.toml empty.png        # the tray with nothing on it
    cupcheck calibrate --empty-tray empty.png --config station.toml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from station.commands.options import check_at_least
from station.errors import CliError

WAIT_S = 8.0
"""How long the camera has to deliver a frame."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``snapshot`` subcommand."""
    p = subparsers.add_parser(
        "snapshot",
        help="save one photo from the station's camera (for calibrate and the empty tray)",
        description="Save one frame from the camera the station file names, at the resolution the station uses, "
        "so a calibration or empty-tray photo fits the station's frames. The camera settles for --skip frames "
        "first (auto exposure).",
    )
    p.add_argument("out", metavar="IMAGE", help="where to write the photo (.png or .jpg)")
    p.add_argument("--config", default=None, metavar="FILE", help="station TOML file (its [camera] section)")
    p.add_argument("--skip", type=int, default=10, metavar="N", help="frames to let pass first (10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Open the camera, let it settle, write one frame."""
    import cv2

    from station.camera import open_source
    from station.config import ConfigError, load_config

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise CliError(f"{out}: write a .png or .jpg")
    skip = check_at_least("--skip", args.skip, 0)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        raise CliError(str(err)) from err
    try:
        source = open_source(config.camera)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise CliError(f"the camera cannot be opened: {err}") from err
    try:
        deadline = time.monotonic() + WAIT_S
        frame, seen = None, 0
        while time.monotonic() < deadline:
            got = source.read()
            if got is None:
                time.sleep(0.05)
                continue
            frame, seen = got, seen + 1
            if seen > skip:
                break
        if frame is None:
            raise CliError(
                f"{source.name} gave no frame in {WAIT_S:.0f} s: is it plugged in, or used by another program?"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out), frame.image):
            raise CliError(f"cannot write {out}")
        h, w = frame.image.shape[:2]
        print(f"{out}: {w}×{h} from {source.name}")
    finally:
        source.close()
    return 0
