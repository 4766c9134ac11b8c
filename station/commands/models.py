"""``cupcheck models list|promote|rollback``: the registry of verdict models (a station's, or a site's shared one).

Examples::

    cupcheck models list
    cupcheck models promote verdict-1a2b3c4d
    cupcheck models promote shipped          # back to the bundle shipped with cupcheck
    cupcheck models rollback                 # the model in force before the current one
    cupcheck models --config site.toml list  # the site's registry, which every station there follows
    cupcheck models prune --keep 5           # drop the folders of old versions (cron: weekly)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.commands.options import Site, add_site_options, check_at_least, resolve_site
from station.errors import CliError
from station.units import size_text

if TYPE_CHECKING:
    from models.registry import ModelEntry


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``models`` subcommand and its actions."""
    p = subparsers.add_parser(
        "models",
        help="list, promote or roll back the station's verdict models",
        description="The registry under MODELS/models/ (MODELS: --models, the config's models, else the home) keeps "
        "every retrained bundle with its holdout metrics; one is in force (none: the shipped bundle). A running "
        "station that follows this registry loads the model put in force between cups; `list` also names the "
        "model each station of the database judged its newest cup with. Exit status 2 for an unknown version, "
        "nothing to roll back, a version whose bundle this software cannot run (its files changed, its voter "
        "trained on other pair features, or its embedder not the gallery's), or a MODELS folder other than the "
        "home that holds no registry (a share that is not mounted; nothing is written there).",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="every registered version, newest last; * marks the one in force")
    ls.add_argument("--json", action="store_true", help="print the registry as JSON")
    pr = sub.add_parser("promote", help="put a registered version (or 'shipped') in force")
    pr.add_argument("version", help="a version from `cupcheck models list`, or 'shipped'")
    rb = sub.add_parser("rollback", help="put back the version in force before the current one")
    pn = sub.add_parser(
        "prune",
        help="remove the folders of old versions (each nightly retrain adds one)",
        description="Keep the version in force, the KEEP versions successive rollbacks would put back and the KEEP "
        "newest versions; remove the others' folders (their entries and metrics stay, marked pruned) and every "
        "stored file no kept version holds.",
    )
    pn.add_argument("--keep", type=int, default=5, metavar="KEEP", help="rollback steps and newest versions kept (5)")
    pn.add_argument("--dry-run", action="store_true", help="say what would go, change nothing")
    add_site_options(p, store=False, gallery=False, after=(ls, pr, rb, pn))
    p.set_defaults(func=run)


def _metric(entry_metrics: dict[str, Any]) -> str:
    new = entry_metrics.get("holdout", {}).get("new", {})
    if not new:
        return ""
    lb = new.get("precision_lower_bound")
    ap = new.get("auto_pass")
    lb_s = "—" if lb is None else f"{lb:.4f}"
    ap_s = "—" if ap is None else f"{ap:.1%}"
    return f"holdout: auto-pass {ap_s}, precision lower bound {lb_s}"


def run(args: argparse.Namespace) -> int:
    """Carry out the action.

    A shared registry that is not there is refused before any action (:func:`models.registry.check_registry`): a
    share that is not mounted, never an empty registry with the shipped bundle in force, and nothing is written under
    its mount point. A promotion or rollback in a home with no registry is refused before the registry's lock is
    taken (:func:`_check_registry_there`), so a mistyped ``--home`` gets no folders made in it.
    """
    from models.registry import (
        SHIPPED,
        RegistryError,
        check_registry,
        load_registry,
        promote,
        prune_versions,
        rollback,
    )

    site = resolve_site(args)
    home = site.models
    try:
        check_registry(site.home, home)
        if args.action == "prune":
            check_at_least("--keep", args.keep, 0)
            done = prune_versions(home, args.keep, dry_run=args.dry_run)
            verb = "would remove" if args.dry_run else "removed"
            n, f = len(done.versions), done.files
            print(
                f"{verb} {n} version folder{'s' if n != 1 else ''} ({', '.join(done.versions) or 'none'}) and "
                f"{f} stored file{'s' if f != 1 else ''}, {size_text(done.bytes)}; kept {len(done.kept)}: "
                + (", ".join(done.kept) or "none")
            )
            if done.leftovers:
                left = len(done.leftovers)
                print(
                    f"{verb} {left} folder{'s' if left != 1 else ''} left by a run stopped while it copied a model "
                    f"into the registry: {', '.join(done.leftovers)}"
                )
            return 0
        if args.action in ("promote", "rollback"):
            _check_registry_there(home, args.action, getattr(args, "version", None))
        if args.action == "promote":
            if args.version != SHIPPED:
                _check_promotable(load_registry(home).get(args.version))
            reg = promote(home, args.version, check=lambda version: _check_runnable(site, version))
            print(f"in force: {reg.current or SHIPPED}")
            return 0
        if args.action == "rollback":
            reg = rollback(home, check=lambda version: _check_runnable(site, version, "roll back to"))
            print(f"rolled back; in force: {reg.current or SHIPPED}")
            return 0
        reg = load_registry(home)
    except RegistryError as err:
        raise CliError(str(err)) from err
    if args.json:
        print(json.dumps(reg.to_dict(), indent=1))
        return 0
    current = reg.current or SHIPPED
    print(f"{'*' if current == SHIPPED else ' '} {SHIPPED:<18} the bundle shipped with cupcheck")
    for e in reg.versions:
        mark = "*" if e.version == reg.current else " "
        print(f"{mark} {e.version:<18} {e.status:<9} {e.created_at[:19]}  from {e.parent}  {_metric(e.metrics)}")
    for h in reg.history[-5:]:
        print(f"  {h.at[:19]} {h.action} {h.previous} -> {h.version}")
    for line in _station_lines(site, reg.current):
        print(line)
    return 0


