"""``cupcheck eval embed``: open-set, real-crop and latency evaluation of the embedder, as a Markdown report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from station.commands.options import check_at_least
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``embed`` target of ``cupcheck eval``."""
    p = subparsers.add_parser(
        "embed",
        help="evaluate the embedder (open set, real crops, latency)",
        description="Open-set Recall@1/5 on synthetic types never trained on (--data), per-denomination Recall@1 "
        "on real euro/won crops (--real, enrol train, query test; the won test crops come from the photos of the won "
        "train crops, and the report says so), and embedding/search latency. Writes "
        "REPORT_DIR/report.md with PNGs of the closest wrong pairs.",
    )
    p.add_argument("--data", default=None, metavar="SYNTH_DIR", help="synthetic data set with unseen types")
    p.add_argument(
        "--real",
        default=None,
        metavar="DIR",
        help="real data root (…/data/real, holding euro_kaa/crops or won_cho0h5/crops with train/ and test/)",
    )
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="report folder")
    p.add_argument("--embedder", default=None, metavar="FILE", help="checkpoint (default: the shipped weights)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurements")
    p.add_argument(
        "--search-sizes", default="10000,100000,1000000", help="gallery sizes for search timing (comma-separated)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print its summary."""
    from models.embedder import Embedder
    from models.eval_embed import missing_real_text, real_currencies, write_report

    check_at_least("--threads", args.threads, 1)
    try:
        sizes = tuple(int(s) for s in args.search_sizes.split(",") if s.strip())
    except ValueError as err:
        raise CliError(f"--search-sizes: {err}") from err
    if any(n < 1 for n in sizes):
        raise CliError(f"--search-sizes: give gallery sizes of at least 1, got {args.search_sizes}")
    for name in ("data", "real"):
        value = getattr(args, name)
        if value is not None and not Path(value).is_dir():
            raise CliError(f"--{name} {value} is not a folder")
    if args.real is not None and not real_currencies(args.real):
        raise CliError(missing_real_text(args.real))
    try:
        embedder = Embedder.load(args.embedder, threads=args.threads)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    try:
        path, summary = write_report(
            embedder,
            args.out,
            synth_dir=args.data,
            real_root=args.real,
            latency=not args.no_latency,
            search_sizes=sizes,
        )
    except FileNotFoundError as err:
        raise CliError(str(err)) from err
    print(f"embedder {embedder.version}")
    for line in summary:
        print(line)
    print(f"report: {path}")
    return 0
