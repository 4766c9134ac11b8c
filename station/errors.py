"""Errors the command line turns into a message on stderr and an exit status."""

from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix (bad argument, unreadable file, missing model): exit status 2."""

    exit_code = 2