def _check_registry_there(models: Path, action: str, version: str | None) -> None:
    """Refuse ``promote`` and ``rollback`` where ``models/registry.json`` is not, before the registry's lock is taken
    (taking it makes the ``models/`` folder): such a home has no version registered and the shipped bundle in force,
    so neither could change anything, and a mistyped ``--home`` must not get folders made in it.

    Raises:
        CliError: there is no registry, with what that means for the action.
    """
    from models.registry import SHIPPED, registry_file

    path = registry_file(models)
    if path.is_file():
        return
    if action == "rollback":
        what = "nothing to roll back to: no model was ever put in force here"
    elif version == SHIPPED:
        what = f"{SHIPPED} is already in force"
    else:
        what = f"model version {version!r} is not registered"
    raise CliError(
        f"{what} (no model registry at {path}: is --home, --models or the config's home right?); nothing was written"
    )


def _check_promotable(entry: ModelEntry) -> None:
    """Refuse a version that would PASS no cup (no certified threshold); say when the gate rejected it.

    Raises:
        CliError: the version certified no threshold.
    """
    threshold = entry.metrics.get("threshold")
    if isinstance(threshold, dict) and "threshold" in threshold and threshold["threshold"] is None:
        raise CliError(
            f"{entry.version} certified no threshold at its target precision: in force, it would PASS no cup "
            "and send every one to a person. Not put in force"
        )
    if entry.status == "rejected":
        print(f"warning: the retrain's gate rejected {entry.version}: {entry.note}", file=sys.stderr)


def _check_runnable(site: Site, version: str, doing: str = "put in force") -> None:
    """Refuse a registered version this software would not run: load its bundle and run the checks a station runs
    on it (its files match their hashes, its voter was trained on the pair features this version measures, and its
    embedder is the one the site's gallery was enrolled with, when there is a gallery). In force, such a version
    would keep every station from loading it and every retrain from starting.

    Raises:
        CliError: the bundle cannot be run here, with why.
    """
    from models.bundle import load_bundle
    from models.gallery import Gallery, GalleryMismatchError
    from models.registry import bundle_path

    try:
        bundle = load_bundle(bundle_path(site.models, version))
        bundle.check_feature_set()
        bundle.check_files()
    except (FileNotFoundError, ValueError) as err:
        raise CliError(f"cannot {doing} {version}: {err}") from err
    gallery = site.gallery / "gallery"
    if not Gallery.exists(gallery):
        return
    try:
        Gallery.load(gallery, embedder_version=bundle.embedder_version)
    except GalleryMismatchError as err:
        raise CliError(f"cannot {doing} {version}: its embedder is not the gallery's ({err})") from err
    # a damaged gallery is the gallery's problem (doctor names it), not the bundle's
    except (OSError, ValueError, KeyError, RuntimeError):
        return


def _station_lines(site: Site, current: str | None) -> list[str]:
    """What each station of the site's database judged its newest cup with (none without a database)."""
    from db.repository import VerdictRepository
    from db.session import DB_FILENAME
    from models.bundle import load_bundle

    if site.url is None and not (site.home / DB_FILENAME).is_file():
        return []
    try:
        repo = VerdictRepository.open(site.home, site.url, migrate=False)  # read only: no schema upgrade
        try:
            rows = repo.station_models()
        finally:
            repo.engine.dispose()
    except Exception as err:  # the registry was listed; the database is only a footnote to it
        return [f"stations: the database cannot be read ({err.__class__.__name__}: {err})"]
    in_force = current or load_bundle(None).version
    lines = ["stations (the model of each one's newest cup):"] if rows else []
    for row in rows:
        behind = "" if row.model_version == in_force else "  not the model in force"
        lines.append(f"  {row.station:<18} {row.model_version:<18} {row.at:%Y-%m-%d %H:%M} UTC{behind}")
    return lines
