"""``cupcheck eval detect``: detector accuracy on held-out synthetic cups and real photos, Hough baseline beside."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from station.commands.options import check_at_least
from station.errors import CliError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``detect`` target."""
    p = sub.add_parser(
        "detect",
        help="evaluate the coin detector and write a report",
        description="Recall, precision, mask IoU and diameter error on held-out synthetic cups, coin counts on "
        "real photos and skimage's coins, latency, with a Hough-circle baseline side by side.",
    )
    p.add_argument("--data", type=Path, default=None, help="held-out synthetic data set (from 'cupcheck synth')")
    p.add_argument(
        "--real", type=Path, default=None, help="real data folder (…/data/real, holding euro_kaa/photos.json)"
    )
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--weights", type=Path, default=None, help="detector folder (default: shipped)")
    p.add_argument(
        "--max-cups", type=int, default=None, help="evaluate at most this many synthetic cups (at least 1; default all)"
    )
    p.add_argument(
        "--sizes", type=int, nargs="*", default=[], help="extra YOLO input sizes to compare (multiples of 32)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and write ``OUT/report.md``."""
    from models.detector import Detector
    from models.eval_detect import check_imgsz, check_real_root, run_eval

    if args.max_cups is not None:
        check_at_least("--max-cups", args.max_cups, 1)
    try:
        sizes = [check_imgsz(size) for size in args.sizes]
    except ValueError as err:
        raise CliError(f"--sizes: {err}") from err
    if args.data is not None and not (args.data / "manifest.json").is_file():
        raise CliError(f"{args.data} is not a synthetic data set (no manifest.json)")
    if args.real is not None and not args.real.is_dir():
        raise CliError(f"real data folder {args.real} does not exist")
    if args.real is not None:
        try:
            check_real_root(args.real)
        except FileNotFoundError as err:
            raise CliError(str(err)) from err
    try:
        detector = Detector.load(args.weights)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    report = run_eval(detector, args.out, data=args.data, real_root=args.real, max_cups=args.max_cups, sizes=sizes)
    held = report.get("held_out")
    if held and not held["held_out"]:
        print(held["line"], file=sys.stderr)
    print(f"report written: {args.out / 'report.md'}")
    return 0
