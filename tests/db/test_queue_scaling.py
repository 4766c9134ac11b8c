"""The review queue's work is bounded by its window, not by the history of the verdict log.

A station logs about a thousand cups a day, and the supervisor's window asks for the queue after every ruling.
SQLite's virtual-machine steps (counted by its progress handler) measure the work of one ``review_queue`` call
without timing anything: on a log four times longer it may grow about as the log does, where a query that scans
the cups once per cup grows sixteen-fold.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from db.repository import VerdictRepository
from db.session import init_db, make_engine

FILL = (
    "INSERT INTO stations (id, name, created_at) VALUES (1, 'station-1', CURRENT_TIMESTAMP)",
    "INSERT INTO operators (id, name, role, pin_hash, active, created_at)"
    " VALUES (1, 'olga', 'operator', 'x', 1, CURRENT_TIMESTAMP)",
    # every :every-th cup is the re-check of the cup before it (none for 0); a third of the verdicts are FLAGs
    """WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
    INSERT INTO cups (id, station_id, operator_id, expected_type, created_at, recheck_of_id)
    SELECT x, 1, 1, 't' || (x % 40), datetime('2026-01-01', '+' || (x * 30) || ' seconds'),
           CASE WHEN :every > 0 AND x % :every = 0 THEN x - 1 END FROM g""",
    """INSERT INTO verdicts (id, cup_id, idempotency_key, decision, p_correct, threshold, reasons, model_version,
           timings, created_at)
    SELECT id, id, printf('%036d', id), CASE WHEN id % 3 = 0 THEN 'flag' ELSE 'pass' END,
           CASE WHEN id % 3 = 0 THEN 0.2 ELSE 0.999 END, 0.5, '[]', 'm', '{}', created_at FROM cups""",
    "INSERT INTO captures (cup_id, sha256, ref, width, height, size_bytes)"
    " SELECT id, printf('%064d', id), 'captures/' || id, 640, 480, 1000 FROM cups",
    """WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 2)
    INSERT INTO coins (cup_id, "index", x1, y1, x2, y2, confidence, partial, top_type)
    SELECT id, i, 0, 0, 1, 1, 0.9, 0, 't' || ((id + i) % 40) FROM cups, k""",
    "INSERT INTO labels (cup_id, target, kind, operator_id, created_at, is_current)"
    " SELECT id, 'cup:' || id, 'confirmed', 1, created_at, 1 FROM cups WHERE id % 7 = 0",
    "ANALYZE",  # what PRAGMA optimize, or a person tuning the station, leaves behind
)


def queue_steps(folder: Path, n_cups: int, every: int) -> int:
    """SQLite VM steps (in units of 100) of one ``review_queue`` on a log of ``n_cups`` cups, every ``every``-th
    of them a re-check."""
    url = f"sqlite:///{folder / f'log_{n_cups}_{every}.db'}"
    engine = init_db(url)
    with engine.begin() as conn:
        for sql in FILL:
            conn.execute(text(sql), {"n": n_cups, "every": every})
    engine.dispose()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    counted: Engine = make_engine(url)
    event.listen(counted, "connect", lambda dbapi, _: dbapi.set_progress_handler(count, 100))
    queue = VerdictRepository(counted, folder).review_queue(limit=20, window=50)
    counted.dispose()
    assert len(queue) == 20
    for item in queue:  # FLAGs (a PASS at p 0.999 against 0.5 needs no look), none of them answered by a re-check
        assert item.cup_id % 3 == 0 and not (every and (item.cup_id + 1) % every == 0)
        assert (item.recheck_of is not None) == (every > 0 and item.cup_id % every == 0)
    return steps


@pytest.mark.parametrize("every", [0, 5])
def test_review_queue_work_grows_far_slower_than_the_log(tmp_path: Path, every: int) -> None:
    small, large = queue_steps(tmp_path, 1000, every), queue_steps(tmp_path, 4000, every)
    # measured: about 1.7 times; a query reading every coin grows 4 times, one scanning every cup per cup 15 times
    assert large < 2.5 * small, f"{small} -> {large} steps for a log four times longer"
