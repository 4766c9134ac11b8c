"""``cupcheck``: the command-line entry point.

Every subcommand lives in ``station/commands/<name>.py`` and registers itself through ``register``; this module
only builds the parser, dispatches, and turns :class:`~station.errors.CliError` into exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from station.commands import COMMANDS
from station.commands.groups import register_groups
from station.errors import CliError


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="cupcheck", description="Coin-cup verification station: detect, identify and verify coins in a cup."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"station.commands.{name}")
        module.register(sub)
    register_groups(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cupcheck`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except CliError as err:
        print(f"cupcheck {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output went to `head` or the like, which has read all it wanted
        # the interpreter would complain again when it flushes stdout at exit: point stdout at nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command a closed pipe stopped
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
