"""``cupcheck review``: the supervisor window: sign in with a supervisor PIN, rule on the cups most worth it.

Examples::

    cupcheck review
    cupcheck review --config station.toml --station packing-2
"""

from __future__ import annotations

import argparse
from typing import Any

from station.commands.options import add_site_options, resolve_site
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``review`` subcommand."""
    p = subparsers.add_parser(
        "review",
        help="open the supervisor's review window (PIN required)",
        description="Sign in as a supervisor, then confirm or correct the flagged and borderline cups of the "
        "verdict log, most informative first (keys C, T, N, D; F5 reloads the queue and the enrolled types).",
    )
    add_site_options(p)
    p.add_argument("--station", default=None, help="only this station's cups (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Open the review window until it is closed."""
    site = resolve_site(args)
    config = site.config
    from station.app import run_review

    try:
        return run_review(
            site.home,
            site.url,
            args.station,
            config.bundle,
            config.target_precision,
            config.audit_share,
            store=site.store,
            models=site.models,
            gallery=site.gallery,
        )
    except (FileNotFoundError, ValueError) as err:
        raise CliError(f"{err} (home: {site.home})") from err
