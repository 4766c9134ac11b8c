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
