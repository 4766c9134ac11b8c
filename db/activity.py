"""What the stations did over a period, check by check, for ``cupcheck report``: verdicts with their station,
operator, order, coin count and the rulings people gave since; and the cups a station put aside for a person,
with what was ruled on them, for its operator window, and how many of those still wait for a ruling, for
``cupcheck doctor``.

One query over the verdicts of the period (``verdicts.created_at`` is indexed) and one over the current labels of
those cups: 10,740 checks (43,560 coins) read in 0.24 s from SQLite on the 2-core machine.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, ScalarSelect, Select, Text, case, cast, func, not_, or_, select
from sqlalchemy.orm import Session

from db.records import AsideCup, BenchWaiting, CoinRuling, CupActivity, OrderCheck, ruling_text
from db.schema import Capture, Coin, Cup, Label, LabelKind, Operator, Order, Station, Verdict
from db.session import make_session_factory
from models.types import Decision

WRONG_COIN_KINDS = (LabelKind.CORRECTED, LabelKind.NOT_A_COIN, LabelKind.DAMAGED)
"""Coin rulings that make a cup wrong (``wrong_side`` keeps the type; ``confirmed`` agrees)."""


def _coins_of_cup() -> ScalarSelect[int]:
    """The number of coins logged for the cup of the enclosing query's row."""
    return select(func.count(Coin.id)).where(Coin.cup_id == Cup.id).correlate(Cup).scalar_subquery()


_CHUNK = 500
"""Ids per ``IN`` list."""


