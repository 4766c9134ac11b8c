"""``cupcheck demo``: the operator window on simulator cups with the shipped model, nothing to train or set up.

Examples::

    cupcheck demo                      # demo home in the user data dir (gallery, SQLite verdict log)
    cupcheck demo --home /tmp/demo     # somewhere else
    cupcheck demo --quit-after 1       # close after the first verdict (prints how long it took)

The first start enrols the simulator's coin types into the demo home's gallery (a progress bar; a few seconds),
later starts reuse it. This is ``cupcheck station --demo`` with the demo's own home; both run
:func:`station.app.run_station`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from station.commands.options import seed_number
from station.config import ConfigError, config_from_dict
from station.errors import CliError
from station.home import resolve_home

DEMO_TYPES = 12
"""The simulator mint's size: the first start enrols its types (about 0.2 s each on a free laptop core pair)."""
DEMO_HOLD_S = 6.0
"""Seconds each simulator cup stays in view: time to check it and read the verdict."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="open the operator window on simulator cups with the shipped model (no training, no camera)",
        description="Open the operator window on synthetic cups from the simulator with the shipped verdict model. "
        "Each new cup is ordered and checked by itself; Space checks again. Verdicts go to a SQLite log in the "
        "demo home.",
    )
    p.add_argument(
        "--home", default=None, metavar="DIR", help="demo home (default: 'demo' in the station's user data dir)"
    )
    p.add_argument(
        "--types", type=int, default=DEMO_TYPES, metavar="N", help=f"coin types in the simulator's mint ({DEMO_TYPES})"
    )
    p.add_argument(
        "--seed", type=seed_number, default=0, help="the simulator's seed (the same seed shows the same cups)"
    )
    p.add_argument("--bundle", default=None, metavar="FILE", help="verdict model bundle JSON (default: shipped)")
    p.add_argument("--no-sound", action="store_true", help="no sound cue")
    p.add_argument("--quit-after", type=int, default=None, metavar="N", help="close the window after N verdicts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the demo's configuration and run :func:`station.app.run_station` with ``demo=True``."""
    started = time.perf_counter()
    if args.quit_after is not None and args.quit_after < 1:
        raise CliError("--quit-after must be at least 1")
    data: dict[str, Any] = {
        "name": "demo",
        "sound": not args.no_sound,
        "camera": {
            "kind": "simulator",
            "simulator_types": args.types,
            "simulator_seed": args.seed,
            "hold_s": DEMO_HOLD_S,
        },
    }
    if args.bundle is not None:
        data["bundle"] = args.bundle
    try:
        config = config_from_dict(data, origin="the command line")
    except ConfigError as err:
        raise CliError(str(err)) from err
    home = resolve_home(args.home) if args.home is not None else resolve_home(None) / "demo"
    from station.app import run_station

    try:
        return run_station(config, home, demo=True, started=started, quit_after=args.quit_after)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(f"{err} (home: {home})") from err
