"""``cupcheck mat``: a printable speckle mat to lay under and around the tray, so a moved camera can be told.

The station notices a camera that has moved since it was set up by what lies around the cup
(:mod:`calibration.movement`); a plain table offers nothing, and ``cupcheck doctor`` says so. Print this sheet at
100 % scale, lay it flat under and around the tray, tape it down, then take the empty-tray photo again.

Examples::

    cupcheck mat --out mat.png                  # A4 at 200 dpi
    cupcheck mat --out mat.png --paper a3 --seed 7
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from station.commands.options import seed_number
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``mat`` subcommand."""
    p = subparsers.add_parser(
        "mat",
        help="write a printable speckle mat for around the tray (so a moved camera is noticed)",
        description="Write a page of random black and grey dots (0.6-4 mm, never repeating) as a PNG that prints at "
        "its paper size. Laid flat under and around the tray, it lets the station tell when its camera has moved "
        "since it was set up, on a table that is otherwise plain.",
    )
    p.add_argument("--out", required=True, metavar="PNG", help="where to write the page (.png)")
    p.add_argument("--paper", default="a4", help="paper size: a4, a3 or letter (default a4)")
    p.add_argument("--dpi", type=int, default=200, help="print resolution, 72-600 (default 200)")
    p.add_argument("--seed", type=seed_number, default=0, help="the pattern's seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the page and say how to print it."""
    from PIL import Image

    from calibration.mat import MatSpec, speckle_mat

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CliError(f"{out}: write the mat as a .png (it keeps every dot sharp and its print size)")
    try:
        spec = MatSpec(paper=args.paper.lower(), dpi=args.dpi, seed=args.seed)
    except ValueError as err:
        raise CliError(str(err)) from err
    if not out.parent.is_dir():
        raise CliError(f"{out.parent} is not a folder")
    Image.fromarray(speckle_mat(spec)).save(out, dpi=(spec.dpi, spec.dpi), optimize=True)
    w, h = spec.size_px
    print(
        f"wrote {out}: {spec.paper.upper()}, {w}×{h} px at {spec.dpi} dpi. Print it at 100 % (no 'fit to page'), "
        "lay it flat under and around the tray, tape it down, then take the empty-tray photo again."
    )
    return 0
