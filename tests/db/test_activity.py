"""db.activity on real SQLite and real PostgreSQL: a period's checks with station, operator, order, coin count,
re-check link, check time and the rulings people gave."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from db.activity import read_activity, station_names
from db.repository import VerdictRepository
from db.schema import LabelKind
from models.types import Decision
from tests.db.factories import OPERATOR, STATION, SUPERVISOR, make_record

DAY = datetime(2026, 3, 2, tzinfo=UTC)


def test_a_period_reads_back_every_check_with_its_rulings(repo: VerdictRepository) -> None:
    at = [DAY + timedelta(hours=h) for h in (8, 9, 10, 11)]
    passed = replace(make_record(1, created_at=at[0]), timings_ms={"detect": 50.0, "total": 151.0})
    first = make_record(2, decision=Decision.FLAG, p_correct=0.1, created_at=at[1], order=None)
    first = replace(first, reasons=("coin 2 shows the shared obverse — turn it over",))
    recheck = make_record(3, created_at=at[2], recheck_of=first.idempotency_key)
    other = make_record(
        4, decision=Decision.FLAG, p_correct=0.2, station="station-2", created_at=at[3], top_types=("eur_1", "eur_2")
    )
    before = make_record(5, created_at=DAY - timedelta(seconds=1))
    after = make_record(6, created_at=DAY + timedelta(days=1))
    ids = {}
    for name, record in [("passed", passed), ("first", first), ("recheck", recheck), ("other", other),
                         ("before", before), ("after", after)]:  # fmt: skip
        ids[name] = repo.cup_of_verdict(repo.log_verdict(record))
    repo.relabel(SUPERVISOR, ids["passed"], LabelKind.CONFIRMED)  # an audited PASS, right
    repo.relabel(SUPERVISOR, ids["other"], LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, ids["other"], LabelKind.CORRECTED, corrected_type="eur_2")  # the ruling in force
    repo.relabel(SUPERVISOR, ids["other"], LabelKind.NOT_A_COIN, coin_index=1)
    repo.relabel(SUPERVISOR, ids["recheck"], LabelKind.WRONG_SIDE, coin_index=0)  # keeps the type

    checks = read_activity(repo.engine, DAY, DAY + timedelta(days=1))
    assert [c.cup_id for c in checks] == [ids["passed"], ids["first"], ids["recheck"], ids["other"]]
    p, f, r, o = checks
    assert (p.at, p.station, p.operator, p.order, p.expected_type) == (at[0], STATION, OPERATOR, "A-100", "eur_1")
    assert (p.decision, p.p_correct, p.n_coins, p.check_ms, p.model_version) == (Decision.PASS, 0.97, 3, 151.0, "m1")
    assert (p.cup_ruling, p.ruled, p.wrong) == ("confirmed", True, False)
    assert (f.order, f.reasons, f.check_ms, f.ruled, f.recheck_of) == (None, first.reasons, None, False, None)
    assert (r.recheck_of, r.cup_ruling, r.coin_rulings, r.wrong_coins, r.ruled, r.wrong) == (
        ids["first"], None, 1, 0, True, False,
    )  # fmt: skip
    assert (o.station, o.n_coins, o.cup_ruling, o.corrected_type, o.wrong_coins, o.wrong) == (
        "station-2", 2, "corrected", "eur_2", 1, True,
    )  # fmt: skip

    assert [c.cup_id for c in read_activity(repo.engine, DAY, DAY + timedelta(days=1), "station-2")] == [ids["other"]]
    assert read_activity(repo.engine, DAY + timedelta(days=2), DAY + timedelta(days=3)) == []
    assert station_names(repo.engine) == sorted({STATION, "station-2"})


def test_a_period_needs_timezone_aware_bounds(repo: VerdictRepository) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        read_activity(repo.engine, datetime(2026, 3, 2), datetime(2026, 3, 3))


def test_the_cups_a_station_put_aside_come_with_what_was_ruled_on_them(repo: VerdictRepository) -> None:
    at = [DAY + timedelta(minutes=m) for m in range(8)]

    def log(
        seed: int, minute: int, reasons: tuple[str, ...] = ("coin 2 looks like eur_2 (0.91)",), **kw: str | None
    ) -> int:
        record = make_record(seed, decision=Decision.FLAG, p_correct=0.2, created_at=at[minute], **kw)  # type: ignore[arg-type]
        return repo.cup_of_verdict(repo.log_verdict(replace(record, reasons=reasons)))

    waiting = log(1, 0)
    confirmed = log(2, 1, order="A-7")
    corrected = log(3, 2)
    coins = log(4, 3, order=None)
    count = log(5, 4, reasons=("2 coins seen, the order is for 3: 1 short, or hidden under others — spread them out",))
    turned = make_record(6, decision=Decision.FLAG, p_correct=0.3, created_at=at[5])
    repo.log_verdict(turned)
    repo.log_verdict(make_record(7, created_at=at[6], recheck_of=turned.idempotency_key))  # passed after turning
    log(8, 7, station="station-2")
    passed = repo.cup_of_verdict(repo.log_verdict(make_record(9, created_at=at[7])))
    early = make_record(10, decision=Decision.FLAG, p_correct=0.2, created_at=DAY - timedelta(minutes=5))
    old = repo.cup_of_verdict(repo.log_verdict(early))  # before the window asked from
    repo.relabel(SUPERVISOR, confirmed, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, corrected, LabelKind.CORRECTED, corrected_type="eur_2")
    repo.relabel(SUPERVISOR, coins, LabelKind.CONFIRMED, coin_index=0)
    repo.relabel(SUPERVISOR, coins, LabelKind.NOT_A_COIN, coin_index=2)
    repo.relabel(SUPERVISOR, coins, LabelKind.CORRECTED, coin_index=1, corrected_type="eur_2")

    aside = repo.set_aside(STATION, DAY)
    assert [c.cup_id for c in aside] == [coins, corrected, confirmed, waiting]  # newest first
    assert not {passed, count, old} & {c.cup_id for c in aside}
    by = {c.cup_id: c for c in aside}
    assert (by[waiting].cup_ruling, by[waiting].ruled_by, by[waiting].coins) == (None, None, ())
    assert (by[confirmed].order, by[confirmed].cup_ruling, by[confirmed].ruled_by) == ("A-7", "confirmed", SUPERVISOR)
    assert by[confirmed].ruled_at is not None and by[confirmed].at == at[1]
    assert (by[corrected].cup_ruling, by[corrected].corrected_type) == ("corrected", "eur_2")
    assert [(c.index, c.kind, c.corrected_type) for c in by[coins].coins] == [
        (0, "confirmed", None),
        (1, "corrected", "eur_2"),
        (2, "not_a_coin", None),
    ]
    assert [c.cup_id for c in repo.set_aside(STATION, at[2], limit=2)] == [coins, corrected]
    ruled_early = make_record(11, decision=Decision.FLAG, p_correct=0.2, created_at=DAY - timedelta(minutes=4))
    done = repo.cup_of_verdict(repo.log_verdict(ruled_early))
    repo.relabel(SUPERVISOR, done, LabelKind.CONFIRMED)
    longer = repo.set_aside(STATION, DAY, waiting_since=DAY - timedelta(hours=1))  # still waiting: listed longer
    assert [c.cup_id for c in longer] == [coins, corrected, confirmed, waiting, old]
    with pytest.raises(ValueError, match="timezone-aware"):
        repo.set_aside(STATION, datetime(2026, 3, 2))


def test_the_checks_of_an_order_at_every_station_with_the_count_it_asked_for(repo: VerdictRepository) -> None:
    at = [DAY + timedelta(minutes=m) for m in range(4)]
    first = replace(make_record(1, decision=Decision.FLAG, created_at=at[0], order="A-7"), expected_count=4)
    repo.log_verdict(first)
    again = replace(make_record(2, created_at=at[1], order="A-7", station="station-2"), expected_count=3)
    again_cup = repo.cup_of_verdict(repo.log_verdict(again))
    repo.log_verdict(make_record(3, created_at=at[2], order="B-1"))
    checks = repo.order_checks(" A-7 ")  # as a scanner may send it
    newest = checks[0]
    assert (newest.cup_id, newest.station, newest.decision, newest.n_coins, newest.expected_count) == (
        again_cup, "station-2", Decision.PASS, 3, 3,
    )  # fmt: skip
    assert [c.at for c in checks] == [at[1], at[0]] and checks[1].expected_count == 4
    assert repo.order_checks("Z-9") == [] and len(repo.order_checks("A-7", limit=1)) == 1
    # a complaint: a supervisor found a wrong coin in the PASSed cup; the order's listing says so
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CORRECTED, coin_index=1, corrected_type="eur_2")
    assert repo.order_checks("A-7")[0].ruling == "coin 2 corrected to eur_2"
    repo.relabel(SUPERVISOR, again_cup, LabelKind.NOT_A_COIN, coin_index=2)
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CONFIRMED)
    assert repo.order_checks("A-7")[0].ruling == "confirmed; coin 2 corrected to eur_2; coin 3 not a coin"
    period = read_activity(repo.engine, DAY, DAY + timedelta(days=1))
    assert [c.expected_count for c in period] == [4, 3, None]  # logged with each cup


def test_a_cup_turned_over_across_midnight_is_one_cup_of_its_first_day(repo: VerdictRepository) -> None:
    first = make_record(1, decision=Decision.FLAG, p_correct=0.3, created_at=DAY + timedelta(hours=23, minutes=58))
    repo.log_verdict(first)
    again = make_record(2, created_at=DAY + timedelta(days=1, minutes=2), recheck_of=first.idempotency_key)
    again_cup = repo.cup_of_verdict(repo.log_verdict(again))
    repo.relabel(SUPERVISOR, again_cup, LabelKind.CONFIRMED)
    day1 = read_activity(repo.engine, DAY, DAY + timedelta(days=1))
    assert [(c.decision, c.recheck_of is not None) for c in day1] == [(Decision.FLAG, False), (Decision.PASS, True)]
    assert day1[1].cup_id == again_cup and day1[1].cup_ruling == "confirmed"  # settled, ruled: not waiting
    assert read_activity(repo.engine, DAY + timedelta(days=1), DAY + timedelta(days=2)) == []  # not a cup of day 2
    both = read_activity(repo.engine, DAY, DAY + timedelta(days=2))
    assert [c.cup_id for c in both] == [c.cup_id for c in day1]


TURN = "coins 1, 3 show the shared obverse — turn them over"
CAMERA = (
    "the camera has moved since it was set up (the view: 12 px right) — put it back, or calibrate again (cupcheck "
    "calibrate); its cup region, millimetres and empty tray were not used"
)


def test_a_cup_whose_coins_are_to_be_turned_is_not_on_the_bench_until_it_is_put_aside(
    repo: VerdictRepository,
) -> None:
    at = iter(DAY + timedelta(minutes=m) for m in range(20))
    keys: dict[int, str] = {}

    def log(seed: int, reasons: tuple[str, ...] = (), *, station: str = STATION, recheck_of: int | None = None) -> int:
        """Log a check (a FLAG for ``reasons``, else a PASS) of the cup ``recheck_of`` answers; return its cup."""
        decision = Decision.FLAG if reasons else Decision.PASS
        answers = None if recheck_of is None else keys[recheck_of]
        record = make_record(seed, decision=decision, created_at=next(at), station=station, recheck_of=answers)
        cup = repo.cup_of_verdict(repo.log_verdict(replace(record, reasons=reasons) if reasons else record))
        keys[cup] = record.idempotency_key
        return cup

    def bench() -> list[int]:
        return [c.cup_id for c in repo.set_aside(STATION, DAY)]

    # flagged to turn first: the operator turns its coins, as the banner says; it is not put aside yet
    turn = log(1, (TURN, "coin 2 looks like eur_2 (0.91)"))
    assert bench() == []
    log(2, (TURN,), station="station-2")  # another station's cup to turn changes nothing here
    assert bench() == []
    # the next cup is checked (the first was put aside with Esc, or taken away): it waits for a supervisor
    log(3)
    assert bench() == [turn]
    # turned, and flagged again in the same words: the re-check goes to a supervisor, the first check is answered
    recheck = log(5, (TURN,), recheck_of=log(4, (TURN,)))
    assert bench() == [recheck, turn]
    # flagged for the camera alone, checked again once it is back, and then asked to turn: its turn is still to come
    camera_back = log(7, (TURN,), recheck_of=log(6, (CAMERA,)))
    assert bench() == [recheck, turn]
    # the turning reason beside one that turning cannot settle (blurred coins): a supervisor's from the start
    blurred = log(8, (TURN, "coins are out of focus"))
    assert bench() == [blurred, camera_back, recheck, turn]
