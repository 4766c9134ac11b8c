"""``cupcheck models list|promote|rollback``: the registry of verdict models (a station's, or a site's shared one).

Examples::

    cupcheck models list
    cupcheck models promote verdict-1a2b3c4d
    cupcheck models promote shipped          # back to the bundle shipped with cupcheck
    cupcheck models rollback                 # the model in force before the current one
    cupcheck models --config site.toml list  # the site's registry, which every station there follows
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from station.commands.options import add_site_options, resolve_site
from station.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``models`` subcommand and its actions."""
    p = subparsers.add_parser(
        "models",
        help="list, promote or roll back the station's verdict models",
        description="The registry under MODELS/models/ (MODELS: --models, the config's models, else the home) keeps "
        "every retrained bundle with its holdout metrics; one is in force (none: the shipped bundle). A running "
        "station that follows this registry loads the model put in force between cups. Exit status 2 for an "
        "unknown version or nothing to roll back.",
    )
    add_site_options(p, database=False)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="every registered version, newest last; * marks the one in force")
    ls.add_argument("--json", action="store_true", help="print the registry as JSON")
    pr = sub.add_parser("promote", help="put a registered version (or 'shipped') in force")
    pr.add_argument("version", help="a version from `cupcheck models list`, or 'shipped'")
    sub.add_parser("rollback", help="put back the version in force before the current one")
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
    """Carry out the action."""
    from models.registry import SHIPPED, RegistryError, load_registry, promote, rollback

    home = resolve_site(args).models
    try:
        if args.action == "promote":
            reg = promote(home, args.version)
            print(f"in force: {reg.current or SHIPPED}")
            return 0
        if args.action == "rollback":
            reg = rollback(home)
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
    return 0
