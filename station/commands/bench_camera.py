"""``cupcheck bench camera``: how well a camera moved since the station was set up is told, on synthetic cups."""

from __future__ import annotations

import argparse
from typing import Any

from station.commands.options import seed_number
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``camera`` target of ``cupcheck bench``."""
    p = subparsers.add_parser(
        "camera",
        help="how well a moved camera is told from the surroundings of the cup",
        description="Render --cups synthetic cups with their empty-tray photos and compare each photo with its "
        "empty tray as taken, nudged within the tolerance, and after a knock (shift 5-40 px, up to 4% closer or "
        "farther, turned up to 3°): false alarms, knocks told, the error of the measured shift, and the time of "
        "one comparison against a bare detector forward pass measured in the same run.",
    )
    p.add_argument("--cups", type=int, default=240, help="cups to render (default 240)")
    p.add_argument("--seed", type=seed_number, default=41, help="the synthetic world's seed (default 41)")
    p.add_argument("--size", type=int, default=640, help="photo side in pixels (default 640)")
    p.add_argument("--no-detector", action="store_true", help="do not time the detector for the ratio")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the measurements."""
    from models.eval_movement import bench_movement

    if args.cups < 1 or args.size < 64:
        raise CliError("--cups must be at least 1 and --size at least 64")
    report = bench_movement(args.cups, seed=args.seed, image_size=args.size, with_detector=not args.no_detector)
    print("\n".join(report.lines()))
    return 0
