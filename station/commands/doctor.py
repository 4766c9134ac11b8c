"""``cupcheck doctor``: is this station ready? Every part it needs, checked the way the station uses it, each problem
with what to do about it.

Examples::

    cupcheck doctor --config /srv/cupcheck/station.toml
    cupcheck doctor --no-camera            # on a PC without the station's camera
    cupcheck doctor --config station.toml --json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from station.commands.options import add_site_options, resolve_site

EXIT_PROBLEM = 1
"""Exit status when some part cannot do its work (a FAIL)."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``doctor`` subcommand."""
    p = subparsers.add_parser(
        "doctor",
        help="check that this station is ready: home, database, people, images, orders, model, calibration, camera",
        description="Check every part a station needs, as the station uses it: the home (writable, room left), the "
        "database (reachable, schema, people who may sign in, verdicts waiting in the journal), the image folder, "
        "orders.csv, the model in force with the gallery and camera set-up (loaded as the operator window loads "
        "them), the enrolment, the calibration and empty-tray photo, and the camera (a frame, its size, one check "
        "of it). Each line says ok, WARN (the station runs, with less) or FAIL (it cannot do its work), with what "
        f"to do. Exit status 0 when nothing fails, {EXIT_PROBLEM} otherwise, 2 for a bad option or station file.",
    )
    add_site_options(p)
    p.add_argument("--no-camera", action="store_true", help="do not open the camera (a PC that is not the station)")
    p.add_argument("--json", action="store_true", help="print the findings as one JSON object at the end")
    p.set_defaults(func=run)


MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def run(args: argparse.Namespace) -> int:
    """Check the station and print each finding as it is made."""
    from station.doctor import Finding, Status, examine, worst

    site = resolve_site(args)
    config = site.station_config()

    def say(f: Finding) -> None:
        if args.json:
            return
        print(f"{MARK[f.status.value]}  {f.part:<12} {f.message}")
        if f.fix and f.status is not Status.OK:
            print(f"{'':<18}→ {f.fix}")
        sys.stdout.flush()

    findings = examine(config, site.home, camera=not args.no_camera, say=say)
    verdict = worst(findings)
    if args.json:
        print(json.dumps({"ready": verdict is not Status.FAIL, "findings": [asdict(f) for f in findings]}, indent=1))
    else:
        counts = {s: sum(1 for f in findings if f.status is s) for s in Status}
        summary = "ready" if verdict is not Status.FAIL else "NOT READY"
        print(f"{summary}: {counts[Status.OK]} ok, {counts[Status.WARN]} warnings, {counts[Status.FAIL]} problems")
    return EXIT_PROBLEM if verdict is Status.FAIL else 0
