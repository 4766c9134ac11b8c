"""The throw-away PostgreSQL server: it starts in a folder deeper than a Unix socket path may be, and restarts."""

from __future__ import annotations

from pathlib import Path

import psycopg

from db.embedded_pg import running_server


def test_server_in_a_deep_folder_serves_over_tcp_and_restarts(tmp_path: Path) -> None:
    root = tmp_path / ("a" * 60) / ("b" * 40)
    root.mkdir(parents=True)
    with running_server(root, max_connections=8) as server:
        assert len(str(server.pgdata / ".s.PGSQL.65535")) > 107  # too long for a Unix-domain socket
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("SHOW max_connections").fetchone() == ("8",)
        with server.stopped():
            pass
        name = server.create_database()
        with psycopg.connect(server.dsn(name)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
