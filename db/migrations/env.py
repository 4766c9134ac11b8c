"""Alembic environment: migrates the engine handed over by :func:`db.session.alembic_config`.

On PostgreSQL the whole upgrade runs in one transaction holding an advisory lock, so stations that start at the
same time migrate one after the other. SQLite uses batch mode for ALTERs, which rebuilds a table (copy, drop,
rename): foreign keys are switched off for that (else dropping ``cups`` breaks on the coins naming its rows) and
checked whole before the commit, and the transaction takes the write lock up front (``BEGIN IMMEDIATE``), so a
second process starting at the same time waits for the first instead of failing on a locked database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine, text

from db.schema import Base
from db.session import IMMEDIATE_OPTION

MIGRATION_LOCK_ID = 0x637570636865636B  # "cupcheck"


def _engine() -> Engine:
    engine = context.config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no engine or sqlalchemy.url given to the migration environment")
    from db.session import make_engine

    return make_engine(url)


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Switch SQLite's foreign keys on or off, outside any transaction (inside one SQLite ignores the pragma)."""
    raw = connection.connection.driver_connection
    assert raw is not None  # a checked-out connection
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection."""
    engine = _engine()
    with engine.connect() as connection:
        is_sqlite = connection.dialect.name == "sqlite"
        if is_sqlite:
            _sqlite_foreign_keys(connection, False)
            connection.execution_options(**{IMMEDIATE_OPTION: True})
        try:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=is_sqlite,
                transactional_ddl=True,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_ID})
                context.run_migrations()
                if is_sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(
                            f"the migration would leave rows naming rows that do not exist: {broken[:5]}"
                        )
        finally:
            if is_sqlite:
                _sqlite_foreign_keys(connection, True)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
