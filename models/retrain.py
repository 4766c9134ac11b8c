"""Retraining from the station's own labels: pairs, a voter refit, recalibration and the holdout comparison.

The station's labelled cups (:class:`LabelledCup`, built from the verdict log by the station layer) are split by
a stable hash of the cup id into ``train``, ``cal`` and a frozen ``holdout`` (a cup never changes split, so the
holdout of later runs still holds every earlier holdout cup). Each cup gives (cup, candidate) pairs: its expected
type, its true type when the supervisor corrected it, and wrong candidates drawn first among the types sharing a
design with it. The voter is refit by continued boosting from the one in force
(:func:`models.voter.train_voter` with ``init_model``), the threshold is chosen again on the ``cal`` pairs
(:func:`calibration.risk.choose_threshold`), and both models are measured on the holdout pairs
(:func:`models.gate.holdout_metrics`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from calibration.risk import ThresholdChoice, choose_threshold
from models.bundle import Bundle
from models.features import CupCoins, GalleryView, feature_vector, pair_evidence
from models.files import sha256_file
from models.gate import GateDecision, holdout_metrics, promotion_gate
from models.label_quality import LabelIssue, rank_label_issues
from models.pooling import SetPooler
from models.train.voter import CALIBRATION_FEATURES, load_calibration_features, save_calibration_features
from models.voter import Voter, train_voter

SPLITS = ("train", "cal", "holdout")


@dataclass(frozen=True)
class LabelledCup:
    """One cup with a supervisor's ruling, ready to be turned into pairs.

    Attributes:
        cup_id: the verdict log's cup id (decides the split).
        expected_type: the type the order asked for.
        coins: the cup's coins (objects and unusable coins excluded, counted in ``n_objects``).
        coin_types: ``(n,)`` the true type of each coin in ``coins``.
        labelled_at: ISO time of the ruling in force.
    """

    cup_id: int
    expected_type: str
    coins: CupCoins
    coin_types: tuple[str, ...]
    labelled_at: str = ""

    @property
    def true_type(self) -> str | None:
        """The one type every coin is, ``None`` for a mixed or empty cup."""
        kinds = set(self.coin_types)
        return next(iter(kinds)) if len(kinds) == 1 and self.coins.n > 0 else None

    def correct_for(self, candidate: str) -> bool:
        """Whether the cup is a clean cup of ``candidate``: coins, all of it, and no foreign object."""
        return self.coins.n > 0 and self.coins.n_objects == 0 and self.true_type == candidate


def split_of(cup_id: int, holdout_fraction: float = 0.25, cal_fraction: float = 0.35) -> str:
    """The cup's split from a stable hash of its id: ``"holdout"``, ``"cal"`` or ``"train"``."""
    u = (zlib.crc32(f"cup:{cup_id}".encode()) % 10_000) / 10_000.0
    if u < holdout_fraction:
        return "holdout"
    if u < holdout_fraction + cal_fraction:
        return "cal"
    return "train"


@dataclass(frozen=True)
class PairSet:
    """Features of (cup, candidate) pairs.

    Attributes:
        x: ``(n, F)`` float64 features in the voter's column order.
        y: ``(n,)`` bool truth.
        cup_id: ``(n,)`` int64 the pair's cup.
        primary: ``(n,)`` bool, the pair is the cup with its expected type (what the station judged).
    """

    x: np.ndarray
    y: np.ndarray
    cup_id: np.ndarray
    primary: np.ndarray

    def __len__(self) -> int:
        return int(self.y.size)

    def subset(self, keep: np.ndarray) -> PairSet:
        """The pairs where ``keep`` is true."""
        return PairSet(self.x[keep], self.y[keep], self.cup_id[keep], self.primary[keep])


def _candidates(cup: LabelledCup, view: GalleryView, negatives: int, rng: np.random.Generator) -> list[str]:
    cands = [cup.expected_type]
    truth = cup.true_type
    if truth is not None and truth not in cands:
        cands.append(truth)
    anchor = view.type_index.get(truth or cup.expected_type)
    pool: list[str] = []
    if anchor is not None:
        shares = view.design_types[:, anchor]
        related = np.flatnonzero(view.design_types[shares].any(axis=0))
        pool = [view.types[int(t)] for t in related if view.types[int(t)] not in cands]
    rng.shuffle(pool)
    others = [t for t in view.types if t not in cands and t not in pool]
    rng.shuffle(others)
    for t in [*pool, *others][:negatives]:
        cands.append(t)
    return cands


