"""Labelled cups and coins as training data: each coin's ruling in force, its true type and side, and each cup as
the station saw it.

:meth:`db.repository.VerdictRepository.training_export` picks the cups whose rulings are new and calls
:func:`export_cups`; a first check that a labelled re-check answers comes with it, its coins ruled like the re-check's
coins lying where they lie. The rulings are the truth only: :func:`station_view` gives every box of those cups as the
station classified it (a coin or a foreign object), which is what the retrain rebuilds their features from.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.records import SeenBox, TrainingCoin, TrainingCup, TrainingExport
from db.schema import Capture, Coin, Cup, Label, LabelKind, Station, Verdict
from db.session import make_session_factory
from models.reasons import only_the_camera
from models.types import Decision, Side


def _flip(side: Side | None) -> Side | None:
    if side is None:
        return None
    return Side.REVERSE if side is Side.OBVERSE else Side.OBVERSE


def _coin_truth(label: Label, coin: Coin, expected: str, inherited: bool) -> tuple[str | None, Side | None]:
    """The coin's true type and side under ``label`` (see :class:`~db.records.TrainingCoin`)."""
    kind = LabelKind(label.kind)
    if inherited and coin.top_type is None:
        return None, None  # an object the detector found (no match): a ruling on the cup does not make it a coin
    if kind is LabelKind.CORRECTED:
        return label.corrected_type, None
    if kind is LabelKind.CONFIRMED:
        side = coin.top_side if (not inherited or coin.top_type == expected) else None
        return expected, side
    if kind is LabelKind.WRONG_SIDE:
        return coin.top_type or expected, _flip(coin.top_side)
    return None, None  # not_a_coin, damaged: type unknown or meaningless


def export_cups(session: Session, cup_ids: Iterable[int]) -> TrainingExport:
    """The picked cups ``cup_ids`` and their coins, each under its ruling in force, and the checks a re-check links
    them with (see :meth:`db.repository.VerdictRepository.training_export`).

    A time the caller picks by (a cup is new when its own ruling or one of its coins' rulings was made after it) does
    not change what is exported of a picked cup. A coin corrected before that time in a cup confirmed after it is
    still the other type: leaving its ruling out would show a contaminated cup as clean, and the cup confirmed
    before a coin's newer correction is still labelled. A re-check and the first check it answers are the same
    coins, so when either is picked both come, exactly as an export of everything shows them.
    """
    return _export_in_force(session, sorted(_with_their_rechecks(session, set(cup_ids))))


def _with_their_rechecks(session: Session, cup_ids: set[int]) -> set[int]:
    """``cup_ids`` with every check linked to one of them by ``recheck_of_id`` (the first check a re-check answers,
    the re-checks that answer a first check, and so on along a chain)."""
    group = set(cup_ids)
    frontier = set(cup_ids)
    while frontier:
        ids = sorted(frontier)
        answers = session.scalars(select(Cup.recheck_of_id).where(Cup.id.in_(ids)))
        linked = {first for first in answers if first is not None}
        linked |= set(session.scalars(select(Cup.id).where(Cup.recheck_of_id.in_(ids))))
        frontier = linked - group
        group |= frontier
    return group


def _export_in_force(session: Session, ids: Sequence[int]) -> TrainingExport:
    """The cups ``ids`` and their coins under the rulings in force, whenever made; a first check whose labelled
    re-check is among ``ids`` comes with it, its coins ruled like the re-check's coins lying where they lie."""
    labels = session.scalars(select(Label).where(Label.cup_id.in_(ids), Label.is_current)).all()
    cup_label: dict[int, Label] = {}
    coin_label: dict[int, Label] = {}
    for lab in labels:
        if lab.coin_id is None:
            cup_label[lab.cup_id] = lab
        else:
            coin_label[lab.coin_id] = lab

    rows = _cup_rows(session, ids)
    coins_by_cup = _coins_by_cup(session, ids)
    cups: list[TrainingCup] = []
    coins: list[TrainingCoin] = []
    # first check → the labelled re-check that answers it: the same coins, so always in the same split
    answered = {cup.recheck_of_id: cup.id for cup, *_ in rows if cup.recheck_of_id is not None and cup.id in cup_label}
    # a first check's own ruling stands when it is the newer one; an older one gives way to the re-check's
    own_first: dict[int, datetime] = {}
    for lab in session.scalars(select(Label).where(Label.cup_id.in_(list(answered)), Label.is_current)):
        own_first[lab.cup_id] = max(lab.created_at, own_first.get(lab.cup_id, lab.created_at))
    superseded = {f for f, at in own_first.items() if at <= cup_label[answered[f]].created_at}
    for cup, station, ref, version, decision in rows:
        if cup.id in superseded:
            continue  # its re-check's newer ruling speaks for it (below)
        cl = cup_label.get(cup.id)
        if cl is not None:
            cups.append(_training_cup(cup, station, ref, version, decision, cl, split_cup_id=answered.get(cup.id)))
        for coin in coins_by_cup.get(cup.id, []):
            own = coin_label.get(coin.id)
            ruling = own if own is not None else cl
            if ruling is not None:
                coins.append(_training_coin(cup, station, version, coin, ruling, inherited=own is None))
    # A first check answered by a labelled re-check is the same coins, photographed before some were turned over
    # in place: each of its coins takes the ruling of the re-check's coin lying where it lies.
    firsts = [cup_id for cup_id in answered if cup_id not in own_first or cup_id in superseded]
    # checked again because the camera had moved: its coins do not lie where the re-check's lie, so no ruling is
    # carried over by place (and a first check flagged for the camera alone has nothing else to learn from)
    moved = {
        cup_id
        for cup_id, reasons in session.execute(
            select(Verdict.cup_id, Verdict.reasons).where(Verdict.cup_id.in_(firsts))
        )
        if only_the_camera(tuple(reasons or ()))
    }
    carried = set(firsts) - moved
    for cup, station, ref, version, decision in (row for row in rows if row[0].id in carried):
        again = answered[cup.id]
        cl = cup_label[again]
        cups.append(_training_cup(cup, station, ref, version, decision, cl, split_cup_id=again))
        for coin in coins_by_cup.get(cup.id, []):
            twin = _coin_at(coin, coins_by_cup.get(again, []))
            if twin is None or (twin.id not in coin_label and (coin.top_type is None or twin.top_type is None)):
                continue
            ruling = coin_label.get(twin.id, cl)
            if LabelKind(ruling.kind) is not LabelKind.WRONG_SIDE:
                coins.append(_training_coin(cup, station, version, coin, ruling, inherited=True))
    return TrainingExport(cups=tuple(cups), coins=tuple(coins))


