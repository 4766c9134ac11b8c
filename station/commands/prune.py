"""``cupcheck prune``: drop the photographs and coin crops of old cups nobody will look at again.

Examples::

    cupcheck prune --older-than-days 90 --dry-run     # what would go, and how much room it frees
    cupcheck prune --older-than-days 90               # cron: 0 3 * * 0 cupcheck prune --older-than-days 90
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from station.commands.options import add_site_options, resolve_site
from station.errors import CliError
from station.units import size_text


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``prune`` subcommand."""
    p = subparsers.add_parser(
        "prune",
        help="drop the images of old PASSes nobody ruled on, to keep the station's store bounded",
        description="Drop the photograph and coin crops of every cup of this station checked more than "
        "--older-than-days ago that PASSed, that nobody ever ruled on and that the PASS audit did not draw; the "
        "first check of a cup turned over goes with its re-check. Verdicts, coins and their embeddings stay; FLAGs, "
        "ruled cups and "
        "audited PASSes keep their images. A file another cup names stays, and so does one written in the last hour "
        "(the next run removes it, with any other file older than an hour that no row names).",
    )
    p.add_argument("--older-than-days", type=float, required=True, metavar="DAYS", help="cups checked before then")
    add_site_options(p, models=False, gallery=False)
    p.add_argument("--station", default=None, help="station name (default: the config's)")
    p.add_argument("--dry-run", action="store_true", help="count what would go, change nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prune and print what went."""
    from db.repository import OrphanSweepRefused, VerdictRepository

    if not args.older_than_days > 0:
        raise CliError(f"--older-than-days must be positive, got {args.older_than_days}")
    site = resolve_site(args)
    config = site.config
    if site.store is not None and site.url is None:  # the files of other stations, named in a database not given
        raise CliError(
            f"the image folder {site.store} is a site's shared folder, but no site database is given (--db, or the "
            "station's --config): a station's own log does not name the other stations' images"
        )
    station = args.station if args.station is not None else config.name
    before = datetime.now(UTC) - timedelta(days=args.older_than_days)
    try:
        repo = VerdictRepository.open(site.home, site.url, store=site.store)
    except ValueError as err:
        raise CliError(f"{err} (home: {site.home})") from err
    try:
        if args.station is not None:
            from db.activity import station_names

            known = station_names(repo.engine)
            if args.station not in known:
                raise CliError(f"no station named {args.station!r}; the database knows: {', '.join(known) or 'none'}")
        report = repo.prune_images(before, station=station, audit_share=config.audit_share, dry_run=args.dry_run)
        swept = []
        if not args.dry_run:
            try:
                swept = repo.gc_orphan_images()
            except OrphanSweepRefused as err:
                print(f"warning: {err}", file=sys.stderr)
    finally:
        repo.engine.dispose()
    verb = "would drop" if args.dry_run else "dropped"
    print(
        f"{station}: {verb} the images of {report.cups} cups checked before {before:%Y-%m-%d %H:%M} UTC: "
        f"{report.files} files, {size_text(report.bytes)}"
        + (f"; {len(swept)} files no row names any more removed" if swept else "")
    )
    return 0
