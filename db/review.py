"""The review queue's query and ranking: which cups a person's ruling would teach the model most.

:meth:`db.repository.VerdictRepository.review_queue` runs :func:`queue_query` and :func:`labels_per_type`, skips the
confident PASSes nobody drew for audit, scores the rest with :func:`informativeness` and sorts them with
:func:`queue_key`; :func:`rank_queue` picks the rows a window shows, at most one in :data:`AUDIT_EVERY` an audit
while FLAGs wait.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, or_, select, union
from sqlalchemy.orm import aliased

from db.records import ReviewItem
from db.schema import Capture, Coin, Cup, Label, Operator, Order, Station, Verdict
from models.types import Decision

AUDIT_EVERY = 4
"""At most one row in this many of the review queue is a PASS drawn for audit while FLAGs wait (:func:`rank_queue`)."""


@dataclass(frozen=True)
class ReviewWeights:
    """How the review score mixes its parts (each part lies in ``[0, 1]``)."""

    uncertainty: float = 0.5
    disagreement: float = 0.3
    rarity: float = 0.2


@dataclass(frozen=True)
class Informativeness:
    """How much a ruling on one cup would teach: its parts, each in ``[0, 1]``, and their weighted sum."""

    uncertainty: float
    disagreement: float
    rarity: float
    score: float


def uncertainty(p: float, threshold: float | None) -> float:
    """How unsure the verdict was, in ``[0, 1]``: 1 on the threshold or at ``p`` 0.5, 0 far from both.

    ``max(1 - |p - threshold| / span, 1 - 2·|p - 0.5|)``, where ``span`` is the room on ``p``'s side of the
    threshold. A threshold that is missing or not finite (``inf``: the model could certify nothing, so nothing
    could pass) has no side to measure from, so the threshold's term is dropped and ``1 - 2·|p - 0.5|`` alone
    is left; taken as it came, ``|p - inf| / inf`` is NaN and would make every such cup look sure (0). A ``p``
    that is NaN scores 0 rather than poisoning the sort.

    Args:
        p: the verdict's ``p_correct``.
        threshold: the threshold it was judged against (``None``: none was recorded).
    """
    near_half = 1.0 - 2.0 * abs(p - 0.5)
    if threshold is None or not math.isfinite(threshold):
        unc = near_half
    else:
        span = (1.0 - threshold) if p >= threshold else threshold
        near_threshold = 1.0 - abs(p - threshold) / span if span > 0 else 0.0
        unc = max(near_threshold, near_half)
    return 0.0 if math.isnan(unc) else min(1.0, max(0.0, unc))


def informativeness(
    p: float, threshold: float | None, mismatch_share: float, labelled_of_type: int, weights: ReviewWeights
) -> Informativeness:
    """Score one cup (the formula is in :meth:`db.repository.VerdictRepository.review_queue`).

    The disagreement compares like with like: ``1 - p`` is the voter's chance that the cup is wrong, and one coin
    of another type already makes a cup wrong, so the coins' verdict is 1 when any coin's best match is another
    type and 0 when none is (the share of such coins would score a voter and coins that agree the cup is wrong,
    p 0.02 and 1 coin in 10, as a disagreement of 0.88).

    Args:
        p: the verdict's ``p_correct``.
        threshold: the threshold it was judged against (``None`` or not finite: see :func:`uncertainty`).
        mismatch_share: the share of its coins whose best match is not the expected type.
        labelled_of_type: cups of its expected type labelled so far.
        weights: how the parts are mixed.
    """
    unc = uncertainty(p, threshold)
    coins_wrong = 1.0 if mismatch_share > 0.0 else 0.0
    dis = abs(coins_wrong - (1.0 - p))
    dis = 0.0 if math.isnan(dis) else dis  # a p of NaN says nothing either way
    rar = 1.0 / (1.0 + labelled_of_type)
    score = weights.uncertainty * unc + weights.disagreement * dis + weights.rarity * rar
    return Informativeness(unc, dis, rar, score)


def queue_query(
    *,
    station: str | None,
    margin: float,
    window: int,
    audit_share: float,
    suspects: Sequence[int],
    order: str | None,
) -> Select[*tuple[Any, ...]]:
    """One row per candidate cup: its verdict, photo, coin counts, the check it answers and when its whole cup was
    last ruled (``cup_ruled_at``: what makes it labelled, and what a second look at a suspected ruling is; a coin
    ruled alone is neither).

    The candidates are the newest ``window`` FLAGs and close calls, as many of the newest PASSes when
    ``audit_share`` is positive, and ``suspects``; or, for an ``order`` number, the newest ``window`` of that
    order's cups. A check that a later photograph answers is never among them.
    """
    # Every part of the query is bounded by the window, never by the whole history: the candidates are picked
    # first, newest first, and only their coins and labels are read. A check a later photograph answers is
    # found by one uncorrelated NOT IN (a correlated NOT EXISTS made SQLite scan the cups once per cup as soon
    # as its statistics said that column is nearly always NULL).
    answered = select(Cup.recheck_of_id).where(Cup.recheck_of_id.is_not(None))
    unanswered = select(Verdict.id).join(Cup, Cup.id == Verdict.cup_id).where(Cup.id.not_in(answered))
    if station is not None:
        unanswered = unanswered.join(Station, Station.id == Cup.station_id).where(Station.name == station)
    newest_first = (Verdict.created_at.desc(), Verdict.id.desc())
    wanted = or_(
        Verdict.decision == Decision.FLAG, Verdict.p_correct - Verdict.threshold <= margin * (1 - Verdict.threshold)
    )
    if order is not None:  # the order's cups, PASSes too: no audit draw or suspects to add
        of_order = unanswered.join(Order, Order.id == Cup.order_id).where(Order.number == order)
        parts = [select(of_order.order_by(*newest_first).limit(window).subquery().c.id)]
    else:
        parts = [select(unanswered.where(wanted).order_by(*newest_first).limit(window).subquery().c.id)]
        if audit_share > 0.0:
            # the PASSes the audit may draw (by cup id, below): a window of their own, so that a day of PASSes
            # does not push the FLAGs out of the queue
            passes = unanswered.where(Verdict.decision == Decision.PASS).order_by(*newest_first).limit(window)
            parts.append(select(passes.subquery().c.id))
        if suspects:  # whatever their verdict or age
            parts.append(unanswered.where(Cup.id.in_(suspects)))
    picked = (union(*parts) if len(parts) > 1 else parts[0]).cte("picked")
    cup_ids = select(Verdict.cup_id).join(picked, picked.c.id == Verdict.id)
    coin_stats = (
        select(
            Coin.cup_id.label("cup_id"),
            # an object is logged as a coin row with no match: it is counted as neither
            func.count(Coin.top_type).label("n_coins"),
            func.count(Coin.id).label("n_instances"),
            func.sum(case((Coin.top_type.is_(None), 0), (Coin.top_type == Cup.expected_type, 0), else_=1)).label(
                "n_mismatch"
            ),
        )
        .join(Cup, Cup.id == Coin.cup_id)
        .where(Coin.cup_id.in_(cup_ids))
        .group_by(Coin.cup_id)
        .subquery()
    )
    before = aliased(Capture)  # the photograph of the check a re-check answers
    before_verdict = aliased(Verdict)  # and its verdict, whose reasons say why the cup was checked again
    last_ruling = (  # a cup without a current ruling on the whole cup has none (its coins alone ruled: none either)
        select(
            Label.cup_id.label("cup_id"),
            # "labelled" is a current ruling on the whole cup: the retrain learns from cups, a coin ruled alone waits
            func.max(Label.created_at).label("cup_at"),
        )
        .where(Label.is_current, Label.coin_id.is_(None), Label.cup_id.in_(cup_ids))
        .group_by(Label.cup_id)
        .subquery()
    )
    stmt = (
        select(
            Verdict.id.label("verdict_id"),
            Cup.id.label("cup_id"),
            Station.name.label("station"),
            Operator.name.label("operator"),
            Order.number.label("order_number"),
            Cup.expected_count,
            Cup.expected_type,
            Verdict.decision,
            Verdict.p_correct,
            Verdict.threshold,
            Verdict.created_at,
            Capture.ref.label("capture_ref"),
            func.coalesce(coin_stats.c.n_coins, 0).label("n_coins"),
            func.coalesce(coin_stats.c.n_instances, 0).label("n_instances"),
            func.coalesce(coin_stats.c.n_mismatch, 0).label("n_mismatch"),
            Verdict.reasons,
            Cup.recheck_of_id,
            before.ref.label("recheck_capture_ref"),
            before_verdict.reasons.label("recheck_reasons"),
            last_ruling.c.cup_at.label("cup_ruled_at"),
        )
        .join(picked, picked.c.id == Verdict.id)
        .join(Cup, Cup.id == Verdict.cup_id)
        .join(Station, Station.id == Cup.station_id)
        .join(Operator, Operator.id == Cup.operator_id)
        .outerjoin(Order, Order.id == Cup.order_id)
        .outerjoin(Capture, Capture.cup_id == Cup.id)
        .outerjoin(coin_stats, coin_stats.c.cup_id == Cup.id)
        .outerjoin(before, before.cup_id == Cup.recheck_of_id)
        .outerjoin(before_verdict, before_verdict.cup_id == Cup.recheck_of_id)
        .outerjoin(last_ruling, last_ruling.c.cup_id == Cup.id)
    )
    return stmt


def labels_per_type() -> Select[*tuple[Any, ...]]:
    """``(expected_type, cups with a current ruling on the whole cup)`` for every type ruled on (a coin ruled alone
    does not make its cup labelled)."""
    return (
        select(Cup.expected_type, func.count(func.distinct(Label.cup_id)))
        .join(Cup, Cup.id == Label.cup_id)
        .where(Label.is_current, Label.coin_id.is_(None))
        .group_by(Cup.expected_type)
    )


def queue_key(item: ReviewItem) -> tuple[Any, ...]:
    """Sort key of the queue: suspects first, then unlabelled cups, audits first among them, then higher score,
    then newer (the later cup first on a tie, as the window picks its candidates). :func:`rank_queue` then spreads
    the audits out, so that they cannot fill the rows the FLAGs need."""
    return (not item.suspect, item.labelled, not item.audit, -item.score, -item.created_at.timestamp(), -item.cup_id)


def rank_queue(items: Iterable[ReviewItem], limit: int) -> list[ReviewItem]:
    """The queue's first ``limit`` rows: suspects first, then the unlabelled cups, then the labelled ones; within
    each of the last two, the FLAGs and close calls by :func:`queue_key` (higher score first), with one PASS drawn
    for audit after every ``AUDIT_EVERY - 1`` of them.

    So audits take at most one row in ``AUDIT_EVERY`` while FLAGs wait, and the rows the FLAGs leave empty are
    theirs. Audits ahead of everything let a week's PASSes fill the whole queue (at an audit share of 0.02 over
    the 5,000-PASS window, 96 of the window's 100 rows) and hid the flagged cups set aside at the bench; FLAGs
    ahead of everything would leave the audit, the only measure of PASS precision in the field, undone while
    any FLAG waits.

    Args:
        items: the scored candidates, in any order (the same rule whatever database they came from).
        limit: how many rows to return.
    """
    ranked = sorted(items, key=queue_key)
    rows = [it for it in ranked if it.suspect]
    for labelled in (False, True):
        tier = [it for it in ranked if not it.suspect and it.labelled == labelled]
        rows += _with_audits([it for it in tier if not it.audit], [it for it in tier if it.audit], AUDIT_EVERY - 1)
    return rows[:limit]


def _with_audits(others: Sequence[ReviewItem], audits: Sequence[ReviewItem], run: int) -> list[ReviewItem]:
    """``others`` in their order with the next of ``audits`` after every ``run`` of them; what is left of either
    at the end follows."""
    rows: list[ReviewItem] = []
    drawn = 0
    for k, item in enumerate(others, start=1):
        rows.append(item)
        if k % run == 0 and drawn < len(audits):
            rows.append(audits[drawn])
            drawn += 1
    return rows + list(audits[drawn:])


def newest_key(item: ReviewItem) -> tuple[float, int]:
    """Sort key of an order's cups: newest first."""
    return (-item.created_at.timestamp(), -item.cup_id)
