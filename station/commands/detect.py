"""``cupcheck detect IMAGE...``: find and measure every coin in still images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.commands.options import add_config_option, resolve_site
from station.errors import CliError

if TYPE_CHECKING:
    from calibration.camera import CameraCalibration
    from models.detector import Detector


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``detect`` subcommand."""
    p = sub.add_parser(
        "detect",
        help="find and segment every coin in images",
        description="Find every coin in each image: box, fitted circle, diameter (mm when the station is "
        "calibrated) and whether it is cut by the image edge or the cup rim.",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--home", type=Path, default=None, help="station home (default: the config's, $CUPCHECK_HOME)")
    add_config_option(p)
    p.add_argument("--weights", type=Path, default=None, help="detector folder or detector.json (default: shipped)")
    p.add_argument("--conf", type=float, default=None, help="override the minimum box confidence")
    p.add_argument("--overlay", type=Path, default=None, metavar="DIR", help="write overlay PNGs into DIR")
    p.set_defaults(func=run)


def _load(args: argparse.Namespace) -> tuple[Detector, CameraCalibration | None]:
    from calibration.camera import load_calibration
    from calibration.scale import CalibrationError
    from models.detector import Detector

    home = resolve_site(args).home
    try:
        calibration = load_calibration(home)
    except CalibrationError as err:
        raise CliError(f"invalid station calibration in {home}: {err}") from err
    try:
        detector = Detector.load(args.weights, calibration=calibration)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    if args.conf is not None:
        if not 0.0 <= args.conf <= 1.0:
            raise CliError(f"--conf must be in [0, 1], got {args.conf}")
        detector = detector.with_settings(conf=args.conf)
    return detector, calibration


def for_photo(detector: Detector, cal: CameraCalibration | None, image: Any, path: str) -> Detector:
    """``detector`` with the station's calibration for a photo the size of its calibration image, else without it
    (no millimetres, no cup region: they belong to the camera's view as calibrated), saying so on stderr."""
    h, w = image.shape[:2]
    if cal is None or (w, h) == (cal.image_width, cal.image_height):
        return detector
    print(
        f"warning: {path} is {w}×{h} pixels, not the {cal.image_width}×{cal.image_height} the station was "
        "calibrated at: no millimetres and no cup region for it",
        file=sys.stderr,
    )
    return detector.with_calibration(None)


def _table(path: str, found: list[tuple[dict[str, Any], bool]]) -> str:
    """The instances of one photo (each record and whether it is a coin), numbered from 1 in the detector's order
    (objects too), as a verdict's reasons number them."""
    coins = sum(1 for _, is_coin in found if is_coin)
    objects = len(found) - coins
    lines = [f"{path}: {coins} coins" + (f", {objects} foreign objects" if objects else "")]
    if found:
        lines.append(f"  {'#':>3} {'x':>7} {'y':>7} {'d_px':>7} {'d_mm':>6} {'conf':>5} partial")
    for i, (c, is_coin) in enumerate(found):
        mm = "-" if c["diameter_mm"] is None else f"{c['diameter_mm']:.1f}"
        what = ("yes" if c["partial"] else "no") if is_coin else "object"
        lines.append(
            f"  {i + 1:>3} {c['center'][0]:>7.1f} {c['center'][1]:>7.1f} {c['diameter_px']:>7.1f} {mm:>6} "
            f"{c['confidence']:>5.2f} {what}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Detect coins in every image; unreadable files are named on stderr and make the exit status 2."""
    from tqdm import tqdm

    from models.frames import draw_overlay, instance_record, read_frame
    from station.commands.pictures import OverlayFolder

    detector, cal = _load(args)
    pictures = None if args.overlay is None else OverlayFolder(args.overlay)
    images: list[dict[str, Any]] = []
    failed = 0
    for path in tqdm(args.images, desc="detect", unit="image", disable=len(args.images) < 2, file=sys.stderr):
        try:
            frame = read_frame(path)
        except (FileNotFoundError, ValueError) as err:
            print(f"cupcheck detect: error: cannot read image {err}", file=sys.stderr)
            failed += 1
            continue
        found = for_photo(detector, cal, frame.image, path).detect(frame)
        records = [(instance_record(i), i.is_coin) for i in found]
        coins = [r for r, is_coin in records if is_coin]
        images.append({"path": str(path), "coins": coins, "objects": [r for r, is_coin in records if not is_coin]})
        if pictures is not None:
            pictures.write(path, draw_overlay(frame.image, found, f"{len(coins)} coins"))
        if not args.json:
            print(_table(str(path), records))
    if args.json:
        print(json.dumps({"images": images}))
    return 2 if failed else 0
