"""One module per ``cupcheck`` subcommand; each exposes ``register(subparsers)``.

To add a command, write ``station/commands/<name>.py`` with a ``register`` function and add the module's name
to ``COMMANDS`` below. Targets of ``cupcheck train|eval|bench`` are listed in
``station.commands.groups.GROUPS``.
"""

COMMANDS: tuple[str, ...] = (
    "synth",
    "snapshot",
    "calibrate",
    "mat",
    "enroll",
    "identify",
    "detect",
    "station",
    "review",
    "verify",
    "demo",
    "retrain",
    "prune",
    "backup",
    "restore",
    "models",
    "operators",
    "report",
    "order",
    "init_site",
    "doctor",
    "simulate_day",
)
