"""How many cups a station flagged still wait for a ruling, and since when, however old (for ``cupcheck doctor``).

The operator window's bench (:func:`db.activity.read_aside`) reads whole cups with their rulings over the last two
weeks; the cups left waiting longest are the ones a station most needs named, so this count has no lower date
bound. It leaves out what the bench leaves out: a check a later photograph of the same cup answers, a FLAG only for
the coin count, and the cup in hand whose coins are still to be turned.

The database counts them (``ix_cups_station_created``); only the FLAGs whose reasons name the coin count are read
row by row, to leave out those for the count alone. A year of one station's cups (146,000, 43,800 of them FLAGs
nobody ruled on, 2,920 for the count alone) is counted in 0.3 s from SQLite on the 2-core machine, where reading
the bench's whole cups over the same year took 0.9-1.8 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, Text, case, cast, func, not_, select

from db.activity import _cup_to_turn
from db.schema import Cup, Label, Station, Verdict
from db.session import make_session_factory
from models.reasons import only_the_count
from models.types import Decision

COUNT_WORDS = ", the order is for "
"""Words every coin-count reason holds (:func:`models.reasons.reason_kind`): only a FLAG whose reasons hold them can
be a FLAG for the count alone, so only those rows are read one by one."""


@dataclass(frozen=True)
class BenchWaiting:
    """The cups a station flagged that nobody has ruled on yet.

    Attributes:
        waiting: how many, whenever flagged.
        stale: how many of them were flagged before the time asked about.
        oldest: when the oldest of those ``stale`` was flagged, timezone-aware (``None`` when there is none).
    """

    waiting: int
    stale: int
    oldest: datetime | None


def read_bench_waiting(engine: Engine, station: str, stale_before: datetime) -> BenchWaiting:
    """Count the cups ``station`` flagged that still wait for a ruling, and those flagged before ``stale_before``.

    Args:
        engine: a migrated database.
        station: the station's name.
        stale_before: a cup flagged before this (timezone-aware) has waited too long.

    Raises:
        ValueError: ``stale_before`` has no timezone.
    """
    if stale_before.tzinfo is None:
        raise ValueError("stale_before must be timezone-aware")
    stale = case((Verdict.created_at < stale_before, 1), else_=0)
    counted = cast(Verdict.reasons, Text).contains(COUNT_WORDS, autoescape=True)
    with make_session_factory(engine)() as session:
        in_hand = _cup_to_turn(session, station)
        totals = select(func.count(), func.coalesce(func.sum(stale), 0), func.min(Verdict.created_at))
        n_waiting, n_stale, oldest = session.execute(_waiting(totals, station, in_hand).where(not_(counted))).one()
        n_waiting, n_stale = int(n_waiting), int(n_stale)
        rows = _waiting(select(Verdict.created_at, Verdict.reasons), station, in_hand).where(counted)
        for at, reasons in session.execute(rows):
            if only_the_count(tuple(reasons or ())):  # its coins passed: put right at once, not put aside
                continue
            n_waiting += 1
            if at < stale_before:
                n_stale += 1
            oldest = at if oldest is None else min(oldest, at)
    return BenchWaiting(n_waiting, n_stale, oldest if n_stale else None)


def _waiting(stmt: Select[*tuple[Any, ...]], station: str, in_hand: int | None) -> Select[*tuple[Any, ...]]:
    """``stmt`` over ``station``'s FLAGs nobody has ruled on and no later photograph of the same cup answers, but
    the cup ``in_hand`` (its coins are still to be turned)."""
    ruled = select(Label.cup_id).where(Label.is_current.is_(True))
    answered = select(Cup.recheck_of_id).where(Cup.recheck_of_id.is_not(None))
    stmt = (
        stmt.select_from(Cup)
        .join(Verdict, Verdict.cup_id == Cup.id)
        .join(Station, Station.id == Cup.station_id)
        .where(
            Station.name == station,
            Verdict.decision == Decision.FLAG,
            Cup.id.not_in(answered),
            Cup.id.not_in(ruled),
        )
    )
    return stmt if in_hand is None else stmt.where(Cup.id != in_hand)
