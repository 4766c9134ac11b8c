"""The multi-station load test, small: two station processes on a real embedded PostgreSQL, one killed mid-cup."""

from __future__ import annotations

from pathlib import Path

from db.loadtest import (
    StationPlan,
    StationRun,
    coins_of,
    crash_plans,
    cup_key,
    replayed_by,
    run_load_test,
    take_line,
)


def test_a_killed_station_replays_its_journal_and_loses_nothing(tmp_path: Path) -> None:
    plans = crash_plans(2, 30)
    assert plans[0] == StationPlan("station-1", 30, outage_until=15, kill_at=10) and plans[1].kill_at is None

    report = run_load_test(plans, workdir=tmp_path, log=False)

    assert report.errors == ()
    # killed while journalling (after 10 cups); the restart journalled up to cup 14, then replayed all 15 (16 when
    # the cup in flight at the kill was journalled too: it is journalled again, and sent twice, harmlessly); the
    # report used to count only the 10 or 11 in the journal at the kill
    assert report.killed == 1 and 15 <= report.replayed <= 16
    assert report.acknowledged == 60 and report.stored == 60
    assert (report.lost, report.duplicated, report.half_written, report.journal_left) == (0, 0, 0, 0)
    assert report.ok and report.verdicts_per_s > 0


def test_cup_keys_are_stable_and_distinct() -> None:
    keys = {cup_key(f"station-{s}", c) for s in (1, 2) for c in range(100)}
    assert len(keys) == 200 and cup_key("station-1", 7) == cup_key("station-1", 7)
    assert {coins_of(c) for c in range(16)} == set(range(1, 9))


def test_a_station_killed_and_restarted_is_timed_from_its_first_launch() -> None:
    """Only the launch that finished used to be timed, so a run whose one station was killed looked faster than a
    clean one (9.5 against 8.5 verdicts/s, with 10 cups more to replay)."""
    run = StationRun(StationPlan("station-1", 30, outage_until=15, kill_at=10))
    take_line(run, "begun", ["100.0"])  # the first launch, killed after 10 cups
    take_line(run, "begun", ["104.5"])  # the restart
    take_line(run, "done", ["104.5", "107.0", "0"])
    assert (run.begun, run.ended, run.pending) == (100.0, 107.0, 0)


def test_the_replayed_count_is_what_each_launch_sent() -> None:
    """A call that replays the journal first: what left the journal was sent, less the call's own verdict when the
    database went away again and it joined the journal."""
    assert replayed_by(25, 0, journalled=False) == 25  # all replayed, the new verdict stored
    assert replayed_by(25, 1, journalled=True) == 25  # all replayed, the new verdict could not be written
    assert replayed_by(25, 26, journalled=True) == 0  # still down: nothing sent, the new verdict journalled
    assert replayed_by(25, 16, journalled=True) == 10  # the database left again part-way
    assert replayed_by(0, 0, journalled=False) == 0
    run = StationRun(StationPlan("station-1", 50, outage_until=25, kill_at=16))
    take_line(run, "replayed", ["7"])  # a launch cut short after sending 7 (the restart sends them again)
    take_line(run, "replayed", ["25"])
    assert run.replayed == 32
