"""Options shared by several commands: ``--backend`` (the bench targets), ``--cut-workers`` (train, eval),
``--references-per-design`` (retrain, simulate-day), and the check that a count option is at least its smallest
value."""

from __future__ import annotations

import argparse

from models.runtime import BACKENDS
from station.errors import CliError


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--backend {both,onnx,torch}`` (default ``both``, the station's ONNX Runtime first)."""
    parser.add_argument(
        "--backend",
        choices=("both", *BACKENDS),
        default="both",
        help="what runs the embedder, the mask segmenter and YOLO (default both: onnx, the station's, then torch)",
    )


def chosen_backends(args: argparse.Namespace) -> tuple[str, ...]:
    """The backends ``--backend`` names, in timing order."""
    return tuple(BACKENDS) if args.backend == "both" else (str(args.backend),)


def add_cut_workers(parser: argparse.ArgumentParser) -> None:
    """Add ``--cut-workers N``: processes that cut and embed a data set not yet cached."""
    parser.add_argument(
        "--cut-workers",
        type=int,
        default=1,
        metavar="N",
        help="processes that cut and embed a data set not yet in --cache (default 1; each runs one thread)",
    )


def check_at_least(flag: str, value: int, low: int) -> int:
    """``value`` of the option ``flag`` when it is at least ``low``.

    Raises:
        CliError: it is below ``low`` (``"--FLAG must be >= LOW, got VALUE"``).
    """
    if value < low:
        raise CliError(f"{flag} must be >= {low}, got {value}")
    return int(value)


def check_cut_workers(args: argparse.Namespace) -> int:
    """``--cut-workers`` as given.

    Raises:
        CliError: it is below 1.
    """
    return check_at_least("--cut-workers", args.cut_workers, 1)


def add_references_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--references-per-design N``: station references the retrain keeps per (type, design)."""
    parser.add_argument(
        "--references-per-design",
        type=int,
        default=20,
        metavar="N",
        help="station references per (type, design): confirmed coins of the training split added to the candidate's "
        "gallery (20; 0: none)",
    )
