"""``cupcheck init-site``: set up once what the stations of a site share: the database, the image folder, the model
registry.

Examples::

    cupcheck init-site --config /srv/cupcheck/site.toml
    cupcheck init-site --db postgresql+psycopg://cupcheck@dbhost/cupcheck --store /mnt/share --models /mnt/share
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.commands.options import add_site_options, resolve_site
from station.errors import CliError

if TYPE_CHECKING:
    from db.repository import VerdictRepository


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``init-site`` subcommand."""
    p = subparsers.add_parser(
        "init-site",
        help="set up the database, shared image folder and model registry a site's stations share (once)",
        description="Migrate the database to this software's schema, make the shared image folder's captures/ and "
        "start the shared model registry (the shipped bundle in force) where the station file (or the flags) name "
        "them. A station whose image folder or registry is shared refuses to write into, or to take a model from, "
        "a folder where they are not: that is a share that is not mounted. Running it again changes nothing: once "
        "the database holds a cup, a captures/ or registry that is not there, or a folder without the photographs "
        "the database names, is a share that is not mounted (its mount point an empty local folder), and is refused "
        "rather than made on this disk.",
    )
    add_site_options(p, gallery=False)
    p.add_argument(
        "--new-share",
        action="store_true",
        help="the shared folder is new although the database holds cups already (a site that kept its images or "
        "models at each station until now): set it up anyway",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Set up what the site shares and say what is there."""
    from db.repository import VerdictRepository
    from db.session import schema_state
    from db.spool import UNREACHABLE_ERRORS
    from models.registry import SHIPPED, RegistryError, load_registry, registry_file, start_registry

    site = resolve_site(args)
    if site.store is None and site.models == site.home:
        raise CliError("nothing shared to set up: give the station file's store and models, or --store / --models")
    for shared in (site.store, None if site.models == site.home else site.models):
        if shared is not None and not shared.exists() and not shared.parent.is_dir():
            raise CliError(
                f"{shared.parent} does not exist: is the share mounted? A shared folder is made only inside a folder "
                "that is there (a mistyped or unmounted path would otherwise become a folder on this disk)"
            )
    try:
        repo = VerdictRepository.open(site.home, site.url, store=site.store)
    except ValueError as err:
        raise CliError(f"the database cannot be set up: {err}") from err
    except UNREACHABLE_ERRORS as err:
        raise CliError(f"the database cannot be reached: {err}") from err
    try:
        shared_models = site.models != site.home
        if not args.new_share:
            check_share_is_mounted(repo, registry_file(site.models) if shared_models else None)
        print(f"database: {schema_state(repo.engine)}")
        people, supervisors = repo.operators.count_active(), repo.operators.count_active("supervisor")
        if supervisors:
            print(f"operators: {people} may sign in, {supervisors} of them supervisors")
        else:
            print(
                f"operators: {people} may sign in and no supervisor; register one: "
                "cupcheck operators add NAME --role supervisor (with this --config or --db)"
            )
        if site.store is not None:
            print(f"images: {repo.store.create()}")
    finally:
        repo.engine.dispose()
    if shared_models:
        try:
            if registry_file(site.models).is_file():
                current = load_registry(site.models).current or SHIPPED
                print(f"model registry: {registry_file(site.models)} (already there; {current} in force)")
            else:
                start_registry(site.models)
                print(f"model registry: {registry_file(site.models)} (started; {SHIPPED} in force)")
        except (RegistryError, OSError) as err:
            raise CliError(str(err)) from err
    return 0


def check_share_is_mounted(repo: VerdictRepository, registry: Path | None) -> None:
    """Refuse to set up a shared folder for a database that already holds cups.

    A share that is not mounted leaves its mount point, an empty local folder, in its place: made there, a
    ``captures/`` or a registry would take the station's photographs and models onto this disk, hidden under the
    share once it is mounted again. So once the database holds a cup, its image folder must hold ``captures/`` and
    the photographs it names (a sample of the oldest and newest), and a shared registry must be there already.

    Args:
        repo: the site's database, with its shared image folder (or the home's, not checked).
        registry: the shared registry's file, ``None`` when the models are not shared.

    Raises:
        CliError: the database holds cups and a shared folder lacks what they imply.
    """
    checks = repo.count_verdicts()
    if not checks:
        return
    cups = f"{checks} cup{'s' if checks != 1 else ''}"
    mounted = "is the share mounted? init-site makes a shared folder only while the database holds no cup"
    new = "(a new share for a site that kept them at each station until now: --new-share)"
    store = repo.store
    if store.shared and not store.root.is_dir():
        raise CliError(f"{store.root} is not there, yet the database holds {cups}: {mounted} {new}")
    if store.shared:
        sample = repo.named_photographs()
        missing = [ref for ref in sample if not store.exists(ref)]
        if missing:
            raise CliError(
                f"{store.home} lacks {len(missing)} of {len(sample)} photographs the database names (such as "
                f"{missing[0]}): {mounted}; if it is mounted, they were lost from it: put them back from a backup "
                "(cupcheck restore)"
            )
    if registry is not None and not registry.is_file():
        raise CliError(f"{registry} is not there, yet the database holds {cups}: {mounted} {new}")
