"""``cupcheck backup --out DIR``: copy what the station would lose with its disk into DIR, laid out as a station
home (restore: use DIR as the home, or copy it back). A second backup into the same DIR copies only what changed.

Examples::

    cupcheck backup --config station.toml --out /mnt/usb/cupcheck-backup
    cupcheck backup --check /mnt/usb/cupcheck-backup         # would it restore? (every image hashed again)
    # cron, each night after the retrain:
    # 30 3 * * * cupcheck backup --config /srv/cupcheck/station.toml --out /mnt/backup/cupcheck
"""

from __future__ import annotations

import argparse
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Any

from station.commands.options import add_site_options, resolve_site, site_flags
from station.errors import CliError
from station.units import size_text


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``backup`` subcommand."""
    p = subparsers.add_parser(
        "backup",
        help="copy the verdict log, photographs, gallery, models and set-up into a folder laid out as a home",
        description="Copy the SQLite verdict log (consistently, while the station runs), the photographs and coin "
        "crops, the gallery, the model registry, and the home's calibration, empty-tray photo, orders.csv, verdict "
        "journal and sign-in cache into OUT, laid out as a station home: restoring is using OUT as the home. Run "
        "again into the same OUT, it copies only what changed. A site's PostgreSQL database is dumped with pg_dump "
        f"into OUT/cupcheck.pgdump (restore: pg_restore --no-owner -d URL); exit status {EXIT_DAMAGED} when the "
        "database could not be backed up (everything else is still copied).",
    )
    add_site_options(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="the backup folder (another disk)")
    where.add_argument(
        "--check",
        metavar="DIR",
        help="check a backup instead: every image its verdict log names there and unchanged, the gallery and every "
        f"model loading (exit status {EXIT_DAMAGED} when something would not restore)",
    )
    p.set_defaults(func=run)


EXIT_DAMAGED = 1
"""Exit status of ``--check`` when the backup would not restore whole, and of a backup without the verdict log."""


def run(args: argparse.Namespace) -> int:
    """Back the station up and say what was copied."""
    from tqdm import tqdm

    from station.backup import BackupError, back_up, check_backup

    def progress(items: Any, total: int) -> Any:
        return tqdm(items, total=total, desc="images", unit="file", file=sys.stderr, disable=total < 200)

    if args.check is not None:
        try:
            found = check_backup(Path(args.check), progress=progress)
        except BackupError as err:
            raise CliError(str(err)) from err
        if found.verdicts is not None:
            held = f"{found.verdicts} verdicts, {found.images} images named"
        elif found.dump is not None:
            held = f"a PostgreSQL dump ({found.dump}), {found.images} images"
        else:
            held = f"no verdict log, {found.images} images"
        print(f"{args.check}: {held}")
        for ref in found.missing[:10]:
            print(f"missing: {ref}")
        for ref in found.damaged[:10]:
            print(f"damaged: {ref}")
        for line in found.problems:
            print(line)
        if found.sound:
            flags = site_flags(args) or ", with the station's --config"  # a check is of a folder, not of a station
            print(f"sound: it restores whole (cupcheck restore {shlex.quote(args.check)}{flags})")
            return 0
        print(f"NOT SOUND: {len(found.missing)} missing, {len(found.damaged)} damaged, {len(found.problems)} other")
        return EXIT_DAMAGED

    site = resolve_site(args)
    config = site.station_config()

    try:
        report = back_up(config, site.home, Path(args.out), progress=progress)
    except BackupError as err:
        raise CliError(str(err)) from err
    except (FileNotFoundError, sqlite3.Error, OSError) as err:
        raise CliError(f"the backup stopped: {err}") from err
    print(f"database: {report.database}")
    print(f"images: {report.images_new} new, {report.images_kept} already in the backup")
    print(f"other files: {report.files} copied; {size_text(report.bytes)} in {report.seconds:.1f} s")
    restore = f"cupcheck restore {shlex.quote(str(report.folder))}{site_flags(args)}"  # back where it came from
    print(f"backup: {report.folder} (restore: {restore})")
    if not report.database_ok:
        print("the verdict log is NOT in this backup: see 'database' above", file=sys.stderr)
        return EXIT_DAMAGED
    return 0
