"""``cupcheck station``: the operator window: live camera, order entry, one-key check, PASS/FLAG banner.

Examples::

    cupcheck station                          # defaults: HOME from $CUPCHECK_HOME, synthetic cups as camera
    cupcheck station --config station.toml    # camera, database, precision, sound from a TOML file
    cupcheck station --home /srv/cupcheck --camera folder --folder recorded_cups/
    cupcheck station --demo                   # one-command demo: simulator cups, their types enrolled, no sign-in
"""

from __future__ import annotations

import argparse
from typing import Any

from station.config import ConfigError, config_from_dict, load_config
from station.errors import CliError
from station.home import resolve_home


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``station`` subcommand."""
    p = subparsers.add_parser(
        "station",
        help="open the operator window (camera, order, check with Space, PASS/FLAG)",
        description="Open the operator window. Settings come from --config (TOML; see station.config); the "
        "options below override them.",
    )
    p.add_argument("--config", default=None, metavar="FILE", help="station TOML file (default: built-in defaults)")
    p.add_argument(
        "--home",
        default=None,
        metavar="DIR",
        help="station home (default: config, $CUPCHECK_HOME, or the user data dir)",
    )
    p.add_argument("--camera", choices=("index", "url", "folder", "simulator"), default=None, help="frame source")
    p.add_argument("--index", type=int, default=None, help="webcam index (with --camera index)")
    p.add_argument("--url", default=None, help="stream URL or video file (with --camera url)")
    p.add_argument("--folder", default=None, help="image folder to replay (with --camera folder)")
    p.add_argument("--bundle", default=None, metavar="FILE", help="verdict model bundle JSON (default: shipped)")
    p.add_argument("--no-sound", action="store_true", help="no sound cue")
    p.add_argument(
        "--demo",
        action="store_true",
        help="demo: enrol the simulator's coin types into HOME/demo, show simulator cups, sign in as 'demo'",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the configuration, then run the window until it is closed."""
    try:
        config = load_config(args.config)
        overrides: dict[str, Any] = {}
        for key in ("index", "url", "folder"):
            if getattr(args, key) is not None:
                overrides[key] = getattr(args, key)
        if args.camera is not None:
            overrides["kind"] = args.camera
        data = config.model_dump(exclude_none=True)
        data["camera"] = {**data["camera"], **overrides}
        if args.no_sound:
            data["sound"] = False
        if args.bundle is not None:
            data["bundle"] = args.bundle
        config = config_from_dict(data, origin=args.config or "the command line")
    except ConfigError as err:
        raise CliError(str(err)) from err
    home = resolve_home(args.home if args.home is not None else config.home)
    if args.demo:
        home = home / "demo"
    from station.app import run_station

    try:
        return run_station(config, home, demo=args.demo)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(f"{err} (home: {home})") from err
