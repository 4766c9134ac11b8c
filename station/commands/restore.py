"""``cupcheck restore DIR``: put a backup made by ``cupcheck backup`` back where the station's configuration says its
data lives (a new disk, a new database server), after checking that it restores whole.

Examples::

    cupcheck restore /mnt/usb/cupcheck-backup --config station.toml
    cupcheck doctor --config station.toml       # then: is the station ready again? (the command prints it, with
                                                # the same --config, --home, --db, --store, --models and --gallery)
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

from station.commands.options import add_site_options, resolve_site, site_flags
from station.errors import CliError
from station.units import size_text


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``restore`` subcommand."""
    p = subparsers.add_parser(
        "restore",
        help="put a backup back into an empty home and database (after a lost disk or server)",
        description="Check the backup DIR (as cupcheck backup --check does), then copy it back where the station's "
        "configuration says its data lives: the photographs and crops into the image folder, the gallery, the model "
        "registry, the home's calibration, empty-tray photo, orders.csv, journal and sign-in cache, and last the "
        "verdict log (the SQLite file, or a site's PostgreSQL dump restored with pg_restore into its empty database, "
        "in one transaction). Nothing is overwritten: a home or database that already holds data is refused.",
    )
    p.add_argument("folder", metavar="DIR", help="the backup folder (made by cupcheck backup --out DIR)")
    add_site_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Restore the backup and say what was put back."""
    from tqdm import tqdm

    from db.backup import DumpError
    from station.backup import BackupError, restore

    def progress(items: Any, total: int) -> Any:
        return tqdm(items, total=total, desc="images", unit="file", file=sys.stderr, disable=total < 200)

    folder = Path(args.folder)
    site = resolve_site(args)
    try:
        report = restore(site.station_config(), site.home, folder, progress=progress)
    except (BackupError, DumpError) as err:
        raise CliError(str(err)) from err
    except (sqlite3.Error, OSError) as err:
        raise CliError(f"the restore stopped: {err}") from err
    counted = "" if report.verdicts is None else f" ({report.verdicts} verdicts)"
    print(f"database: {report.database}{counted}")
    print(f"images: {report.images_new} copied")
    print(f"other files: {report.files} put back; {size_text(report.bytes)} in {report.seconds:.1f} s")
    print(f"restored from {folder}; is the station ready? cupcheck doctor{site_flags(args)}")
    return 0
