"""``cupcheck init-site``: set up once what the stations of a site share: the database, the image folder, the model
registry.

Examples::

    cupcheck init-site --config /srv/cupcheck/site.toml
    cupcheck init-site --db postgresql+psycopg://cupcheck@dbhost/cupcheck --store /mnt/share --models /mnt/share
"""

from __future__ import annotations

import argparse
from typing import Any

from station.commands.options import add_site_options, resolve_site
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``init-site`` subcommand."""
    p = subparsers.add_parser(
        "init-site",
        help="set up the database, shared image folder and model registry a site's stations share (once)",
        description="Migrate the database to this software's schema, make the shared image folder's captures/ and "
        "start the shared model registry (the shipped bundle in force) where the station file (or the flags) name "
        "them. A station whose image folder or registry is shared refuses to write into, or to take a model from, "
        "a folder where they are not: that is a share that is not mounted. Running it again changes nothing that is "
        "there already.",
    )
    add_site_options(p, gallery=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Set up what the site shares and say what is there."""
    from db.repository import VerdictRepository
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
        where = repo.engine.url.render_as_string(hide_password=True)
        print(f"database: {where} at this software's schema")
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
    if site.models != site.home:
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
