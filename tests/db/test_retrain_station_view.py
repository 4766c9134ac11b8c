"""The retrain rebuilds each labelled cup as the station saw it, and takes only the truth from the rulings: a washer
the station took for a coin stays one of the cup's coins (so a wrong PASS counts as one), and a coin it took for an
object stays an object the hard rules stop the cup for. Real SQLite and PostgreSQL logs, real crops, the tiny model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from db.records import CoinRecord
from db.repository import VerdictRepository
from db.schema import LabelKind
from models.pipeline import Pipeline
from models.registry import current_bundle_path
from models.retrain import LabelledCup, labelled_pairs
from models.synth.mint import generate_mint
from models.train.galleries import reference_crops
from models.types import Side
from models.voter import passable
from station.retrain_job import labelled_cups
from tests.db.factories import SUPERVISOR, flagged_cup
from tests.db.test_retrain_job import _home_with_tiny_model, _jpeg
from tests.models.verdict_world import PIPE_MINT_SEED, PIPE_TYPES

PHOTO = _jpeg(np.full((32, 32, 3), 90, np.uint8))


def _crops(seed: int) -> list[np.ndarray]:
    """Four reverse-up crops of the tiny world's first type."""
    return reference_crops(generate_mint(12, PIPE_MINT_SEED).by_id(PIPE_TYPES[0]), Side.REVERSE, 4, size=64, seed=seed)


def _coin(k: int, crop: np.ndarray, top_type: str | None, side: Side | None = None) -> CoinRecord:
    """Box ``k`` of a row of boxes 64 px apart (a re-check's coin ``k`` lies where the first check's lies)."""
    x = 64.0 * k
    return CoinRecord(
        index=k, bbox=(x, 0.0, x + 64.0, 64.0), confidence=0.95, top_type=top_type, top_side=side, crop_jpeg=_jpeg(crop)
    )


def _setup(repo: VerdictRepository, home: Path, tmp: Path) -> tuple[str, Pipeline]:
    version = _home_with_tiny_model(home, tmp)
    return version, Pipeline.load(home, current_bundle_path(home), with_detector=False)


def _only(cups: list[LabelledCup], cup_id: int) -> LabelledCup:
    (cup,) = [c for c in cups if c.cup_id == cup_id]
    return cup


def _primary(cup: LabelledCup, pipe: Pipeline) -> tuple[bool, bool, float]:
    """The cup's pair with its expected type as the calibration and the holdout count it: whether the hard rules let
    it pass, its truth, and the voter's score."""
    pairs = labelled_pairs([cup], pipe.view, pipe.pooler, pipe.voter.feature_names, negatives=0)
    prim = pairs.subset(pairs.primary)
    allowed = passable(prim.x, pipe.voter.feature_names, pipe.voter.min_coins)
    return bool(allowed[0]), bool(prim.y[0]), float(pipe.voter.predict(prim.x)[0])


def test_a_washer_taken_for_a_coin_stays_a_coin_the_cup_is_scored_on(
    repo: VerdictRepository, station_home: Path, tmp_path: Path
) -> None:
    version, pipe = _setup(repo, station_home, tmp_path)
    t = PIPE_TYPES[0]
    crops = _crops(7)
    repo.log_verdict(flagged_cup(t, PHOTO, tuple(_coin(k, c, t) for k, c in enumerate(crops)), version))
    cup_id = repo.review_queue(limit=5)[0].cup_id
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, cup_id, LabelKind.NOT_A_COIN, coin_index=3)  # the fourth "coin" is a washer

    cup = _only(labelled_cups(repo, repo.training_export(), pipe, set(), progress=False), cup_id)

    # the four coins the station judged the cup on, none of them an object; the washer makes it no clean cup
    assert (cup.coins.n, cup.coins.n_objects) == (4, 0)
    assert cup.coin_types == (t, t, t, None) and not cup.correct_for(t)
    # the station's own verdict on the logged crops: its hard rules let the cup through (it was only not sure)
    logged = [np.asarray(cv2.imdecode(np.frombuffer(_jpeg(c), np.uint8), cv2.IMREAD_COLOR), np.uint8) for c in crops]
    station = pipe.run_crops(logged, t)
    assert any(r.startswith("not sure enough") for r in station.reasons), station.reasons
    allowed, truth, score = _primary(cup, pipe)
    # so the retrain's pair is the station's: a PASS of it would count as the wrong PASS it is
    assert allowed and not truth
    assert abs(score - station.p_correct) < 1e-3


def test_a_coin_taken_for_an_object_stays_an_object_the_rules_stop_the_cup_for(
    repo: VerdictRepository, station_home: Path, tmp_path: Path
) -> None:
    version, pipe = _setup(repo, station_home, tmp_path)
    t = PIPE_TYPES[0]
    crops = _crops(8)
    # the detector took coin 2 for an object (no match); its box is logged with a crop, as a station logs a
    # pipeline's boxes when it shows no cuts of its own
    boxes = tuple(_coin(k, c, None if k == 2 else t) for k, c in enumerate(crops))
    repo.log_verdict(flagged_cup(t, PHOTO, boxes, version))
    cup_id = repo.review_queue(limit=5)[0].cup_id
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, cup_id, LabelKind.CORRECTED, coin_index=2, corrected_type=t)  # a coin of the order

    cup = _only(labelled_cups(repo, repo.training_export(), pipe, set(), progress=False), cup_id)

    assert (cup.coins.n, cup.coins.n_objects) == (3, 1) and cup.object_types == (t,)
    # truly a clean cup of its type, and refused by rule as the station refused it: never a clean pair it passes
    assert cup.correct_for(t)
    allowed, truth, score = _primary(cup, pipe)
    assert truth and not allowed and score == 0.0


def test_a_first_checks_coin_whose_twin_was_ruled_turned_over_stays_in_the_cup(
    repo: VerdictRepository, station_home: Path, tmp_path: Path
) -> None:
    version, pipe = _setup(repo, station_home, tmp_path)
    t = PIPE_TYPES[0]
    crops = _crops(9)
    first = flagged_cup(t, PHOTO, tuple(_coin(k, c, t, Side.OBVERSE) for k, c in enumerate(crops)), version)
    again = flagged_cup(t, PHOTO, tuple(_coin(k, c, t, Side.OBVERSE) for k, c in enumerate(crops)), version)
    first_id = repo.cup_of_verdict(repo.log_verdict(first))
    again_id = repo.cup_of_verdict(repo.log_verdict(replace(again, recheck_of=first.idempotency_key)))
    repo.relabel(SUPERVISOR, again_id, LabelKind.CONFIRMED)
    repo.relabel(SUPERVISOR, again_id, LabelKind.WRONG_SIDE, coin_index=1)  # it shows the reverse

    cups = labelled_cups(repo, repo.training_export(), pipe, set(), progress=False)

    # the first check is still the four coins the station saw; the turned coin's side is not known there
    seen = _only(cups, first_id)
    assert seen.coins.n == 4 and seen.coin_types == (t,) * 4
    assert seen.coin_sides[1] is None and seen.split_id == again_id
    recheck = _only(cups, again_id)
    assert recheck.coins.n == 4 and recheck.coin_sides[1] is Side.REVERSE
