"""Options shared by several commands: ``--backend`` (the bench targets), ``--cut-workers`` (train, eval),
``--references-per-design`` (retrain, simulate-day), where a station's data lives (``--config``, ``--home``,
``--db``, ``--store``, ``--models``, ``--gallery``), and the check that a count option is at least its smallest
value."""

from __future__ import annotations

import argparse
import shlex
from argparse import SUPPRESS
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models.runtime import BACKENDS
from station.errors import CliError

if TYPE_CHECKING:
    from station.config import StationConfig


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--backend {both,onnx,torch}`` (default ``both``, the station's ONNX Runtime first)."""
    parser.add_argument(
        "--backend",
        choices=("both", *BACKENDS),
        default="both",
        help="what runs the embedder, the mask segmenter and YOLO (default both: onnx, the station's, then torch)",
    )


def chosen_backends(args: argparse.Namespace) -> tuple[str, ...]:
    """The backends ``--backend`` names, in timing order."""
    return tuple(BACKENDS) if args.backend == "both" else (str(args.backend),)


def add_cut_workers(parser: argparse.ArgumentParser) -> None:
    """Add ``--cut-workers N``: processes that cut and embed a data set not yet cached."""
    parser.add_argument(
        "--cut-workers",
        type=int,
        default=1,
        metavar="N",
        help="processes that cut and embed a data set not yet in --cache (default 1; each runs one thread)",
    )


def seed_number(text: str) -> int:
    """An argparse type for ``--seed``: a whole number from 0 to 2**32 - 1 (what NumPy's generators take)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number, not {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is from 0 to {2**32 - 1}, not {value}")
    return value


def check_at_least(flag: str, value: int, low: int) -> int:
    """``value`` of the option ``flag`` when it is at least ``low``.

    Raises:
        CliError: it is below ``low`` (``"--FLAG must be >= LOW, got VALUE"``).
    """
    if value < low:
        raise CliError(f"{flag} must be >= {low}, got {value}")
    return int(value)


def check_cut_workers(args: argparse.Namespace) -> int:
    """``--cut-workers`` as given.

    Raises:
        CliError: it is below 1.
    """
    return check_at_least("--cut-workers", args.cut_workers, 1)


def add_references_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--references-per-design N``: station references the retrain keeps per (type, design)."""
    parser.add_argument(
        "--references-per-design",
        type=int,
        default=20,
        metavar="N",
        help="station references per (type, design): confirmed coins of the training split added to the candidate's "
        "gallery (20; 0: none)",
    )


def _default(config: bool) -> str:
    return "default: the config's, else the home" if config else "default: the home"


def add_models_option(parser: argparse.ArgumentParser, *, config: bool = False, default: object = None) -> None:
    """Add ``--models DIR``: the folder whose ``models/`` holds the registry of verdict models (``config``: the
    command also reads ``--config``)."""
    parser.add_argument(
        "--models",
        default=default,
        metavar="DIR",
        help="the folder whose models/ holds the registry of verdict models "
        f"(a site's shared folder; {_default(config)})",
    )


def add_site_options(
    parser: argparse.ArgumentParser,
    *,
    database: bool = True,
    store: bool = True,
    models: bool = True,
    gallery: bool = True,
    after: Iterable[argparse.ArgumentParser] = (),
) -> None:
    """Add ``--config FILE``, ``--home DIR``, and with ``database`` ``--db URL``, with ``store`` ``--store DIR``,
    with ``models`` ``--models DIR``, with ``gallery`` ``--gallery DIR``: where a station's data lives (each flag
    overrides the config's setting).

    Args:
        parser: the command's parser.
        database: add ``--db``.
        store: add ``--store``.
        models: add ``--models``.
        gallery: add ``--gallery``.
        after: the parsers of the command's actions (``cupcheck models list``), which take the same flags after
            the action's name too (``cupcheck models list --config site.toml``); given there, a flag wins over
            the same flag before it.
    """
    _add_site_flags(parser, database=database, store=store, models=models, gallery=gallery, default=None)
    for action in after:
        _add_site_flags(action, database=database, store=store, models=models, gallery=gallery, default=SUPPRESS)


def _add_site_flags(
    parser: argparse.ArgumentParser, *, database: bool, store: bool, models: bool, gallery: bool, default: object
) -> None:
    """The flags of :func:`add_site_options`; ``default`` ``SUPPRESS`` leaves a flag not given to the parser
    before (an action's parser must not reset what its command's parser read)."""
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help="station TOML file (home, database, image store, models, gallery)",
    )
    parser.add_argument(
        "--home", default=default, metavar="DIR", help="station home (default: config, $CUPCHECK_HOME, ...)"
    )
    if database:
        parser.add_argument(
            "--db", default=default, metavar="URL", help="database URL (default: the config's, else SQLite)"
        )
    if store:
        parser.add_argument(
            "--store", default=default, metavar="DIR", help="image folder (default: the config's, else the home)"
        )
    if models:
        add_models_option(parser, config=True, default=default)
    if gallery:
        add_gallery_option(parser, config=True, default=default)


