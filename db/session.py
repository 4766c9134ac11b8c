"""Engines, sessions and schema upgrades.

SQLite is the default: a file ``cupcheck.db`` under the station home, in WAL mode with foreign keys enforced on
every connection, and with SQLAlchemy (not the ``sqlite3`` module) emitting ``BEGIN`` so that DDL and SAVEPOINTs
are transactional. PostgreSQL is chosen by URL (``postgresql+psycopg://user@host/db``) so that several stations
share one database. The schema is always created by Alembic (:func:`init_db` upgrades to ``head``); the migration
scripts ship inside this package. A new revision is written with
``alembic.command.revision(alembic_config(engine), message, autogenerate=True)`` against a database at head; its
``OLDEST_READER`` says which older software may still use the schema it makes (:mod:`db.migrations.compat`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from db.schema import APPEND_ONLY, AuditLogImmutableError, SchemaCompat

_log = logging.getLogger(__name__)
DB_FILENAME = "cupcheck.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
IMMEDIATE_OPTION = "cupcheck_sqlite_immediate"
PG_CONNECT_TIMEOUT_S = 5


def default_sqlite_url(home: Path) -> str:
    """Return the URL of the station's SQLite file ``home/cupcheck.db``."""
    return f"sqlite:///{Path(home).resolve() / DB_FILENAME}"


URL_ERRORS: tuple[type[Exception], ...] = (ArgumentError,)
"""A database URL that cannot be used (it does not parse, its port is not a number, it names another database or a
driver not installed): what :func:`parse_url` and :func:`make_engine` raise, for code outside ``db`` to catch."""


def parse_url(text: str) -> URL:
    """The SQLAlchemy URL ``text`` names, every way it can be malformed said as an ``ArgumentError``.

    SQLAlchemy raises ``ArgumentError`` for a URL it cannot parse, but a plain ``ValueError`` (from ``int()``) for a
    port that is not a number, which the commands would report as a fault of cupcheck's own, with a traceback. The
    message names the port as written and never the password.

    Raises:
        sqlalchemy.exc.ArgumentError: the URL does not parse, or its port is not a number.
    """
    try:
        return make_url(text)
    except ValueError as err:  # SQLAlchemy's int() of the port; its own ArgumentError is no ValueError
        raise ArgumentError(
            f"the database URL's port {_port_text(text)!r} is not a number: write it as digits "
            "(postgresql+psycopg://USER@HOST:5432/DB), or leave it out for the default 5432"
        ) from err


def _port_text(text: str) -> str:
    """What stands where a URL's port goes: after the last ``:`` of the host part (after any ``user:password@``,
    before the ``/`` of the database or the ``?`` of the query)."""
    rest = text.split("://", 1)[-1].rpartition("@")[2]
    host = re.split(r"[/?]", rest, maxsplit=1)[0]
    return host.rpartition(":")[2]


SUPPORTED_BACKENDS = ("sqlite", "postgresql")
DEFAULT_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
"""The URL scheme of the driver cupcheck installs for each database it runs on."""


