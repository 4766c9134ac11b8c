"""``cupcheck bench embed``: embedding time per crop and gallery search time."""

from __future__ import annotations

import argparse
from typing import Any

from station.commands.options import add_backend_option, chosen_backends
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``embed`` target of ``cupcheck bench``."""
    p = subparsers.add_parser(
        "embed",
        help="embedding and gallery search latency",
        description="Milliseconds per crop at several batch sizes, and per single-query gallery search at several "
        "gallery sizes (random unit vectors, one faiss thread).",
    )
    p.add_argument("--embedder", default=None, metavar="FILE", help="checkpoint (default: the shipped weights)")
    p.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)")
    p.add_argument("--batches", default="1,8,32", help="batch sizes (comma-separated)")
    p.add_argument("--search-sizes", default="10000,100000,1000000", help="gallery sizes (comma-separated)")
    add_backend_option(p)
    p.set_defaults(func=run)


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError as err:
        raise CliError(f"{name}: {err}") from err
    if not values or min(values) < 1:
        raise CliError(f"{name}: give positive integers")
    return values


def run(args: argparse.Namespace) -> int:
    """Print the latency table."""
    from models.embedder import Embedder
    from models.eval_embed import embed_latency, search_latency

    batches = _ints(args.batches, "--batches")
    sizes = _ints(args.search_sizes, "--search-sizes")
    backends = chosen_backends(args)
    try:
        embedder = Embedder.load(args.embedder, threads=args.threads, backend=backends[0])
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    print(f"embedder {embedder.version}, threads {args.threads}, {embedder.prep.rotations} rotation(s) a crop")
    for backend in backends:
        run_by = embedder if backend == backends[0] else embedder.with_backend(backend, args.threads)
        for b, ms in embed_latency(run_by, batches).items():
            print(f"[{backend}] embed batch {b:>4}: {ms:7.2f} ms/crop")
    for n, ms in search_latency(embedder.embed_dim, sizes).items():
        print(f"search {n:>9,} refs: {ms:7.3f} ms/query")
    return 0
