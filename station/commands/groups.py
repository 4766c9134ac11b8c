"""Command groups whose targets live in separate modules: ``cupcheck train|eval|bench <target>``.

A target module ``station/commands/<group>_<target>.py`` exposes ``register(subparsers)`` exactly like a
top-level command, but is attached under its group. Add a target by writing the module and adding its name to
the group's tuple in ``GROUPS``.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "train": ("train a model from data", ("embedder", "detector", "voter")),
    "eval": ("evaluate a model and write a report", ("embed", "detect", "verdict")),
    "bench": ("measure speed", ("embed", "detect", "verdict", "db", "camera")),
}


def register_groups(sub: argparse._SubParsersAction[Any]) -> None:
    """Attach every group with at least one target to the top-level subparsers."""
    for group, (help_text, targets) in GROUPS.items():
        if not targets:
            continue
        parser = sub.add_parser(group, help=help_text, description=help_text)
        group_sub = parser.add_subparsers(dest="target", metavar="TARGET")
        group_sub.required = True
        for target in targets:
            module = importlib.import_module(f"station.commands.{group}_{target}")
            module.register(group_sub)
