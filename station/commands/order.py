"""``cupcheck order NUMBER``: every check of an order's cups, at every station, with its photograph: what to look at
when a customer says an order arrived wrong.

Examples::

    cupcheck order A-1001 --config station.toml
    cupcheck order A-1001 --config station.toml --out complaint-A-1001     # the photographs, to send or keep
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.commands.options import add_site_options, check_at_least, resolve_site
from station.errors import CliError

if TYPE_CHECKING:
    from db.records import OrderCheck, StoredCoin

EXIT_UNKNOWN = 1
"""Exit status when no cup of the order was ever checked."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``order`` subcommand."""
    p = subparsers.add_parser(
        "order",
        help="every check of an order's cups, at every station, with its photograph (a customer's complaint)",
        description="List the checks of the cups of order NUMBER, newest first, at every station of the database: "
        "when, where, by whom, PASS or FLAG, coins found against coins ordered, the reasons, a supervisor's "
        f"ruling and the photograph's file. --out DIR copies the photographs into DIR. Exit status {EXIT_UNKNOWN} "
        "when no cup of the order was ever checked.",
    )
    p.add_argument("number", metavar="NUMBER", help="the order number, as scanned")
    add_site_options(p, models=False, gallery=False)
    p.add_argument(
        "--limit",
        type=int,
        default=20,
        metavar="N",
        help="at most N checks, the newest (20); how many older ones are left out is said",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="copy each check's photograph into DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the order's checks, print them, copy the photographs."""
    from db.repository import PRUNED_REF, VerdictRepository
    from db.session import DB_FILENAME, make_engine, schema_behind
    from db.spool import UNREACHABLE_ERRORS

    limit = check_at_least("--limit", args.limit, 1)
    number = args.number.strip()
    site = resolve_site(args)
    if site.url is None and not (site.home / DB_FILENAME).is_file():
        raise CliError(f"no verdict log in {site.home}: give the station's --config, --home or --db")
    out = Path(args.out) if args.out else None
    engine = make_engine(site.url, home=site.home)
    rows = []
    try:
        behind = schema_behind(engine)  # read only: never migrated here, said instead of a missing column
        if behind:
            raise CliError(behind)
        repo = VerdictRepository(engine, site.home, store=site.store)  # read only: no migration, no write
        checks = repo.order_checks(number, limit)
        older = repo.count_order_checks(number) - limit if len(checks) == limit else 0
        for c in checks:
            photo = None if not c.photo or c.photo == PRUNED_REF else repo.store.path(c.photo)
            problem = _photo_problem(c.photo, photo, PRUNED_REF)
            if problem:
                photo = None
            copied = None
            if out is not None and photo is not None:
                copied = _export(out, number, c, photo, repo.cup_coins(c.cup_id))
            rows.append(
                {
                    "cup_id": c.cup_id,
                    "checked_at": c.at.isoformat(),
                    "station": c.station,
                    "operator": c.operator,
                    "expected_type": c.expected_type,
                    "verdict": c.decision.value,
                    "coins": c.n_coins,
                    "ordered_coins": c.expected_count,
                    "reasons": list(c.reasons),
                    "ruling": c.ruling,
                    "photo": None if photo is None else str(photo),
                    "photo_problem": problem or None,
                    "copied_to": None if copied is None else str(copied),
                }
            )
    except UNREACHABLE_ERRORS as err:
        raise CliError(f"the database cannot be read: {err}") from err
    finally:
        engine.dispose()
    if args.json:
        doc = {"order": number, "checks": rows, "truncated": older > 0, "older_not_shown": older}
        print(json.dumps(doc, indent=1))
    elif not rows:
        print(f"no cup of order {number} was ever checked")
    else:
        for r, c in zip(rows, checks, strict=True):
            ordered = "" if c.expected_count is None else f" of {c.expected_count} ordered"
            ruled = f"; ruled: {c.ruling}" if c.ruling else ""
            print(
                f"{c.at.astimezone():%Y-%m-%d %H:%M} {c.station} {c.operator}: {c.decision.value.upper()} "
                f"{c.expected_type}, {c.n_coins} coins{ordered}{ruled}"
            )
            for reason in c.reasons:
                print(f"  - {reason}")
            print(f"  photo: {r['copied_to'] or r['photo'] or r['photo_problem']}")
        if older:
            print(f"{older} older check{'s' if older != 1 else ''} not shown (--limit {limit + older} shows them)")
    return 0 if rows else EXIT_UNKNOWN


def _photo_problem(ref: str | None, photo: Path | None, pruned: str) -> str:
    """Why a check's photograph cannot be shown (``""``: it can): pruned on purpose (``cupcheck prune``; a FLAG's never
    is), never recorded, or missing from the image folder it was stored in (another folder than the station's, or
    lost: that one is worth finding)."""
    if ref == pruned:
        return "pruned (cupcheck prune)"
    if ref is None or photo is None:
        return "none recorded"
    if not photo.is_file():
        return f"{photo.name} is missing from {photo.parent} (is this the station's image folder?)"
    return ""


def _file_name(number: str) -> str:
    """The order number made safe as part of a file name: ``SO/2026/0042`` becomes ``SO_2026_0042`` (a slash, or
    another character a file system refuses, would name a folder or fail)."""
    return re.sub(r"[^\w.-]+", "_", number).strip("._") or "order"


def _export(out: Path, number: str, check: OrderCheck, photo: Path, coins: Sequence[StoredCoin]) -> Path:
    """Copy the photograph into ``out`` as it was taken, and beside it the same photograph with the coins the
    station found outlined and numbered (green: matched the expected type); returns the copy. The files are named
    by the order, the second, the station, the cup and the verdict: two cups of an order checked in one second (at
    two stations, or a cup and its re-check) keep a photograph each."""
    import cv2
    import numpy as np

    from station.controllers.overlay import draw_coins

    out.mkdir(parents=True, exist_ok=True)
    when = f"{check.at.astimezone():%Y%m%d-%H%M%S}"
    stem = f"{_file_name(number)}_{when}_{_file_name(check.station)}_cup{check.cup_id}_{check.decision.value}"
    copied = out / f"{stem}{photo.suffix}"
    shutil.copy2(photo, copied)
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is not None:
        outlined = draw_coins(np.asarray(image, np.uint8), coins, check.expected_type)
        cv2.imwrite(str(out / f"{stem}_coins.jpg"), outlined)
    return copied
