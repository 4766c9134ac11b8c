"""Two PCs registering names that differ only in case at the same moment, on the real embedded PostgreSQL: one name
goes in, the other is refused (:func:`db.operators._queue_name_changes`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from db.operators import OperatorRoster
from db.session import init_db
from tests.db.conftest import EmbeddedPostgres

REPO_ROOT = Path(__file__).parents[2]
TRIALS = 3
WAIT_S = 90.0

_ADD_ONE = """
import sys
from db.operators import OperatorExistsError, OperatorRoster
from db.session import make_engine
url, name = sys.argv[1:3]
engine = make_engine(url)
try:
    OperatorRoster(engine).add(name, "operator", "2468", by="test@another-pc")
    print("added")
except OperatorExistsError:
    print("refused")
finally:
    engine.dispose()
"""


def _wait_for_blocked(watch: psycopg.Connection, n: int, workers: list[subprocess.Popen[str]]) -> None:
    """Until ``n`` server processes wait for a lock (each worker inside ``add``, held up by the gate or by the
    other's registration)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        row = watch.execute(b"SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted").fetchone()
        if row is not None and row[0] >= n:
            return
        done = [w for w in workers if w.poll() is not None]
        assert not done, f"a worker ended before the gate opened: {[w.communicate() for w in done]}"
        assert time.monotonic() < deadline, f"the workers did not reach their insert within {WAIT_S:.0f} s"
        time.sleep(0.05)


def test_names_differing_only_in_case_added_at_once_by_two_processes_register_one(pg_server: EmbeddedPostgres) -> None:
    """Each trial holds the table against inserts while two processes add "Ána<k>" and "ána<k>", then lets go once
    both wait: without the advisory lock both had read the names before either inserted, and both went in."""
    database = pg_server.create_database()
    url = pg_server.url(database)
    engine = init_db(url)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        with (
            psycopg.connect(pg_server.dsn(database)) as gate,
            psycopg.connect(pg_server.dsn(database), autocommit=True) as watch,
        ):
            for k in range(TRIALS):
                names = [f"Ána{k}", f"ána{k}"]
                with gate.transaction():
                    gate.execute(b"LOCK TABLE operators IN EXCLUSIVE MODE")  # reads go on, inserts wait
                    workers = [
                        subprocess.Popen(
                            [sys.executable, "-c", _ADD_ONE, url, name],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True,
                            cwd=REPO_ROOT,
                            env=env,
                        )
                        for name in names
                    ]
                    try:
                        _wait_for_blocked(watch, len(workers), workers)
                    except BaseException:
                        for w in workers:
                            w.kill()
                        raise
                outcomes = [w.communicate(timeout=WAIT_S) for w in workers]
                assert [w.returncode for w in workers] == [0, 0], outcomes
                assert sorted(out.strip() for out, _ in outcomes) == ["added", "refused"], (k, outcomes)
                registered = [s.name for s in OperatorRoster(engine).summaries()]
                assert len([n for n in registered if n.casefold() == names[0].casefold()]) == 1, registered
    finally:
        engine.dispose()
        pg_server.drop_database(database)