def labelled_pairs(
    cups: Sequence[LabelledCup],
    view: GalleryView,
    pooler: SetPooler | None,
    feature_names: Sequence[str],
    *,
    gem_p: float = 3.0,
    negatives: int = 2,
    seed: int = 0,
) -> PairSet:
    """Every labelled cup with its expected type, its corrected type, and ``negatives`` wrong candidates.

    Candidates not enrolled in ``view`` are skipped.
    """
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    ys: list[bool] = []
    ids: list[int] = []
    prim: list[bool] = []
    for cup in cups:
        tb, ta = view.type_scores(cup.coins.embeddings)
        for cand in _candidates(cup, view, negatives, rng):
            idx = view.type_index.get(cand)
            if idx is None:
                continue
            ev = pair_evidence(view, cup.coins, idx, pooler, gem_p=gem_p, type_best=tb, type_arg=ta)
            rows.append(feature_vector(ev.features, feature_names))
            ys.append(cup.correct_for(cand))
            ids.append(cup.cup_id)
            prim.append(cand == cup.expected_type)
    x = np.stack(rows) if rows else np.zeros((0, len(feature_names)))
    return PairSet(x, np.asarray(ys, bool), np.asarray(ids, np.int64), np.asarray(prim, bool))


@dataclass(frozen=True)
class RetrainConfig:
    """Settings of one retrain.

    Attributes:
        holdout_fraction: share of cups in the frozen holdout.
        cal_fraction: share of cups used to choose the threshold.
        negatives: wrong candidates per cup.
        rounds: boosting rounds added to the voter in force.
        target: precision target (``None``: the bundle's).
        delta: failure probability (``None``: the bundle's).
        shuffle_labels: train on shuffled labels, from scratch (a deliberately degraded candidate for checks).
        seed: seed.
    """

    holdout_fraction: float = 0.25
    cal_fraction: float = 0.35
    negatives: int = 2
    rounds: int = 60
    target: float | None = None
    delta: float | None = None
    shuffle_labels: bool = False
    seed: int = 0


REFIT_PARAMS: dict[str, Any] = {"min_data_in_leaf": 5, "learning_rate": 0.05}
"""LightGBM settings of the refit: small leaves, because the station's labels are a few hundred rows."""


def refit_voter(current: Voter, train: PairSet, cfg: RetrainConfig) -> Voter:
    """The voter refit on the station's training pairs.

    Normally continued boosting from ``current``; with ``cfg.shuffle_labels`` a fresh voter on shuffled labels.

    Raises:
        ValueError: the pairs are all correct or all wrong.
    """
    y = train.y
    init: Voter | None = current
    if cfg.shuffle_labels:
        y = np.random.default_rng(cfg.seed).permutation(y)
        init = None
    return train_voter(
        train.x,
        y,
        current.feature_names,
        rounds=cfg.rounds,
        params={**REFIT_PARAMS, "seed": cfg.seed},
        init_model=init,
        min_coins=current.min_coins,
    )


@dataclass(frozen=True)
class Comparison:
    """The old and the candidate model on the holdout, and the gate's decision."""

    decision: GateDecision
    old_scores: np.ndarray
    new_scores: np.ndarray
    y: np.ndarray
    old_threshold: float
    new_threshold: float


def compare(
    old_voter: Voter,
    old_threshold: ThresholdChoice,
    new_voter: Voter,
    new_threshold: ThresholdChoice,
    holdout: PairSet,
    frozen: tuple[np.ndarray, np.ndarray] | None = None,
) -> Comparison:
    """Score the holdout (and the bundle's frozen calibration pairs ``(x, y)``, when given) with both models and
    apply :func:`models.gate.promotion_gate`."""
    old_s = old_voter.predict(holdout.x) if len(holdout) else np.zeros(0)
    new_s = new_voter.predict(holdout.x) if len(holdout) else np.zeros(0)
    old_m = holdout_metrics(old_s, holdout.y, old_threshold.threshold, old_threshold.delta)
    new_m = holdout_metrics(new_s, holdout.y, new_threshold.threshold, new_threshold.delta)
    frozen_old = frozen_new = None
    if frozen is not None and len(frozen[1]):
        fx, fy = frozen
        frozen_old = holdout_metrics(old_voter.predict(fx), fy, old_threshold.threshold, old_threshold.delta)
        frozen_new = holdout_metrics(new_voter.predict(fx), fy, new_threshold.threshold, new_threshold.delta)
    decision = promotion_gate(old_m, new_m, target=new_threshold.target, frozen_old=frozen_old, frozen_new=frozen_new)
    return Comparison(decision, old_s, new_s, holdout.y, old_threshold.threshold, new_threshold.threshold)


@dataclass(frozen=True)
class Candidate:
    """A retrained bundle written to a staging folder, with everything the report and the registry need.

    Attributes:
        bundle: the saved candidate bundle (its ``root`` is the staging folder).
        comparison: old vs new on the holdout.
        counts: pairs and cups per split.
        label_issues: every labelled cup's ruling scored by cleanlab against the model in force, most
            suspicious first.
    """

    bundle: Bundle
    comparison: Comparison
    counts: dict[str, int] = field(default_factory=dict)
    label_issues: tuple[LabelIssue, ...] = ()


