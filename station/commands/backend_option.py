"""The ``--backend`` option of the ``cupcheck bench`` targets: time ONNX Runtime, torch, or both in one run."""

from __future__ import annotations

import argparse

from models.runtime import BACKENDS


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
