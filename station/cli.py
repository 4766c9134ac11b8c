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
    except (OSError, OverflowError) as err:  # a folder, disk or permission refused, a number past any calendar
        print(f"cupcheck {args.command}: error: {problem_text(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        if not type(err).__module__.startswith("sqlalchemy."):
            raise  # a fault of cupcheck's own: its traceback is what a bug report needs
        # a database URL that names no driver or does not parse, a server that refuses or cannot be reached
        print(f"cupcheck {args.command}: error: the database cannot be used: {problem_text(err)}", file=sys.stderr)
        return 2
    return int(result or 0)


def exit_status(err: BaseException) -> int:
    """The exit status :func:`main` ends with when ``err`` is raised out of a command: 130 interrupted, 141 a
    closed pipe, 2 a refused file or folder or a database that cannot be used, 1 a fault of cupcheck's own."""
    if isinstance(err, SystemExit):
        return err.code if isinstance(err.code, int) else 1
    if isinstance(err, CliError):
        return err.exit_code
    if isinstance(err, KeyboardInterrupt):
        return 130
    if isinstance(err, BrokenPipeError):
        return 141
    if isinstance(err, (OSError, OverflowError)) or type(err).__module__.startswith("sqlalchemy."):
        return 2
    return 1


def problem_text(err: BaseException) -> str:
    """One line saying what went wrong, naming the file where the error has one."""
    if isinstance(err, OSError) and err.strerror:
        names = [str(f) for f in (err.filename, err.filename2) if f is not None]
        return f"{err.strerror}: {' -> '.join(names)}" if names else err.strerror
    orig = getattr(err, "orig", None)  # a database driver's own error, under SQLAlchemy's wrapper
    text = str(orig if orig is not None else err).strip()
    return text.splitlines()[0] if text else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
