"""The multi-station load test, small: two station processes on a real embedded PostgreSQL, one killed mid-cup."""

from __future__ import annotations

from pathlib import Path

from db.loadtest import StationPlan, coins_of, crash_plans, cup_key, run_load_test


def test_a_killed_station_replays_its_journal_and_loses_nothing(tmp_path: Path) -> None:
    plans = crash_plans(2, 30)
    assert plans[0] == StationPlan("station-1", 30, outage_until=15, kill_at=10) and plans[1].kill_at is None

    report = run_load_test(plans, workdir=tmp_path, log=False)

    assert report.errors == ()
    assert report.killed == 1 and report.replayed >= 9  # killed while journalling; the restart replayed those
    assert report.acknowledged == 60 and report.stored == 60
    assert (report.lost, report.duplicated, report.half_written, report.journal_left) == (0, 0, 0, 0)
    assert report.ok and report.verdicts_per_s > 0


def test_cup_keys_are_stable_and_distinct() -> None:
    keys = {cup_key(f"station-{s}", c) for s in (1, 2) for c in range(100)}
    assert len(keys) == 200 and cup_key("station-1", 7) == cup_key("station-1", 7)
    assert {coins_of(c) for c in range(16)} == set(range(1, 9))