def make_engine(url: str | None = None, *, home: Path | None = None, echo: bool = False) -> Engine:
    """Create an engine for ``url`` (default: SQLite under ``home``) with the project's connection settings.

    SQLite connections get ``journal_mode=WAL``, ``foreign_keys=ON`` and a busy timeout on connect, and
    transactions begin with an explicit ``BEGIN``. PostgreSQL connections are pinged before use so a restarted
    server does not surface as an error on the first statement, and give up connecting after
    ``PG_CONNECT_TIMEOUT_S`` seconds (unless the URL sets ``connect_timeout``) so an unreachable server sends
    verdicts to the spool quickly.

    Args:
        url: a SQLAlchemy URL; ``None`` means ``sqlite:///<home>/cupcheck.db``.
        home: the station home, required when ``url`` is ``None``.
        echo: log every statement.

    Raises:
        ValueError: when neither ``url`` nor ``home`` is given.
        sqlalchemy.exc.ArgumentError: the URL does not parse (a port that is not a number too), names a database
            other than SQLite or PostgreSQL, or a driver that is not installed (``postgresql+psycopg2://``: the
            message names the URL to use).
    """
    if url is None:
        if home is None:
            raise ValueError("make_engine needs a URL or a station home")
        url = default_sqlite_url(home)
    parsed = parse_url(url)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ArgumentError(
            f"{parsed.get_backend_name()!r} is not a database cupcheck runs on: SQLite (sqlite:///PATH, one station) "
            "or PostgreSQL (postgresql+psycopg://USER@HOST/DB, a site)"
        )
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, echo=echo)
            _configure_sqlite(engine)
            return engine
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        return create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as err:  # SQLAlchemy imports the URL's driver as it makes the engine
        driver = parsed.get_driver_name()
        instead = parsed.set(drivername=DEFAULT_DRIVERS[parsed.get_backend_name()])
        raise ArgumentError(
            f"the driver {driver} is not installed: use {instead.render_as_string(hide_password=True)}"
        ) from err


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN (transactional DDL, savepoints)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if engine.url.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_session_factory(engine: Engine, *, writes: bool = False) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` that also refuses ORM bulk UPDATE/DELETE of the audit logs.

    Sessions keep loaded attributes after commit (``expire_on_commit=False``) so returned rows stay readable.

    Args:
        engine: the database.
        writes: on SQLite, open transactions with ``BEGIN IMMEDIATE`` (take the write lock up front, so two
            writers queue on the busy timeout instead of failing when one's read snapshot goes stale). No effect
            on PostgreSQL.
    """
    bind = engine.execution_options(**{IMMEDIATE_OPTION: True}) if writes else engine
    factory = sessionmaker(bind=bind, expire_on_commit=False)

    @event.listens_for(factory, "do_orm_execute")
    def _refuse_bulk_audit_change(state: ORMExecuteState) -> None:
        mapper = state.bind_mapper
        if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ in APPEND_ONLY:
            raise AuditLogImmutableError(f"{mapper.class_.__tablename__} is append-only")

    return factory


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic config whose scripts are this package's migrations and whose target is ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Downgrade the database behind ``engine`` to ``revision`` (``base`` drops every table)."""
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """Return the Alembic revision the database is at (``None`` when it has never been migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class SchemaTooNewError(ValueError):
    """The database was migrated by newer software past what this software can use (a ``ValueError``: the
    commands report it as a setting to fix, with exit status 2)."""


def schema_revisions(engine: Engine) -> list[str]:
    """The revisions this software's migrations know, newest first."""
    return [s.revision for s in ScriptDirectory.from_config(alembic_config(engine)).walk_revisions()]


def oldest_reader(engine: Engine, revision: str) -> str | None:
    """The oldest revision whose software may use the database at ``revision``, as its migration recorded it
    (``None`` when the database does not say: no ``schema_compat`` table, or no row for ``revision``)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(SchemaCompat.__tablename__):
            return None
        return conn.scalar(select(SchemaCompat.oldest_reader).where(SchemaCompat.revision == revision))


def schema_state(engine: Engine) -> str:
    """Where the database stands against this software's schema, with its URL (password masked), for ``init-site``'s
    report.

    A database that newer software migrated past this software's newest revision is used as it is when its
    schema allows (:func:`init_db` says so in a warning, and does not migrate it): the report must not call it this
    software's schema.
    """
    where = engine.url.render_as_string(hide_password=True)
    current, known = current_revision(engine), schema_revisions(engine)
    if current == known[0]:
        return f"{where} at this software's schema"
    if current is None or current in known:
        return f"{where} at revision {current or 'none'}, older than this software's {known[0]} (not yet upgraded)"
    return f"{where} at revision {current}, newer than this software's {known[0]} (used as it is)"


def schema_behind(engine: Engine) -> str:
    """Why this software cannot read the database yet, for the commands that only read it (``report``, ``order``):
    its schema is older than this software's, or it has none (``""``: at this software's schema, or newer, which the
    stations use as it is). Those commands never migrate: a report must not change the schema under stations still
    running the older software, so they say what would.
    """
    where = engine.url.render_as_string(hide_password=True)
    current, known = current_revision(engine), schema_revisions(engine)
    upgrade_it = "start an upgraded station on it, or run `cupcheck init-site --config FILE` to upgrade it"
    if current is None:
        return f"the database {where} holds no cupcheck schema (never set up): {upgrade_it}"
    if current not in known or current == known[0]:
        return ""
    return f"the database {where} is at schema {current}, older than this software's {known[0]}; {upgrade_it}"


def anchored_url(url: str, folder: Path) -> str:
    """``url`` with a relative SQLite file (``sqlite:///cupcheck.db``) taken from ``folder``: a station file's URL
    means the file beside it, wherever the command runs. Other URLs, and one that does not parse (said where it is
    used), as they are."""
    try:
        parsed = parse_url(url)
    except ArgumentError:
        return url
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" or "uri" in parsed.query:
        return url
    if Path(name).is_absolute():
        return url
    return parsed.set(database=str(folder / name)).render_as_string(hide_password=False)


def masked_url(text: str) -> str:
    """A database URL as a command line may repeat it, its password shown as ``***`` (``text`` as it is when it
    holds no password; one that does not parse, a port that is not a number say, still has its password masked)."""
    try:
        url = parse_url(text)
    except ArgumentError:
        return _masked_text(text)
    return text if url.password is None else url.render_as_string(hide_password=True)


def _masked_text(text: str) -> str:
    """``text`` with whatever stands between the first ``:`` after ``scheme://`` and the last ``@`` shown as ``***``:
    the password of a URL SQLAlchemy cannot parse (a password may hold a ``/`` or an ``@`` that is not escaped)."""
    scheme, sep, rest = text.partition("://")
    userinfo, at, place = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return text
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{place}"


def init_db(url: str | Engine | None = None, *, home: Path | None = None) -> Engine:
    """Bring the database to the newest schema with Alembic and return its engine.

    Safe to call on every start-up and from several stations at once (on PostgreSQL the migration takes an
    advisory lock). A database that newer software has migrated past this software's newest revision is left as
    it is and used when that revision's migration names a revision this software knows as its oldest reader
    (``schema_compat``): the stations of a site sharing one PostgreSQL are upgraded one at a time.

    Args:
        url: a URL, an existing engine, or ``None`` for the SQLite file under ``home``.
        home: the station home, used when ``url`` is ``None``.

    Raises:
        SchemaTooNewError: the database's schema is newer than this software and not usable by it.
    """
    engine = url if isinstance(url, Engine) else make_engine(url, home=home)
    known = schema_revisions(engine)
    current = current_revision(engine)
    if current is None or current in known:
        try:
            upgrade(engine, "head")
            return engine
        except CommandError:
            current = current_revision(engine)  # another station migrated it further meanwhile
            if current is None or current in known:
                raise
    oldest = oldest_reader(engine, current)
    if oldest is None or oldest not in known:
        needs = f"software that knows revision {oldest}" if oldest else "newer software"
        raise SchemaTooNewError(
            f"the database {engine.url.render_as_string(hide_password=True)} is at schema revision {current}, "
            f"newer than this software's {known[0]}, and needs {needs}: upgrade cupcheck on this station"
        )
    _log.warning(
        "the database is at schema revision %s, newer than this software's %s; that schema is usable from "
        "revision %s on, so it is used as it is (not migrated)",
        current,
        known[0],
        oldest,
    )
    return engine


def init_db_when_reached(engine: Engine) -> None:
    """Run :func:`init_db` on ``engine``'s database the first time one of its connections opens, before that
    connection is used: for a station that started while its database was away, so the first verdict it sends
    (a journal replay, a new cup, any read) meets the newest schema and not the one the software before left.

    The migration runs on an engine of its own (this one's pool is opening the connection that waits for it). A
    migration that fails (the server gone again, a schema too new) fails that connection, and the next one tries
    again.
    """

    def migrate(_dbapi_connection: object, _record: object) -> None:
        migrating = init_db(engine.url.render_as_string(hide_password=False))
        migrating.dispose()

    event.listen(engine, "first_connect", migrate)