SITE_FLAGS = ("config", "home", "db", "store", "models", "gallery")
"""The options of :func:`add_site_options` that say where a station's data lives."""


def site_flags(args: argparse.Namespace) -> str:
    """The location options given to this command, as a command line repeats them (``" --config station.toml --home
    '/srv/new disk'"``; ``""`` for none), so the next command it suggests works on the same home and database.

    Each value is shell-quoted; a database URL's password is shown as ``***``, as everywhere cupcheck names a
    database (put it back, or keep the URL in the station file).
    """
    from db.session import masked_url

    given = []
    for name in SITE_FLAGS:
        value = getattr(args, name, None)
        if value is None:
            continue
        text = masked_url(str(value)) if name == "db" else str(value)
        given.append(f" --{name} {shlex.quote(text)}")
    return "".join(given)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE``: take the home (and the models and gallery folders) from a station TOML file, as the
    station itself does; ``--home``, ``--models`` and ``--gallery`` override it."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="station TOML file: its home, models and gallery (the flags below override it)",
    )


def add_gallery_option(parser: argparse.ArgumentParser, *, config: bool = False, default: object = None) -> None:
    """Add ``--gallery DIR``: the folder whose ``gallery/`` holds the enrolled coin types (``config``: the command
    also reads ``--config``)."""
    parser.add_argument(
        "--gallery",
        default=default,
        metavar="DIR",
        help=f"the folder whose gallery/ holds the enrolled coin types (a site's shared folder; {_default(config)})",
    )


@dataclass(frozen=True)
class Site:
    """Where a station's data lives, from ``--config`` and the flags that override it.

    Attributes:
        config: the station configuration (defaults without ``--config``).
        home: the station home (created if missing).
        url: the database URL (``None``: the home's SQLite file).
        store: the image folder (``None``: the home).
        models: the folder whose ``models/`` holds the registry (the home unless one is named).
        gallery: the folder whose ``gallery/`` holds the enrolled types (the home unless one is named).
    """

    config: StationConfig
    home: Path
    url: str | None
    store: Path | None
    models: Path
    gallery: Path

    def station_config(self) -> StationConfig:
        """The station configuration with the flags' database, store, models and gallery in it (a models or gallery
        folder that is the home is left unnamed, as a station that shares neither has it)."""
        return self.config.model_copy(
            update={
                "database_url": self.url,
                "store": self.store,
                "models": None if self.models == self.home else self.models,
                "gallery": None if self.gallery == self.home else self.gallery,
            }
        )


def _flag(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name, None)
    return None if value is None else str(value)


def resolve_site(args: argparse.Namespace) -> Site:
    """The :class:`Site` that ``--config`` and the flags of :func:`add_site_options` name.

    Raises:
        CliError: the configuration file is missing or not valid.
    """
    from station.config import ConfigError, load_config
    from station.home import resolve_home

    try:
        config = load_config(_flag(args, "config"))
    except ConfigError as err:
        raise CliError(str(err)) from err
    home = resolve_home(_flag(args, "home") or config.home)
    store = _flag(args, "store")
    models = _flag(args, "models")
    gallery = _flag(args, "gallery")
    return Site(
        config,
        home,
        _flag(args, "db") or config.database_url,
        Path(store) if store is not None else config.store,
        Path(models) if models is not None else config.models or home,
        Path(gallery) if gallery is not None else config.gallery or home,
    )
