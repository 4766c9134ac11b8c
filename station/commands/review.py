"""``cupcheck review``: the supervisor window: sign in with a supervisor PIN, rule on the cups most worth it.

Examples::

    cupcheck review
    cupcheck review --config station.toml --station packing-2
"""

from __future__ import annotations

import argparse
from typing import Any

from station.config import ConfigError, load_config
from station.errors import CliError
from station.home import resolve_home


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``review`` subcommand."""
    p = subparsers.add_parser(
        "review",
        help="open the supervisor's review window (PIN required)",
        description="Sign in as a supervisor, then confirm or correct the flagged and borderline cups of the "
        "verdict log, most informative first (keys C, T, N, D; F5 reloads).",
    )
    p.add_argument(
        "--config", default=None, metavar="FILE", help="station TOML file (for home, database, image store and models)"
    )
    p.add_argument("--home", default=None, metavar="DIR", help="station home")
    p.add_argument("--station", default=None, help="only this station's cups (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Open the review window until it is closed."""
    try:
        config = load_config(args.config)
    except ConfigError as err:
        raise CliError(str(err)) from err
    home = resolve_home(args.home if args.home is not None else config.home)
    from station.app import run_review

    try:
        return run_review(
            home,
            config.database_url,
            args.station,
            config.bundle,
            config.target_precision,
            config.audit_share,
            store=config.store,
            models=config.models,
        )
    except (FileNotFoundError, ValueError) as err:
        raise CliError(f"{err} (home: {home})") from err
