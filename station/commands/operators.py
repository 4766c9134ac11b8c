"""``cupcheck operators``: who may sign in at the stations of a database, and the history of every change.

Examples::

    cupcheck operators add ana --role supervisor          # asks for the PIN twice, without showing it
    cupcheck operators add bo                             # an operator
    cupcheck operators set-pin bo                         # a forgotten PIN
    cupcheck operators role bo supervisor
    cupcheck operators deactivate bo --note "left the company"
    cupcheck operators list                               # everyone, with the cups they checked
    cupcheck operators history bo
    cupcheck operators --config site.toml list            # the site's shared PostgreSQL database
    printf '2468\\n' | cupcheck operators add ana --role supervisor --pin-stdin   # from a script
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from station.commands.options import add_site_options, resolve_site
from station.errors import CliError

if TYPE_CHECKING:
    from db.operators import OperatorRoster

ROLES = ("operator", "supervisor")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``operators`` subcommand and its actions."""
    p = subparsers.add_parser(
        "operators",
        help="add operators and supervisors, set a PIN, change a role, deactivate; list them and the history",
        description="Who may sign in at the stations that share this database (the station file's, --db, else the "
        "home's SQLite file). Nobody is ever deleted: their name stays on the cups they checked and the labels "
        "they gave; deactivate someone who leaves. The last active supervisor stays one. Every change is kept in "
        "an append-only history with the account and computer it was made from. PINs are typed twice without "
        "being shown (or read from standard input with --pin-stdin), never given on the command line, and stored "
        "only as salted hashes. Exit status 2 for an unknown person, a taken name, a bad PIN or a refused change.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    ls = sub.add_parser("list", help="everyone registered: role, whether they may sign in, cups checked")
    ls.add_argument("--json", action="store_true", help="print one JSON object")

    add = sub.add_parser("add", help="register a person with a PIN")
    add.add_argument("name", help="the name they sign in with")
    add.add_argument("--role", choices=ROLES, default="operator", help="operator (default) or supervisor")
    _pin_options(add)

    pin = sub.add_parser("set-pin", help="give a person a new PIN (a forgotten one, or one someone else learnt)")
    pin.add_argument("name")
    _pin_options(pin)

    role = sub.add_parser("role", help="make a person an operator or a supervisor")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    _note_option(role)

    for action, text in (
        ("deactivate", "take away a person's right to sign in (their cups and labels stay theirs)"),
        ("activate", "give a deactivated person back the right to sign in"),
    ):
        a = sub.add_parser(action, help=text)
        a.add_argument("name")
        _note_option(a)

    hist = sub.add_parser("history", help="every change to who may sign in, oldest first")
    hist.add_argument("name", nargs="?", default=None, help="one person's changes only")
    hist.add_argument("--json", action="store_true", help="print one JSON object")
    actions = [sub.choices[name] for name in sub.choices]
    add_site_options(p, store=False, models=False, gallery=False, after=actions)
    p.set_defaults(func=run)


def _note_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--note", default="", help="why, for the history")


def _pin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the PIN from the first line of standard input (scripts) instead of asking twice",
    )
    _note_option(parser)


def read_pin(args: argparse.Namespace) -> str:
    """The new PIN: the first line of standard input with ``--pin-stdin``, else typed twice at the terminal.

    Raises:
        CliError: no terminal to type it at, nothing on standard input, or the two entries differ.
    """
    if args.pin_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("--pin-stdin: standard input holds no PIN")
        if any("\udc80" <= c <= "\udcff" for c in line):  # bytes that were not text (Python's surrogate escapes)
            raise CliError("--pin-stdin: the PIN is not UTF-8 text")
        return line
    if not sys.stdin.isatty():
        raise CliError("no terminal to type the PIN at: give it on standard input with --pin-stdin")
    first = getpass.getpass(f"PIN for {args.name.strip()}: ")
    if getpass.getpass("The same PIN again: ") != first:
        raise CliError("the two PINs differ: nothing was changed")
    return first


def run(args: argparse.Namespace) -> int:
    """Carry out the action against the database the options name."""
    from db.operators import OperatorError, UnknownOperatorError
    from db.repository import VerdictRepository
    from db.spool import UNREACHABLE_ERRORS

    site = resolve_site(args)
    pin = read_pin(args) if args.action in ("add", "set-pin") else None
    try:
        repo = VerdictRepository.open(site.home, site.url)
    except ValueError as err:
        raise CliError(f"the database cannot be used: {err}") from err
    except UNREACHABLE_ERRORS as err:
        raise CliError(f"the database cannot be reached: {err}") from err
    try:
        return _act(args, repo.operators, pin)
    except (OperatorError, UnknownOperatorError) as err:
        raise CliError(str(err)) from err
    finally:
        repo.engine.dispose()


def _act(args: argparse.Namespace, roster: OperatorRoster, pin: str | None) -> int:
    if args.action == "list":
        return _list(roster, json_out=args.json)
    if args.action == "history":
        return _history(roster, args.name, json_out=args.json)
    if args.action == "add":
        assert pin is not None
        info = roster.add(args.name, args.role, pin, note=args.note)
        print(f"added {info.name} ({info.role}); they can sign in now")
    elif args.action == "set-pin":
        assert pin is not None
        info = roster.set_pin(args.name, pin, note=args.note)
        print(f"new PIN for {info.name}" + ("" if info.active else " (deactivated: cannot sign in until activated)"))
    elif args.action == "role":
        info = roster.set_role(args.name, args.role, note=args.note)
        print(f"{info.name} is {'a supervisor' if info.role == 'supervisor' else 'an operator'}")
    else:
        info = roster.set_active(args.name, args.action == "activate", note=args.note)
        print(f"{info.name} {'may sign in' if info.active else 'can no longer sign in'}")
    return 0


def _when(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone().strftime("%Y-%m-%d %H:%M")


def _list(roster: OperatorRoster, *, json_out: bool) -> int:
    people = roster.summaries()
    if json_out:
        print(json.dumps({"operators": [asdict(p) for p in people]}, default=str, indent=1))
        return 0
    if not people:
        print("nobody is registered: add a supervisor first (cupcheck operators add NAME --role supervisor)")
        return 0
    width = max(len("name"), *(len(p.name) for p in people))
    print(f"{'name':<{width}}  {'role':<10}  {'sign-in':<11}  {'cups':>7}  last check        registered")
    for p in people:
        state = "active" if p.active else "deactivated"
        print(
            f"{p.name:<{width}}  {p.role:<10}  {state:<11}  {p.cups:>7}  {_when(p.last_check):<16}  "
            f"{_when(p.created_at)}"
        )
    if not any(p.active and p.role == "supervisor" for p in people):
        print("no active supervisor: nobody can review flagged cups (cupcheck operators add NAME --role supervisor)")
    return 0


def _history(roster: OperatorRoster, name: str | None, *, json_out: bool) -> int:
    changes = roster.history(name)
    if json_out:
        print(json.dumps({"history": [asdict(c) for c in changes]}, default=str, indent=1))
        return 0
    for c in changes:
        change = {
            "added": f"added as {c.new_value}",
            "pin_changed": "new PIN",
            "role_changed": f"role {c.old_value} -> {c.new_value}",
            "deactivated": "deactivated",
            "activated": "activated",
        }.get(c.action, c.action)
        note = f"  ({c.note})" if c.note else ""
        print(f"{_when(c.created_at)}  {c.operator}: {change}  by {c.changed_by}{note}")
    if not changes:
        print("no changes recorded")
    return 0
