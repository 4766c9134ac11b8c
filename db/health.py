"""How a station's database stands, for ``cupcheck doctor``: reachable, at which schema revision against this
software's, and how many people may sign in. A SQLite file is only read: opened read-only, and never made when it is
not there."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError

from db.backup import sqlite_file
from db.operators import OperatorRoster
from db.schema import Role
from db.session import (
    alembic_config,
    current_revision,
    default_sqlite_url,
    make_engine,
    masked_url,
    oldest_reader,
    parse_url,
)


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open the SQLite file ``path`` for reading only, so that nothing is written in its folder (which may be a
    read-only medium): with ``immutable`` when no ``-wal`` file lies beside it (everything is in the file itself),
    else ``mode=ro`` (a station has it open: what it wrote last is in that journal).

    Raises:
        FileNotFoundError: there is no such file (it is never made).
        sqlite3.Error: it cannot be opened.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite database at {path}")
    live = Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if live else "&immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)


def read_only_engine(path: Path) -> Engine:
    """An engine that only reads the SQLite file ``path`` (:func:`open_read_only`): no journal mode is set, no
    file is made beside it."""
    return create_engine("sqlite://", creator=lambda: open_read_only(path))


@dataclass(frozen=True)
class DatabaseHealth:
    """What :func:`database_health` found.

    Attributes:
        where: the URL, password hidden.
        error: why the database cannot be used (a bad URL, unreachable); ``""`` when it can be read.
        revision: its schema revision (``None``: empty, never set up).
        head: this software's newest revision.
        newer: the database is at a revision this software does not know.
        usable: this software can read and write it (a newer revision whose oldest reader it knows, or its own).
        people: active people who may sign in.
        supervisors: active supervisors among them.
        server_version: a PostgreSQL server's version (``(18, 6)``; ``()``: SQLite, or not reached).
    """

    where: str
    error: str = ""
    revision: str | None = None
    head: str = ""
    newer: bool = False
    usable: bool = False
    people: int = 0
    supervisors: int = 0
    server_version: tuple[int, ...] = ()


def database_health(url: str | None, home: Path) -> DatabaseHealth:
    """Look at the database ``url`` (``None``: the home's SQLite file) without changing it: a SQLite file is opened
    read-only, and one that is not there is said to be empty (not made)."""
    try:
        where = parse_url(url or default_sqlite_url(home)).render_as_string(hide_password=True)
        file = sqlite_file(url, home)
        engine = make_engine(url, home=home) if file is None else read_only_engine(file)
    except (ValueError, SQLAlchemyError) as err:
        return DatabaseHealth(where=masked_url(str(url)), error=f"the database URL cannot be used: {err}")
    if file is not None and not file.is_file():
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head() or ""
        engine.dispose()
        return DatabaseHealth(where=where, head=head)
    try:
        scripts = ScriptDirectory.from_config(alembic_config(engine))
        head = scripts.get_current_head() or ""
        known = {s.revision for s in scripts.walk_revisions()}
        at = current_revision(engine)
        info = (engine.dialect.server_version_info or ()) if engine.dialect.name == "postgresql" else ()
        version = tuple(v for v in info if isinstance(v, int))
        if at is None:
            return DatabaseHealth(where=where, head=head, server_version=version)
        newer = at not in known
        usable = not newer or oldest_reader(engine, at) in known
        roster = OperatorRoster(engine)
        return DatabaseHealth(
            where=where,
            revision=at,
            head=head,
            newer=newer,
            usable=usable,
            people=roster.count_active(),
            supervisors=roster.count_active(Role.SUPERVISOR),
            server_version=version,
        )
    except (SQLAlchemyError, sqlite3.Error) as err:
        first = str(err).strip().splitlines()[0]
        return DatabaseHealth(where=where, error=f"{where} cannot be reached: {first}")
    finally:
        engine.dispose()
