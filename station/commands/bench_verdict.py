"""``cupcheck bench verdict``: one cup from frame to verdict against one bare detector forward pass."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from models.bundle import BundleError
from station.errors import CliError

TARGET_RATIO = 1.3


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``verdict`` target of ``cupcheck bench``."""
    p = subparsers.add_parser(
        "verdict",
        help="latency of one cup from frame to verdict against the detector alone",
        description="Render one synthetic pure cup of --coins coins, then time (median of --repeats after a warm-up) "
        "one bare detector forward pass, the detector with masks, and the whole pipeline to the verdict, in the "
        "same process; print the ratio (target <= 1.3x).",
    )
    p.add_argument("--bundle", default=None, metavar="FILE", help="verdict bundle (default: the shipped one)")
    p.add_argument("--coins", type=int, default=10, help="coins in the cup (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the timings and the ratio."""
    from models.eval_verdict import bench_verdict

    if args.coins < 1 or args.repeats < 1 or args.threads < 1:
        raise CliError("--coins, --repeats and --threads must be at least 1")
    try:
        res = bench_verdict(
            None if args.bundle is None else Path(args.bundle),
            n_coins=args.coins,
            repeats=args.repeats,
            threads=args.threads,
        )
    except (FileNotFoundError, BundleError, ValueError, RuntimeError) as err:
        raise CliError(str(err)) from err
    print(f"cup of {res.n_coins} coins, torch threads {args.threads}, median of {args.repeats}")
    print(f"detector forward pass (boxes):   {res.detector_forward_ms:8.1f} ms")
    print(f"detector with masks (detect):    {res.detector_detect_ms:8.1f} ms")
    print(f"frame to verdict (Pipeline.run): {res.pipeline_ms:8.1f} ms")
    print("stages: " + ", ".join(f"{k} {v:.1f}" for k, v in res.stages_ms.items()))
    verdict = "within" if res.ratio <= TARGET_RATIO else "above"
    print(f"ratio {res.ratio:.2f}x the detector forward pass ({verdict} the {TARGET_RATIO}x target)")
    return 0
