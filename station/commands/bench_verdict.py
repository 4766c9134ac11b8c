"""``cupcheck bench verdict``: one cup from frame to verdict against one bare detector forward pass."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from models.bundle import BundleError
from station.commands.options import add_backend_option, chosen_backends
from station.errors import CliError

TARGET_RATIO = 1.3


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``verdict`` target of ``cupcheck bench``."""
    p = subparsers.add_parser(
        "verdict",
        help="latency of one cup from frame to verdict against the detector alone",
        description="Render one synthetic pure cup of --coins coins, then time (median of --repeats after a warm-up) "
        "one bare detector forward pass, the detector with masks, and the whole pipeline to the verdict, in the "
        "same process, with each inference backend (ONNX Runtime, the station's, and torch); print the ratio "
        "(target <= 1.3x) and each backend's p_correct.",
    )
    p.add_argument("--bundle", default=None, metavar="FILE", help="verdict bundle (default: the shipped one)")
    p.add_argument("--coins", type=int, default=10, help="coins in the cup (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)")
    p.add_argument(
        "--detector-threads",
        type=int,
        default=None,
        metavar="N",
        help="ONNX Runtime threads of YOLO and the mask segmenter (default: --threads; the station runs the "
        "embedder on 2 and these on 1)",
    )
    add_backend_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the timings and the ratio."""
    from models.bench_verdict import bench_verdict

    low = args.detector_threads is not None and args.detector_threads < 1
    if args.coins < 1 or args.repeats < 1 or args.threads < 1 or low:
        raise CliError("--coins, --repeats, --threads and --detector-threads must be at least 1")
    try:
        res = bench_verdict(
            None if args.bundle is None else Path(args.bundle),
            n_coins=args.coins,
            repeats=args.repeats,
            threads=args.threads,
            backends=chosen_backends(args),
            detector_threads=args.detector_threads,
        )
    except (FileNotFoundError, BundleError, ValueError, RuntimeError) as err:
        raise CliError(str(err)) from err
    print(
        f"cup of {res.n_coins} coins, median of {args.repeats}; threads asked for {args.threads}, torch ran with "
        f"{res.torch_threads}"
    )
    fwd = res.detector_forward_ms
    print(f"detector forward pass (boxes):          {fwd:8.1f} ms")
    for r in res.runs:
        print(f"[{r.backend}] detector with masks (detect): {r.detect_ms:8.1f} ms")
        print(f"[{r.backend}] frame to verdict (Pipeline.run): {r.pipeline_ms:8.1f} ms ({r.pipeline_ms / fwd:.2f}x)")
        print(f"[{r.backend}] stages: " + ", ".join(f"{k} {v:.1f}" for k, v in r.stages_ms.items()))
        print(f"[{r.backend}] p_correct {r.p_correct:.6f}")
        print(f"[{r.backend}] threads in use: " + ", ".join(f"{k} {v}" for k, v in r.threads.items()))
    if len(res.runs) > 1:
        base = res.runs[0]
        for r in res.runs[1:]:
            print(
                f"{base.backend} is {r.pipeline_ms / base.pipeline_ms:.2f}x faster than {r.backend} frame to verdict "
                f"({r.detect_ms / base.detect_ms:.2f}x on detection), p_correct differs by "
                f"{abs(r.p_correct - base.p_correct):.2g}"
            )
    verdict = "within" if res.ratio <= TARGET_RATIO else "above"
    backend = res.runs[0].backend
    print(f"ratio {res.ratio:.2f}x the detector forward pass ({verdict} the {TARGET_RATIO}x target, {backend})")
    return 0
