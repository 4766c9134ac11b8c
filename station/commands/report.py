"""``cupcheck report``: what the stations did over a period: cups, auto-pass, what the FLAGs were for, what people
found in them, the PASS audit; per day, station, operator and model. Markdown, two plots and every check as CSV.

Examples::

    cupcheck report --out reports/this-week                    # the last 7 days, the home's verdict log
    cupcheck report --config site.toml --days 1 --out reports/today
    cupcheck report --config site.toml --since 2026-11-01 --until 2026-11-30 --station packing-2 --out reports/nov
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from station.commands.options import add_site_options, check_at_least, resolve_site
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="what the stations did over a period: cups, auto-pass, FLAG reasons, rulings (Markdown, PNG, CSV)",
        description="Summarise the verdict log over a period (local time): cups (a cup checked again after turning "
        "counts once), how many passed as they lay or after turning, what the FLAGs were for, what people found "
        "in the flagged cups they ruled on, the PASS audit, per day, station, operator and model. Writes "
        "OUT/report.md, OUT/days.png, OUT/reasons.png and OUT/checks.csv (every check with its ruling), and prints "
        "the headline. Reads the database only.",
    )
    add_site_options(p, store=False, models=False, gallery=False)
    first = p.add_mutually_exclusive_group()
    first.add_argument(
        "--days", type=int, default=None, metavar="N", help="the last N calendar days, today included (7)"
    )
    first.add_argument("--since", default=None, metavar="YYYY-MM-DD", help="first day (instead of --days)")
    p.add_argument("--until", default=None, metavar="YYYY-MM-DD", help="last day, included (default: today)")
    p.add_argument("--station", default=None, metavar="NAME", help="one station only (default: every station)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the report")
    p.set_defaults(func=run)


DEFAULT_DAYS = 7
"""Days a report covers when neither ``--days`` nor ``--since`` is given."""


def _day(flag: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise CliError(f"{flag} must be a date like 2026-11-30, got {text!r}") from err


def period(args: argparse.Namespace, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The period ``--days`` / ``--since`` / ``--until`` name: local midnights, the end excluded (at most now).

    Raises:
        CliError: a malformed date, ``--days`` below 1, an end before the start, a day the calendar or the clock
            cannot reach (``--since 0001-01-01`` in a zone ahead of UTC), or a period that starts no earlier than now.
    """
    now = (now or datetime.now()).astimezone()
    until_day = _day("--until", args.until) if args.until else now.date()
    if args.since:
        first, since_day = "--since", _day("--since", args.since)
    else:
        days = DEFAULT_DAYS if args.days is None else check_at_least("--days", args.days, 1)
        first, since_day = "--days", _shifted("--days", until_day, -(days - 1))
    if since_day > until_day:
        raise CliError(f"--since {since_day} is after --until {until_day}")
    since = _midnight(first, since_day)
    # a last day from today on ends now (9999-12-31 too, whose next midnight no clock reaches)
    until = now if until_day >= now.date() else min(_midnight("--until", until_day + timedelta(days=1)), now)
    if since >= until:
        which = "--since" if args.since else "--until"  # --days counts back from --until
        raise CliError(
            f"the period starts at {since:%Y-%m-%d %H:%M}, not before now ({now:%Y-%m-%d %H:%M}): nothing can have "
            f"been checked in it; give a {which} in the past"
        )
    return since, until


def _shifted(flag: str, day: date, days: int) -> date:
    """``day`` moved by ``days`` (back, when negative); a day past the calendar's ends names ``flag``."""
    try:
        return day + timedelta(days=days)
    except OverflowError as err:
        raise CliError(f"{flag} reaches back past the calendar's first day (0001-01-01) from {day}") from err


def _midnight(flag: str, day: date) -> datetime:
    """The local midnight that starts ``day``, at its own offset (a period across a change to or from summer time is
    not shifted an hour); a day the clock cannot reach names ``flag``."""
    try:
        return datetime.combine(day, time()).astimezone()
    except (ValueError, OverflowError) as err:
        raise CliError(f"{flag} {day} is before the first day this clock can name ({err}): give a later day") from err


def run(args: argparse.Namespace) -> int:
    """Read the period's checks, write the report, print its headline."""
    from db.activity import read_activity, station_names
    from db.session import DB_FILENAME, make_engine, schema_behind
    from db.spool import UNREACHABLE_ERRORS
    from station.activity_report import headline, summarise, write_activity_report

    site = resolve_site(args)
    since, until = period(args)
    if site.url is None and not (site.home / DB_FILENAME).is_file():
        raise CliError(f"no verdict log in {site.home}: give the station's --config, --home or --db")
    engine = make_engine(site.url, home=site.home)
    try:
        behind = schema_behind(engine)  # read only: never migrated here, said instead of a missing column
        if behind:
            raise CliError(behind)
        checks = read_activity(engine, since, until, args.station)
        if args.station is not None and not checks:
            known = station_names(engine)
            if args.station not in known:
                raise CliError(f"no station named {args.station!r}; the database knows: {', '.join(known) or 'none'}")
    except UNREACHABLE_ERRORS as err:
        raise CliError(f"the database cannot be read: {err}") from err
    finally:
        engine.dispose()
    summary = summarise(checks, since, until, args.station, site.config.audit_share)
    path = write_activity_report(Path(args.out), summary, checks)
    for line in headline(summary):
        print(line)
    print(f"report: {path}")
    return 0
