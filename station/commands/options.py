"""Options shared by several commands: ``--backend`` (the bench targets) and ``--cut-workers`` (train, eval)."""

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
        help="what runs the embedder and the mask segmenter (default both: onnx, the station's, then torch)",
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


def check_cut_workers(args: argparse.Namespace) -> int:
    """``--cut-workers`` as given.

    Raises:
        CliError: it is below 1.
    """
    if args.cut_workers < 1:
        raise CliError(f"--cut-workers must be >= 1, got {args.cut_workers}")
    return int(args.cut_workers)