def _cup_rows(session: Session, ids: Sequence[int]) -> Sequence[Any]:
    return session.execute(
        select(Cup, Station.name, Capture.ref, Verdict.model_version, Verdict.decision)
        .join(Station, Station.id == Cup.station_id)
        .join(Verdict, Verdict.cup_id == Cup.id)
        .outerjoin(Capture, Capture.cup_id == Cup.id)
        .where(Cup.id.in_(ids))
        .order_by(Cup.id)
    ).all()


def _coins_by_cup(session: Session, ids: Sequence[int]) -> dict[int, list[Coin]]:
    out: dict[int, list[Coin]] = defaultdict(list)
    for coin in session.scalars(select(Coin).where(Coin.cup_id.in_(ids)).order_by(Coin.cup_id, Coin.index)):
        out[coin.cup_id].append(coin)
    return out


def _coin_at(coin: Coin, others: Sequence[Coin]) -> Coin | None:
    """The coin of ``others`` lying where ``coin`` lies: the nearest centre, closer than half the smaller box."""
    cx, cy = (coin.x1 + coin.x2) / 2, (coin.y1 + coin.y2) / 2
    size = min(coin.x2 - coin.x1, coin.y2 - coin.y1)
    best, best_d = None, math.inf
    for other in others:
        d = math.hypot((other.x1 + other.x2) / 2 - cx, (other.y1 + other.y2) / 2 - cy)
        if d < best_d and d < 0.5 * min(size, other.x2 - other.x1, other.y2 - other.y1):
            best, best_d = other, d
    return best


def _training_cup(
    cup: Cup, station: str, ref: str | None, version: str, decision: str, label: Label, split_cup_id: int | None = None
) -> TrainingCup:
    truth = label.corrected_type if label.kind is LabelKind.CORRECTED else cup.expected_type
    assert truth is not None
    return TrainingCup(
        cup_id=cup.id,
        station=station,
        capture_ref=ref,
        expected_type=cup.expected_type,
        label=LabelKind(label.kind),
        true_type=truth,
        model_version=version,
        decision=Decision(decision),
        labelled_at=label.created_at,
        split_cup_id=split_cup_id,
    )


def _training_coin(cup: Cup, station: str, version: str, coin: Coin, ruling: Label, *, inherited: bool) -> TrainingCoin:
    true_type, side = _coin_truth(ruling, coin, cup.expected_type, inherited=inherited)
    return TrainingCoin(
        cup_id=cup.id,
        coin_id=coin.id,
        index=coin.index,
        station=station,
        crop_ref=coin.crop_ref,
        mask_ref=coin.mask_ref,
        label=LabelKind(ruling.kind),
        true_type=true_type,
        side=side,
        inherited=inherited,
        embedding=_embedding(coin),
        model_version=version,
        labelled_at=ruling.created_at,
        confidence=coin.confidence,
        partial=coin.partial,
        diameter_mm=coin.diameter_mm,
    )


def station_view(engine: Engine, cup_ids: Iterable[int]) -> dict[int, tuple[SeenBox, ...]]:
    """Every box of the cups ``cup_ids`` as the station classified it, in detector order, by cup id (a cup the
    station found nothing in is absent).

    What the station saw and logged does not change with a ruling: the retrain rebuilds each labelled cup from these
    boxes, and takes only the truth from the rulings (:func:`export_cups`).
    """
    ids = sorted(set(cup_ids))
    if not ids:
        return {}
    with make_session_factory(engine)() as session:
        found = session.execute(select(Verdict.cup_id, Verdict.model_version).where(Verdict.cup_id.in_(ids)))
        versions = {cup_id: version for cup_id, version in found}
        return {
            cup_id: tuple(_seen_box(coin, versions[cup_id]) for coin in coins)
            for cup_id, coins in _coins_by_cup(session, ids).items()
        }


def _embedding(coin: Coin) -> npt.NDArray[np.float32] | None:
    """A logged coin's embedding, as stored (little-endian float32), ``None`` when none was kept."""
    return None if coin.embedding is None else np.frombuffer(coin.embedding, dtype="<f4").copy()


def _seen_box(coin: Coin, version: str) -> SeenBox:
    return SeenBox(
        cup_id=coin.cup_id,
        coin_id=coin.id,
        index=coin.index,
        is_coin=coin.top_type is not None,  # the station logs no match for what it took for an object
        crop_ref=coin.crop_ref,
        mask_ref=coin.mask_ref,
        embedding=_embedding(coin),
        model_version=version,
        confidence=coin.confidence,
        partial=coin.partial,
        diameter_mm=coin.diameter_mm,
    )
