"""How a station's database stands, for ``cupcheck doctor``: reachable, at which schema revision against this
software's, and how many people may sign in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from db.operators import OperatorRoster
from db.schema import Role
from db.session import alembic_config, current_revision, make_engine, oldest_reader


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
    """Look at the database ``url`` (``None``: the home's SQLite file) without changing it."""
    try:
        engine = make_engine(url, home=home)
    except (ValueError, SQLAlchemyError) as err:
        return DatabaseHealth(where=str(url), error=f"the database URL cannot be used: {err}")
    where = engine.url.render_as_string(hide_password=True)
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
    except SQLAlchemyError as err:
        first = str(err).strip().splitlines()[0]
        return DatabaseHealth(where=where, error=f"{where} cannot be reached: {first}")
    finally:
        engine.dispose()
