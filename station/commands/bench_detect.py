"""``cupcheck bench detect``: detector latency per frame and its ratio to a bare YOLO call."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from station.commands.options import add_backend_option, check_at_least, chosen_backends
from station.errors import CliError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``detect`` target."""
    p = sub.add_parser(
        "detect",
        help="measure detector latency",
        description="Median milliseconds per frame of the full detector (boxes, masks, fits) and of the bare "
        "YOLO predict call, measured interleaved on the same frames; one JSON line per input size and backend.",
    )
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="frames to time")
    p.add_argument("--data", type=Path, default=None, help="synthetic data set: time its first --n cup images")
    p.add_argument("--n", type=int, default=20, help="frames taken from --data (default 20, at least 1)")
    p.add_argument("--repeats", type=int, default=1, help="passes over the frames (default 1, at least 1)")
    p.add_argument(
        "--imgsz",
        type=int,
        nargs="*",
        default=[],
        help="YOLO input sizes to time, multiples of 32 (default: stored)",
    )
    p.add_argument("--weights", type=Path, default=None, help="detector folder (default: shipped)")
    add_backend_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Time the detector and print one JSON object per input size."""
    from models.detector import Detector
    from models.eval_detect import check_imgsz, latency
    from models.frames import read_frame

    check_at_least("--n", args.n, 1)
    check_at_least("--repeats", args.repeats, 1)
    try:
        sizes = [check_imgsz(size) for size in args.imgsz]
    except ValueError as err:
        raise CliError(f"--imgsz: {err}") from err
    paths = list(args.images)
    if args.data is not None:
        paths += sorted((args.data / "yolo" / "images").glob("*/*.jpg"))[: args.n]
    if not paths:
        raise CliError("give IMAGE files or --data DIR")
    backends = chosen_backends(args)
    try:
        detector = Detector.load(args.weights, backend=backends[0])
        frames = [read_frame(p) for p in paths]
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    for backend in backends:
        run_by = detector if backend == backends[0] else detector.with_backend(backend)
        for size in sizes or [detector.settings.imgsz]:
            timing = latency(run_by.with_settings(imgsz=size), frames, repeats=args.repeats)
            print(json.dumps({"backend": backend, **timing}))
    return 0
