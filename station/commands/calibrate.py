"""``cupcheck calibrate IMAGE``: measure the camera's pixels per millimetre and store the station's calibration.

A reference coin is measured as the station's detector (the model in force's) measures every coin later, so that
it reads its own diameter in its own photo; the coin's edge in the photo is the cross-check.

Examples::

    cupcheck calibrate coin.png --reference-mm 23.25
    cupcheck calibrate board.png --checkerboard 7x5 --square-mm 10 --roi 320,240,200 --json
    cupcheck calibrate coin.png --reference-mm 23.25 --overlay found.png
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from station.commands.options import Site, add_config_option, resolve_site
from station.errors import CliError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from calibration.camera import CameraCalibration, CoinFinder, CupRoi
    from models.detector import Detector
    from models.types import CoinInstance


def _pattern(text: str) -> tuple[int, int]:
    from calibration.scale import MIN_BOARD_CORNERS  # here: OpenCV loads only when a board is given

    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected COLSxROWS inner corners, e.g. 7x5, got {text!r}") from err
    if cols < MIN_BOARD_CORNERS or rows < MIN_BOARD_CORNERS:
        raise argparse.ArgumentTypeError(
            f"need at least {MIN_BOARD_CORNERS}x{MIN_BOARD_CORNERS} inner corners, got {text!r}: count the corners "
            "where four squares meet (a board of 8x6 squares has 7x5)"
        )
    return cols, rows


def _roi(text: str) -> CupRoi:
    from calibration.camera import CupRoi

    try:
        return CupRoi.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``calibrate`` subcommand."""
    parser = subparsers.add_parser(
        "calibrate",
        help="measure pixels per millimetre from a reference image",
        description="Measure the camera's pixels per millimetre from an image of a reference (a coin of known "
        "diameter, a printed checkerboard or ArUco marker) and store calibration.json in the station home.",
        epilog="examples: cupcheck calibrate coin.png --reference-mm 23.25 --overlay found.png; "
        "cupcheck calibrate --empty-tray empty.png (only a new empty-tray photo, the calibration kept)",
    )
    parser.add_argument(
        "image", nargs="?", default=None, help="calibration image: the reference lying where the coins will lie"
    )
    ref = parser.add_mutually_exclusive_group()
    ref.add_argument("--reference-mm", type=_positive, metavar="MM", help="diameter of one reference coin")
    ref.add_argument(
        "--checkerboard", type=_pattern, metavar="COLSxROWS", help="printed checkerboard, INNER corners (7x5)"
    )
    ref.add_argument("--aruco-mm", type=_positive, metavar="MM", help="side of printed ArUco 4x4 markers")
    parser.add_argument("--square-mm", type=_positive, metavar="MM", help="checkerboard square size")
    roi = parser.add_mutually_exclusive_group()
    roi.add_argument(
        "--roi",
        type=_roi,
        metavar="X,Y,R",
        help="cup region in pixels: x,y,r for a round cup, square:x,y,h for a tray of half side h "
        "(default: find a round rim)",
    )
    roi.add_argument(
        "--no-roi",
        action="store_true",
        help="use the whole image as the cup region (the rim is still looked for, only so that it is never "
        "measured as the reference coin)",
    )
    parser.add_argument(
        "--empty-tray",
        metavar="IMAGE",
        help="a photo of the tray with nothing in it, same camera and lamp: every cup is then compared with it, "
        "and whatever differs where no coin was found is flagged",
    )
    parser.add_argument("--home", help="station home (default: the config's, $CUPCHECK_HOME or the user data folder)")
    add_config_option(parser)
    parser.add_argument("--overlay", metavar="PNG", help="write the image with what was found drawn on it")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print what was stored as JSON (the calibration, or the empty-tray photo's path)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure, store ``calibration.json`` in the station home, print the result."""
    import cv2

    from calibration.camera import (
        calibrate_image,
        draw_overlay,
        read_image,
        save_calibration,
        save_empty_tray,
        save_setup_view,
    )
    from calibration.movement import SetupView
    from calibration.scale import CalibrationError

    if args.overlay and not cv2.haveImageWriter(args.overlay):
        raise CliError(f"cannot write an overlay picture to {args.overlay}: name it .png or .jpg")
    has_ref = args.reference_mm is not None or args.checkerboard is not None or args.aruco_mm is not None
    if args.image is None:
        if args.empty_tray is None or has_ref or args.roi is not None or args.no_roi or args.overlay:
            raise CliError(
                "give a calibration image with --reference-mm, --checkerboard or --aruco-mm, "
                "or --empty-tray IMAGE alone to take a new empty-tray photo"
            )
        return _empty_tray_only(args)
    if not has_ref:
        raise CliError("the calibration image needs --reference-mm, --checkerboard or --aruco-mm")
    if args.checkerboard is not None and args.square_mm is None:
        raise CliError("--checkerboard needs --square-mm")
    if args.checkerboard is None and args.square_mm is not None:
        raise CliError("--square-mm only applies to --checkerboard")
    site = resolve_site(args)
    try:
        image = read_image(args.image)
    except CalibrationError as err:
        raise CliError(str(err)) from err
    find_coins = None if args.reference_mm is None else _coin_finder(site, image, str(args.image))
    try:
        calibration, estimate = calibrate_image(
            image,
            reference_mm=args.reference_mm,
            checkerboard=args.checkerboard,
            square_mm=args.square_mm,
            aruco_mm=args.aruco_mm,
            roi=args.roi,
            detect_roi=not args.no_roi,
            find_coins=find_coins,
        )
        empty = None if args.empty_tray is None else read_image(args.empty_tray)
    except (CalibrationError, ValueError) as err:
        raise CliError(str(err)) from err
    if empty is not None and empty.shape[:2] != image.shape[:2]:
        raise CliError(
            f"the empty-tray photo {args.empty_tray} is {empty.shape[1]}x{empty.shape[0]} px but the calibration "
            f"image is {image.shape[1]}x{image.shape[0]}: take both with the station's camera"
        )
    move = None if empty is None else SetupView(image, calibration.roi).compare(empty)
    if move is not None and move.moved:
        raise CliError(
            f"the camera moved between the calibration image and the empty-tray photo {args.empty_tray} (the "
            f"photo's view: {move.describe()}): take both without moving the camera"
        )
    if empty is not None:
        _check_empty(args, site, empty, calibration)
    if args.overlay and not cv2.imwrite(args.overlay, draw_overlay(image, estimate, calibration.roi)):
        raise CliError(f"cannot write overlay {args.overlay}")
    home = site.home
    stale = "" if empty is not None else _stale_empty_tray(image, calibration.roi, home)
    path = save_calibration(calibration, home)
    save_setup_view(image, home)  # the view a camera moved later is told by, before any empty-tray photo
    empty_path = None if empty is None else save_empty_tray(empty, home)
    if stale:
        print(stale, file=sys.stderr)
    if estimate.warning:
        print(f"warning: {estimate.warning}", file=sys.stderr)
    if args.json:
        doc = {**calibration.to_dict(), "path": str(path), "residual_px": estimate.residual_px}
        print(json.dumps({**doc, "empty_tray": None if empty_path is None else str(empty_path)}))
    else:
        roi = calibration.roi
        roi_text = (
            "whole image"
            if roi is None
            else f"{'tray' if roi.shape == 'square' else 'cup'} x={roi.x:.1f} y={roi.y:.1f} "
            f"{'half side' if roi.shape == 'square' else 'r'}={roi.radius:.1f} px"
        )
        print(f"{calibration.px_per_mm:.4f} px/mm ({calibration.method}, residual {estimate.residual_px:.2f} px)")
        if roi is not None:  # a size a person can check with a ruler: a wrong reference shows at once
            roi_text += f" ({calibration.to_mm(2 * roi.radius):.0f} mm across)"
        print(f"cup region: {roi_text}")
        print(f"saved {path}", file=sys.stderr)
        if empty_path is not None:
            print(f"saved the empty-tray photo {empty_path}", file=sys.stderr)
    return 0


def _stale_empty_tray(image: np.ndarray, roi: CupRoi | None, home: Path) -> str:
    """Remove the home's empty-tray photo when it was taken from another camera position (or size) than the new
    calibration image, and say so (``""``: none, or it still fits). Kept, it would flag every cup."""
    from calibration.camera import empty_tray_path, load_empty_tray
    from calibration.movement import SetupView
    from calibration.scale import CalibrationError

    try:
        old = load_empty_tray(home)
    except CalibrationError:
        old = None  # unreadable: the station says so until a new one is taken
    if old is None:
        return ""
    if old.shape[:2] != image.shape[:2]:
        why = f"it is {old.shape[1]}x{old.shape[0]} px, the new calibration image {image.shape[1]}x{image.shape[0]}"
    else:
        move = SetupView(image, roi).compare(old)
        if move is None or not move.moved:
            return ""
        why = f"it was taken from another camera position (its view: {move.describe()})"
    empty_tray_path(home).unlink()
    return (
        f"removed the old empty-tray photo: {why}; take a new one (the window's 'Photograph the empty tray', or "
        "cupcheck calibrate --empty-tray IMAGE)"
    )


def _station_detector(site: Site, calibration: CameraCalibration | None, purpose: str) -> Detector:
    """The station's detector (the model in force's), with ``calibration``.

    Raises:
        CliError: no detector can be loaded; ``purpose`` names what it was for.
    """
    from models.bundle import BundleError, load_bundle
    from models.detector import Detector
    from models.registry import RegistryError, resolve_bundle

    try:
        bundle = load_bundle(resolve_bundle(site.models, site.config.bundle))
        return Detector.load(bundle.path(bundle.detector_dir), calibration=calibration)
    except (FileNotFoundError, BundleError, RegistryError, ValueError) as err:
        raise CliError(f"{purpose}: {err}") from err


@dataclass(frozen=True)
class _CupOnly:
    """The cup region before the scale is known: the detector marks the coins its rim cuts, and measures in pixels.

    Attributes:
        roi: the cup region, or ``None`` for the whole image.
        px_per_mm: 1, so that the detector's millimetres are pixels (nothing reads them).
    """

    roi: CupRoi | None
    px_per_mm: float = 1.0


def _coin_finder(site: Site, image: np.ndarray, source: str) -> CoinFinder:
    """The station's detector run on the calibration photo ``image`` with a cup region: the reference coin is
    measured as it will measure every coin, and a circle it finds no coin at is never taken for one.

    Raises:
        CliError: no detector can be loaded.
    """
    from models.types import Frame

    detector = _station_detector(site, None, "the reference coin cannot be measured as the station measures coins")

    def find(roi: CupRoi | None) -> list[CoinInstance]:
        return detector.with_calibration(_CupOnly(roi)).detect(Frame(image=image, source=source))

    return find


def _check_empty(
    args: argparse.Namespace, site: Site, empty: np.ndarray, calibration: CameraCalibration | None
) -> None:
    """Refuse an empty-tray photo in which the station's detector (the model in force's, with the calibration
    given) finds a coin or an object: every cup is compared with that photo, as the window's button checks it.

    Raises:
        CliError: something lies on the tray, or no detector can be loaded.
    """
    from models.types import Frame
    from station.empty_tray import tray_contents

    detector = _station_detector(site, calibration, "the empty-tray photo cannot be checked")
    seen = tray_contents(detector, Frame(image=empty, source=str(args.empty_tray)))
    if seen:
        raise CliError(
            f"the tray in {args.empty_tray} is not empty ({seen} seen): every cup is compared with this photo, so "
            "clear the tray and take it again"
        )


def _empty_tray_only(args: argparse.Namespace) -> int:
    """Store a new empty-tray photo and keep the calibration; its size must match the calibration image's."""
    from calibration.camera import load_calibration, load_empty_tray, load_setup_view, read_image, save_empty_tray
    from calibration.movement import SetupView
    from calibration.scale import CalibrationError

    site = resolve_site(args)
    home = site.home
    try:
        empty = read_image(args.empty_tray)
        calibration = load_calibration(home)
        before = load_empty_tray(home)
        if before is None and calibration is not None:
            before = load_setup_view(home)  # the first empty-tray photo is checked against the calibration photo
    except (CalibrationError, ValueError) as err:
        raise CliError(str(err)) from err
    if calibration is not None and (calibration.image_width, calibration.image_height) != (
        empty.shape[1],
        empty.shape[0],
    ):
        raise CliError(
            f"the empty-tray photo {args.empty_tray} is {empty.shape[1]}x{empty.shape[0]} px but the station was "
            f"calibrated on {calibration.image_width}x{calibration.image_height}: take it with the station's camera"
        )
    if calibration is not None and before is not None:  # (compare tells nothing across two sizes)
        move = SetupView(before, calibration.roi).compare(empty)
        if move is not None and move.moved:
            raise CliError(
                f"the camera has moved since the station was calibrated (the view: {move.describe()}); a new "
                "empty-tray photo alone would leave the cup region and millimetres where they were: put the camera "
                "back, or calibrate again with the reference and the new photo (cupcheck calibrate IMAGE "
                f"--reference-mm MM --empty-tray {args.empty_tray})"
            )
    _check_empty(args, site, empty, calibration)
    path = save_empty_tray(empty, home)
    if args.json:
        print(json.dumps({"empty_tray": str(path)}))
    else:
        print(f"saved the empty-tray photo {path}")
    return 0