def read_activity(engine: Engine, since: datetime, until: datetime, station: str | None = None) -> list[CupActivity]:
    """Every check whose verdict was made in ``[since, until)`` (timezone-aware), oldest first; but a re-check that
    answers a check of an earlier period is left to that period, and a re-check made after the period that answers
    one of its checks is read with it (a cup belongs to the period of its first check, settled whenever it was).

    Args:
        engine: a migrated database.
        since: start of the period.
        until: end of the period (excluded).
        station: one station's checks only.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    coins = _coins_of_cup()
    stmt = (
        select(
            Cup.id,
            Verdict.created_at,
            Station.name,
            Operator.name,
            Order.number,
            Cup.expected_type,
            Verdict.decision,
            Verdict.p_correct,
            Verdict.reasons,
            Verdict.model_version,
            Verdict.timings,
            coins,
            Cup.recheck_of_id,
            Cup.expected_count,
        )
        .join(Verdict, Verdict.cup_id == Cup.id)
        .join(Station, Station.id == Cup.station_id)
        .join(Operator, Operator.id == Cup.operator_id)
        .outerjoin(Order, Order.id == Cup.order_id)
        .order_by(Verdict.created_at, Cup.id)
    )
    if station is not None:
        stmt = stmt.where(Station.name == station)
    period = select(Verdict.cup_id).where(Verdict.created_at >= since, Verdict.created_at < until)
    sessions = make_session_factory(engine)
    with sessions() as session:
        rows = list(session.execute(stmt.where(Verdict.created_at >= since, Verdict.created_at < until)).all())
        # A cup belongs to the period of its first check, whenever it was settled: a re-check answering a check of
        # an earlier period is that period's (a cup turned over across midnight is one cup, on its first day) ...
        while True:
            ids = {r.id for r in rows}
            kept = [r for r in rows if r.recheck_of_id is None or r.recheck_of_id in ids]
            if len(kept) == len(rows):
                break
            rows = kept
        # ... and a re-check made after the period settles a cup first checked in it
        later: list[int] = []
        frontier = sorted(ids)
        while frontier:
            more = [
                r
                for start in range(0, len(frontier), _CHUNK)
                for r in session.execute(
                    stmt.where(Cup.recheck_of_id.in_(frontier[start : start + _CHUNK]), Verdict.created_at >= until)
                ).all()
                if r.id not in ids
            ]
            rows += more
            frontier = sorted({r.id for r in more})
            ids.update(frontier)
            later += frontier
        cups = or_(Label.cup_id.in_(period), Label.cup_id.in_(later))
        labels = select(Label.cup_id, Label.coin_id, Label.kind, Label.corrected_type).where(
            Label.is_current.is_(True), cups
        )
        first_ruling = (  # the first look, whatever was ruled since
            select(Label.cup_id, func.min(Label.created_at)).where(cups).group_by(Label.cup_id)
        )
        first_ruled: dict[int, datetime] = {cup_id: at for cup_id, at in session.execute(first_ruling)}
        cup_ruling: dict[int, tuple[str, str | None]] = {}
        coin_rulings: dict[int, int] = defaultdict(int)
        wrong_coins: dict[int, int] = defaultdict(int)
        for cup_id, coin_id, kind, corrected in session.execute(labels):
            if coin_id is None:
                cup_ruling[cup_id] = (LabelKind(kind).value, corrected)
                continue
            coin_rulings[cup_id] += 1
            if LabelKind(kind) in WRONG_COIN_KINDS:
                wrong_coins[cup_id] += 1
    out = []
    for cup_id, at, st, op, order, expected, decision, p, reasons, model, timings, n, recheck, ordered in rows:
        ruling, corrected = cup_ruling.get(cup_id, (None, None))
        total = (timings or {}).get("total")
        out.append(
            CupActivity(
                cup_id=cup_id,
                at=at,
                station=st,
                operator=op,
                order=order,
                expected_type=expected,
                decision=decision,
                p_correct=float(p),
                reasons=tuple(reasons or ()),
                model_version=model,
                check_ms=None if total is None else float(total),
                n_coins=int(n),
                recheck_of=recheck,
                cup_ruling=ruling,
                corrected_type=corrected,
                coin_rulings=coin_rulings.get(cup_id, 0),
                wrong_coins=wrong_coins.get(cup_id, 0),
                first_ruled_at=first_ruled.get(cup_id),
                expected_count=ordered,
            )
        )
    return out


def station_names(engine: Engine) -> list[str]:
    """Every station of the database, by name."""
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(Station.name).order_by(Station.name)))


def _asks_to_turn_first(reasons: tuple[str, ...]) -> bool:
    """Whether a FLAG's reasons are those of a turn-first FLAG (:attr:`models.types.Verdict.turn_first`, which the
    verdict log does not keep): the turning reason first, then at most coins named as looking like another type or
    cut by the rim (:func:`models.reasons.flag_reasons`); anything else (a count, an object, blur, too few coins)
    sends the cup to a person as it lies."""
    from models.reasons import ReasonKind, reason_kind

    kinds = [reason_kind(r) for r in reasons]
    turn_first = {ReasonKind.TURN, ReasonKind.LOOKS_LIKE, ReasonKind.CUT}
    return bool(kinds) and kinds[0] is ReasonKind.TURN and set(kinds) <= turn_first


def _cup_to_turn(session: Session, station: str) -> int | None:
    """The cup whose coins the operator at ``station`` is turning, if any: the station's newest check (no cup was
    checked there since) when it is a turn-first FLAG that no earlier turn led to (one turn per cup; a check made
    again for the camera alone keeps the cup's turn)."""
    from models.reasons import only_the_camera

    newest = session.execute(
        select(Cup.id, Cup.recheck_of_id, Verdict.decision, Verdict.reasons)
        .join(Verdict, Verdict.cup_id == Cup.id)
        .join(Station, Station.id == Cup.station_id)
        .where(Station.name == station)
        .order_by(Cup.created_at.desc(), Cup.id.desc())  # ix_cups_station_created
        .limit(1)
    ).first()
    if newest is None or Decision(newest.decision) is not Decision.FLAG:
        return None
    if not _asks_to_turn_first(tuple(newest.reasons or ())):
        return None
    earlier = newest.recheck_of_id
    while earlier is not None:  # the checks it answers: one that was not for the camera alone was a turn
        row = session.execute(
            select(Cup.recheck_of_id, Verdict.reasons).join(Verdict, Verdict.cup_id == Cup.id).where(Cup.id == earlier)
        ).first()
        if row is None:
            break
        if not only_the_camera(tuple(row.reasons or ())):
            return None
        earlier = row.recheck_of_id
    return int(newest.id)


def read_aside(
    engine: Engine, station: str, since: datetime, limit: int = 50, *, waiting_since: datetime | None = None
) -> list[AsideCup]:
    """The cups ``station`` flagged since ``since`` (timezone-aware) that were put aside for a person, newest first,
    each with the rulings people gave since: not a check that a later photograph of the same cup answers (its coins
    were turned and it was checked again), nor a FLAG only for the coin count (its coins passed; the operator puts
    the count right and checks it again as a new cup), nor the cup in hand whose coins are still to be turned (a
    turn-first FLAG, not itself the check after a turn, that is the station's newest check: the operator was told
    to turn its coins and check it again, not to put it aside). That cup is listed once the station checks another
    cup (it was put aside with Esc, or taken away) or, flagged again after the turn, as its re-check.

    Args:
        engine: a migrated database.
        station: the station's name.
        since: the oldest FLAG to list.
        limit: at most this many cups.
        waiting_since: list cups nobody has ruled on yet from this earlier time (so a cup still waiting does not
            drop off the list with age); ``None``: from ``since`` like the others.
    """
    from models.reasons import only_the_count

    if since.tzinfo is None or (waiting_since is not None and waiting_since.tzinfo is None):
        raise ValueError("since must be timezone-aware")
    oldest = since if waiting_since is None else min(since, waiting_since)
    anyone = select(Label.cup_id).where(Label.is_current.is_(True))
    columns = select(Cup.id, Verdict.created_at, Order.number, Cup.expected_type, Verdict.reasons, Capture.ref)
    stmt = (
        _flagged(columns, station)
        .outerjoin(Order, Order.id == Cup.order_id)
        .outerjoin(Capture, Capture.cup_id == Cup.id)
        .where(Verdict.created_at >= oldest, or_(Verdict.created_at >= since, Cup.id.not_in(anyone)))
        .order_by(Verdict.created_at.desc(), Cup.id.desc())
    )
    sessions = make_session_factory(engine)
    with sessions() as session:
        in_hand = _cup_to_turn(session, station)
        listed = (r for r in session.execute(stmt) if r.id != in_hand)
        rows = [r for r in listed if not only_the_count(tuple(r.reasons or ()))][:limit]
        ids = [r.id for r in rows]
        labels = session.execute(
            select(Label.cup_id, Coin.index, Label.kind, Label.corrected_type, Operator.name, Label.created_at)
            .join(Operator, Operator.id == Label.operator_id)
            .outerjoin(Coin, Coin.id == Label.coin_id)
            .where(Label.is_current.is_(True), Label.cup_id.in_(ids))
            .order_by(Label.created_at)
        ).all()
    cup_ruling: dict[int, tuple[str, str | None]] = {}
    coins: dict[int, list[CoinRuling]] = defaultdict(list)
    last: dict[int, tuple[str, datetime]] = {}
    for cup_id, index, kind, corrected, who, at in labels:
        if index is None:
            cup_ruling[cup_id] = (LabelKind(kind).value, corrected)
        else:
            coins[cup_id].append(CoinRuling(int(index), LabelKind(kind).value, corrected))
        last[cup_id] = (who, at)  # oldest first: the newest stays
    out = []
    for r in rows:
        ruling, corrected = cup_ruling.get(r.id, (None, None))
        ruled = last.get(r.id)
        out.append(
            AsideCup(
                cup_id=r.id,
                at=r.created_at,
                order=r.number,
                expected_type=r.expected_type,
                reasons=tuple(r.reasons or ()),
                cup_ruling=ruling,
                corrected_type=corrected,
                ruled_by=None if ruled is None else ruled[0],
                ruled_at=None if ruled is None else ruled[1],
                coins=tuple(sorted(coins.get(r.id, []), key=lambda c: c.index)),
                photo=r.ref,
            )
        )
    return out


def _flagged(stmt: Select[*tuple[Any, ...]], station: str) -> Select[*tuple[Any, ...]]:
    """``stmt`` over the cups ``station`` flagged, but those a later photograph of the same cup answers: what the
    station may have put aside (:func:`read_aside`, :func:`read_bench_waiting`)."""
    answered = select(Cup.recheck_of_id).where(Cup.recheck_of_id.is_not(None))
    return (
        stmt.select_from(Cup)
        .join(Verdict, Verdict.cup_id == Cup.id)
        .join(Station, Station.id == Cup.station_id)
        .where(Station.name == station, Verdict.decision == Decision.FLAG, Cup.id.not_in(answered))
    )


COUNT_WORDS = ", the order is for "
"""Words every coin-count reason holds (:func:`models.reasons.reason_kind`): only a FLAG whose reasons hold them can
be a FLAG for the count alone, so only those rows are read one by one."""


def read_bench_waiting(engine: Engine, station: str, stale_before: datetime) -> BenchWaiting:
    """Count the cups ``station`` put aside (as :func:`read_aside` tells them) that nobody has ruled on, however
    old, and those flagged before ``stale_before``: the cups left waiting longest are the ones a station most needs
    named, where the operator window lists two weeks.

    The database counts them; only the FLAGs whose reasons name the coin count are read row by row, to leave out
    those for the count alone. A year of one station's cups (146,000, 43,800 of them FLAGs nobody ruled on, 2,920
    for the count alone) is counted in 0.3 s from SQLite on the 2-core machine, where reading the bench's whole
    cups over the same year took 0.9-1.8 s.

    Raises:
        ValueError: ``stale_before`` has no timezone.
    """
    from models.reasons import only_the_count

    if stale_before.tzinfo is None:
        raise ValueError("stale_before must be timezone-aware")
    stale = case((Verdict.created_at < stale_before, 1), else_=0)
    counted = cast(Verdict.reasons, Text).contains(COUNT_WORDS, autoescape=True)
    ruled = select(Label.cup_id).where(Label.is_current.is_(True))
    with make_session_factory(engine)() as session:
        in_hand = _cup_to_turn(session, station)

        def waiting(stmt: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
            stmt = _flagged(stmt, station).where(Cup.id.not_in(ruled))
            return stmt if in_hand is None else stmt.where(Cup.id != in_hand)

        totals = select(func.count(), func.coalesce(func.sum(stale), 0), func.min(Verdict.created_at))
        n_waiting, n_stale, oldest = session.execute(waiting(totals).where(not_(counted))).one()
        n_waiting, n_stale = int(n_waiting), int(n_stale)
        for at, reasons in session.execute(waiting(select(Verdict.created_at, Verdict.reasons)).where(counted)):
            if only_the_count(tuple(reasons or ())):  # its coins passed: put right at once, not put aside
                continue
            n_waiting += 1
            if at < stale_before:
                n_stale += 1
            oldest = at if oldest is None else min(oldest, at)
    return BenchWaiting(n_waiting, n_stale, oldest if n_stale else None)


def _of_order(stmt: Select[*tuple[Any, ...]], number: str) -> Select[*tuple[Any, ...]]:
    """``stmt`` over the checks of cups for order ``number`` at every station: each cup with its verdict, station,
    operator and photograph (``ix_cups_order_id``)."""
    return (
        stmt.join(Order, Order.id == Cup.order_id)
        .join(Verdict, Verdict.cup_id == Cup.id)
        .join(Station, Station.id == Cup.station_id)
        .join(Operator, Operator.id == Cup.operator_id)
        .outerjoin(Capture, Capture.cup_id == Cup.id)
        .where(Order.number == number.strip())
    )


def count_order_checks(engine: Engine, number: str) -> int:
    """How many checks of cups for order ``number`` the log holds, at every station (those
    :func:`read_order_checks` reads, however many)."""
    with make_session_factory(engine)() as session:
        return int(session.scalar(_of_order(select(func.count()).select_from(Cup), number)) or 0)


def read_order_checks(engine: Engine, number: str, limit: int = 5) -> list[OrderCheck]:
    """The newest checks of cups for order ``number`` at every station, newest first (``ix_cups_order_id``), with
    their reasons, photograph and cup ruling."""
    coins = _coins_of_cup()
    columns = select(
        Cup.id,
        Verdict.created_at,
        Station.name,
        Operator.name,
        Verdict.decision,
        coins,
        Cup.expected_count,
        Verdict.reasons,
        Capture.ref,
        Cup.expected_type,
    )
    stmt = _of_order(columns, number).order_by(Verdict.created_at.desc(), Cup.id.desc()).limit(limit)
    with make_session_factory(engine)() as session:
        rows = session.execute(stmt).all()
        ids = [r[0] for r in rows]
        labels = session.execute(
            select(Label.cup_id, Coin.index, Label.kind, Label.corrected_type)
            .outerjoin(Coin, Coin.id == Label.coin_id)
            .where(Label.is_current.is_(True), Label.cup_id.in_(ids))
            .order_by(Coin.index)
        ).all()
    rulings: dict[int, tuple[str | None, str | None]] = {}
    coin_rulings: dict[int, list[str]] = defaultdict(list)  # a coin found wrong in a PASSed cup is the complaint
    for ruled_cup, index, label_kind, named in labels:
        if index is None:
            rulings[ruled_cup] = (LabelKind(label_kind).value, named)
        else:
            what = LabelKind(label_kind)
            said = f"corrected to {named}" if what is LabelKind.CORRECTED else what.value.replace("_", " ")
            coin_rulings[ruled_cup].append(f"coin {int(index) + 1} {said}")
    out = []
    for cup_id, at, st, op, decision, n, ordered, reasons, photo, expected in rows:
        kind, corrected = rulings.get(cup_id, (None, None))
        whole = ruling_text(kind, corrected)
        ruling = "; ".join(t for t in (whole, *coin_rulings[cup_id]) if t) or None
        out.append(
            OrderCheck(
                cup_id, at, st, op, Decision(decision), int(n), ordered, tuple(reasons or ()), photo, ruling, expected
            )
        )
    return out