def retrain_bundle(
    current: Bundle,
    current_voter: Voter,
    pooler: SetPooler,
    view: GalleryView,
    cups: Sequence[LabelledCup],
    out: Path,
    cfg: RetrainConfig | None = None,
) -> Candidate:
    """Refit the voter on the station's labels, choose its threshold, compare on the holdout, write the bundle.

    Args:
        current: the bundle in force.
        current_voter: its voter.
        pooler: its set pooler (kept as is).
        view: the station's gallery view.
        cups: every labelled cup.
        out: staging folder for the candidate (``voter.txt``, ``pooler.pt``, ``verdict.json``).
        cfg: settings.

    Raises:
        ValueError: too few labels to train or to calibrate (all pairs of a split of one truth).
        BundleError: the bundle in force was trained on another feature set.
    """
    current.check_feature_set()
    cfg = cfg or RetrainConfig()
    target = cfg.target if cfg.target is not None else current.threshold.target
    delta = cfg.delta if cfg.delta is not None else current.threshold.delta
    pairs = labelled_pairs(
        cups,
        view,
        pooler,
        current.features,
        gem_p=current.preprocess.gem_p,
        negatives=cfg.negatives,
        seed=cfg.seed,
    )
    split = np.array([split_of(int(c), cfg.holdout_fraction, cfg.cal_fraction) for c in pairs.cup_id], dtype=str)
    train, cal, hold = (pairs.subset(split == s) for s in SPLITS)
    if len(cal) == 0:
        raise ValueError("no labelled cups fall in the calibration split yet")
    prim = pairs.subset(pairs.primary)
    issues = tuple(rank_label_issues(prim.cup_id.tolist(), prim.y, current_voter.predict(prim.x))) if len(prim) else ()
    voter = refit_voter(current_voter, train, cfg)
    # The threshold is certified on the station's calibration cups together with the bundle's own calibration
    # pairs (their features are kept beside it), re-scored by the new voter: a day's labels alone are far too
    # few to certify 99.5 % (at least 598 passes without an error at delta 0.05).
    cal_x, cal_y = cal.x, cal.y
    root = current.path(".")
    frozen = load_calibration_features(root / CALIBRATION_FEATURES, current.features) if root else None
    if frozen is not None:
        cal_x, cal_y = np.concatenate([cal_x, frozen[0]]), np.concatenate([cal_y, frozen[1]])
    cal_scores = voter.predict(cal_x)
    choice = choose_threshold(cal_scores, cal_y, target=target, delta=delta)
    old_choice = current.threshold
    comparison = compare(current_voter, old_choice, voter, choice, hold, frozen)
    out.mkdir(parents=True, exist_ok=True)
    voter_path = voter.save(out / "voter.txt")
    pooler_path = pooler.save(out / "pooler.pt")
    if frozen is not None:
        # only the bundle's own pairs travel on: the station's are rebuilt from its labels at every retrain, and
        # passing them on too would count each station cup again in every later generation's calibration
        save_calibration_features(out / CALIBRATION_FEATURES, frozen[0], frozen[1], current.features)
    counts = {
        "cups": len(cups),
        **{f"{s}_pairs": len(p) for s, p in zip(SPLITS, (train, cal, hold), strict=True)},
        **{f"{s}_positive": int(p.y.sum()) for s, p in zip(SPLITS, (train, cal, hold), strict=True)},
        **{f"{s}_cups": len(set(p.cup_id.tolist())) for s, p in zip(SPLITS, (train, cal, hold), strict=True)},
        "frozen_cal_pairs": 0 if frozen is None else len(frozen[1]),
    }
    summary = {
        "retrained_from": current.version,
        "source": "station labels",
        "shuffled_labels": cfg.shuffle_labels,
        "rounds": voter.info.get("rounds"),
        **counts,
        "holdout": comparison.decision.to_dict(),
    }
    bundle = replace(
        current,
        root=out,
        embedder_file=_absolute(current, current.embedder_file),
        detector_dir=_absolute(current, current.detector_dir),
        voter_file=voter_path.name,
        voter_sha256=sha256_file(voter_path),
        pooler_file=pooler_path.name,
        pooler_sha256=sha256_file(pooler_path),
        threshold=choice,
        cal_scores=np.round(cal_scores, 5),
        cal_correct=cal_y,
        train=summary,
        version="",
    )
    bundle = replace(bundle, version=bundle.compute_version())
    bundle.save(out / "verdict.json")
    return Candidate(bundle, comparison, counts, issues)


def _absolute(bundle: Bundle, rel: str | None) -> str | None:
    """A weights path of ``bundle`` as an absolute path (``None``, the shipped default, stays ``None``)."""
    p = bundle.path(rel)
    return None if p is None else str(p.resolve())


def nan_to_none(value: float) -> float | None:
    """``None`` for a non-finite float (JSON)."""
    return value if math.isfinite(value) else None
