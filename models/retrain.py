"""Retraining from the station's own labels: pairs, a voter refit, recalibration and the holdout comparison.

The station's labelled cups (:class:`LabelledCup`, built from the verdict log by the station layer) are split by
a stable hash of the cup id into ``train``, ``cal`` and a frozen ``holdout`` (a cup never changes split, so the
holdout of later runs still holds every earlier holdout cup). Each cup gives (cup, candidate) pairs: its expected
type, its true type when the supervisor corrected it, and wrong candidates drawn first among the types sharing a
design with it. The ``train`` cups' confirmed coins become station references (:func:`select_references`,
:mod:`models.references`) that the candidate's gallery view holds beside the enrolment photos. The voter is refit
by continued boosting from the one in force (:func:`models.voter.train_voter` with ``init_model``; one that adds no
tree is the voter in force under another name, and no candidate), the threshold is chosen again on the ``cal`` pairs
(:func:`calibration.risk.choose_threshold`; each candidate of a run at ``delta`` over the number of candidates, since
the best is kept), and both models are measured on the holdout pairs (:func:`models.gate.holdout_metrics`, at one
``delta``), each through its own gallery view. A candidate with other station references or another embedder layer
is also measured on the holdout's ruled coins: how many lie nearest a design of their type (:func:`design_hits`).
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.risk import ThresholdChoice, choose_threshold, min_accepted_for_rejection
from models.adapter import ADAPTER_FILE, EmbeddingAdapter, apply_layer, fit_adapter
from models.bundle import CAL_MINTS, DATA_MINTS, Bundle
from models.features import CupCoins, feature_vector, pair_evidence
from models.files import sha256_file
from models.gallery import GalleryEntry
from models.gallery_view import GalleryView
from models.gate import GateDecision, NearestDesign, holdout_metrics, promotion_gate
from models.label_quality import LabelIssue, rank_label_issues
from models.pooling import SetPooler
from models.references import REFERENCES_FILE, StationReferences, same_references
from models.train.voter import CALIBRATION_FEATURES, load_calibration_features, save_calibration_features
from models.types import Side
from models.voter import Voter, passable, train_voter

if TYPE_CHECKING:
    from models.pipeline import Pipeline

SPLITS = ("train", "cal", "holdout")


@dataclass(frozen=True)
class LabelledCup:
    """One cup with a supervisor's ruling, ready to be turned into pairs.

    Its features are the cup as the station saw it, and only its truth comes from the rulings: a washer the station
    took for a coin is one of ``coins`` (ruled no coin in ``coin_types``), and a coin it took for an object is one of
    ``coins.n_objects`` (its type in ``object_types``). Rebuilt from the rulings instead, the washer would become an
    object the hard rules refuse, and a wrong PASS could never count as one in the calibration or the holdout.

    Attributes:
        cup_id: the verdict log's cup id.
        expected_type: the type the order asked for.
        coins: the cup's coins as the station classified them (what it took for objects counted in ``n_objects``).
        coin_types: ``(n,)`` the true type of each coin in ``coins``, ``None`` where it was ruled no coin
            (``not_a_coin``, ``damaged``).
        labelled_at: ISO time of the ruling in force.
        split_cup_id: the id that decides the split instead of ``cup_id`` (a first check takes its re-check's:
            :attr:`db.records.TrainingCup.split_cup_id`), ``None`` for its own.
        coin_sides: the side each coin shows by its ruling (a "wrong side" ruling names the other side than the
            match's), ``None`` where it does not say; empty: not known for any.
        holds_unseen: the supervisor ruled the cup another type than any coin found in it shows (a coin of it lies
            hidden under others, where no box shows it): it is no clean cup of any type, whatever its coins show.
        object_types: the true type of each thing the station took for an object, ``None`` where it is no coin; one
            not listed (all of them by default) is no coin.
    """

    cup_id: int
    expected_type: str
    coins: CupCoins
    coin_types: tuple[str | None, ...]
    labelled_at: str = ""
    split_cup_id: int | None = None
    coin_sides: tuple[Side | None, ...] = ()
    holds_unseen: bool = False
    object_types: tuple[str | None, ...] = ()

    @property
    def split_id(self) -> int:
        """The id :func:`split_of` reads for this cup."""
        return self.cup_id if self.split_cup_id is None else self.split_cup_id

    @property
    def true_type(self) -> str | None:
        """The one type every box is by the rulings, the station's coins and objects alike; ``None`` for a mixed or
        empty cup, one holding something ruled no coin, or one holding a coin no box shows."""
        kinds = set(self.coin_types) | set(self.object_types)
        unruled = len(self.object_types) < self.coins.n_objects  # an object nobody made a coin of
        if self.holds_unseen or unruled or None in kinds or len(kinds) != 1:
            return None
        return next(iter(kinds))

    def correct_for(self, candidate: str) -> bool:
        """Whether the cup truly is a clean cup of ``candidate``: coins, all of it, and nothing else, by the rulings
        alone (the hard rules judge what the station saw: a clean cup it took a coin of for an object is correct, and
        scored 0 by rule)."""
        return self.true_type == candidate


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
        split_id: ``(n,)`` int64 the id deciding the pair's split (:attr:`LabelledCup.split_id`).
    """

    x: np.ndarray
    y: np.ndarray
    cup_id: np.ndarray
    primary: np.ndarray
    split_id: np.ndarray

    def __len__(self) -> int:
        return int(self.y.size)

    def subset(self, keep: np.ndarray) -> PairSet:
        """The pairs where ``keep`` is true."""
        return PairSet(self.x[keep], self.y[keep], self.cup_id[keep], self.primary[keep], self.split_id[keep])


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
    split_ids: list[int] = []
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
            split_ids.append(cup.split_id)
            prim.append(cand == cup.expected_type)
    x = np.stack(rows) if rows else np.zeros((0, len(feature_names)))
    return PairSet(
        x, np.asarray(ys, bool), np.asarray(ids, np.int64), np.asarray(prim, bool), np.asarray(split_ids, np.int64)
    )


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
        references_per_design: station references kept per (type, design) (:func:`select_references`); 0: none.
        fine_tune_embedder: also try a candidate whose embedder's output layer is fine-tuned on the station's
            coins (:mod:`models.adapter`), when the station's calibration split can certify it alone.
        head_steps: optimiser steps of that fine-tune.
        head_decay: its pull towards the layer in force (:func:`models.adapter.fit_adapter`).
    """

    holdout_fraction: float = 0.25
    cal_fraction: float = 0.35
    negatives: int = 2
    rounds: int = 60
    target: float | None = None
    delta: float | None = None
    shuffle_labels: bool = False
    seed: int = 0
    references_per_design: int = 20
    fine_tune_embedder: bool = True
    head_steps: int = 300
    head_decay: float = 0.01


REFIT_PARAMS: dict[str, Any] = {"min_data_in_leaf": 5, "learning_rate": 0.05}
"""LightGBM settings of the refit: small leaves, because the station's labels are a few hundred rows."""


def refit_voter(current: Voter, train: PairSet, cfg: RetrainConfig) -> Voter:
    """The voter refit on the station's training pairs.

    Normally continued boosting from ``current``; with ``cfg.shuffle_labels`` a fresh voter on shuffled labels.

    Raises:
        ValueError: the pairs are all correct or all wrong, or the refit is ``current`` under another name: on a few
            training rows continued boosting can stop before its first tree, and a candidate that is the voter in
            force would only take a share of the night's ``delta`` from the voter kept with new references.
    """
    y = train.y
    init: Voter | None = current
    if cfg.shuffle_labels:
        y = np.random.default_rng(cfg.seed).permutation(y)
        init = None
    voter = train_voter(
        train.x,
        y,
        current.feature_names,
        rounds=cfg.rounds,
        params={**REFIT_PARAMS, "seed": cfg.seed},
        init_model=init,
        min_coins=current.min_coins,
    )
    if init is not None and voter.booster.num_trees() <= current.booster.num_trees():
        raise ValueError(
            f"the refit added no tree to the voter in force's {current.booster.num_trees()}: the training pairs the "
            "hard rules let through give it nothing to split on"
        )
    if np.array_equal(voter.predict(train.x), current.predict(train.x)):
        raise ValueError(f"the refit scores all {len(train)} training pairs exactly as the voter in force does")
    return voter


@dataclass(frozen=True)
class Comparison:
    """The old and the candidate model on the holdout, and the gate's decision (``y``: the truth of the pairs
    ``new_scores`` scored; ``old_y``: of those ``old_scores`` scored, the same cups seen through the old gallery)."""

    decision: GateDecision
    old_scores: np.ndarray
    new_scores: np.ndarray
    y: np.ndarray
    old_threshold: float
    new_threshold: float
    old_y: np.ndarray | None = None


def compare(
    old_voter: Voter,
    old_threshold: ThresholdChoice,
    new_voter: Voter,
    new_threshold: ThresholdChoice,
    holdout: PairSet,
    frozen: tuple[np.ndarray, np.ndarray] | None = None,
    old_holdout: PairSet | None = None,
    nearest_design: NearestDesign | None = None,
) -> Comparison:
    """Score the holdout (and the bundle's frozen calibration pairs ``(x, y)``, when given) with both models and
    apply :func:`models.gate.promotion_gate`.

    ``old_holdout``: the same cups' pairs as the model in force sees them, when its gallery differs from the
    candidate's (other station references); default ``holdout``. ``nearest_design``: both models' nearest designs
    on the holdout coins (:func:`nearest_design`), required by the gate whenever the candidate's station references
    or embedder layer differ from the model in force's.
    """
    old_hold = holdout if old_holdout is None else old_holdout
    old_s = old_voter.predict(old_hold.x) if len(old_hold) else np.zeros(0)
    new_s = new_voter.predict(holdout.x) if len(holdout) else np.zeros(0)
    delta = min(old_threshold.delta, new_threshold.delta)  # both lower bounds at one confidence
    old_m = holdout_metrics(old_s, old_hold.y, old_threshold.threshold, delta)
    new_m = holdout_metrics(new_s, holdout.y, new_threshold.threshold, delta)
    frozen_old = frozen_new = None
    if frozen is not None and len(frozen[1]):
        fx, fy = frozen
        frozen_old = holdout_metrics(old_voter.predict(fx), fy, old_threshold.threshold, delta)
        frozen_new = holdout_metrics(new_voter.predict(fx), fy, new_threshold.threshold, delta)
    decision = promotion_gate(
        old_m,
        new_m,
        target=new_threshold.target,
        frozen_old=frozen_old,
        frozen_new=frozen_new,
        nearest_design=nearest_design,
    )
    return Comparison(decision, old_s, new_s, holdout.y, old_threshold.threshold, new_threshold.threshold, old_hold.y)


@dataclass(frozen=True)
class Candidate:
    """A retrained bundle written to a staging folder, with everything the report and the registry need.

    Attributes:
        bundle: the saved candidate bundle (its ``root`` is the staging folder).
        comparison: old vs new on the holdout.
        counts: pairs and cups per split.
        label_issues: every labelled cup's ruling scored by cleanlab against the model in force, most
            suspicious first (the cups the hard rules let pass as the expected type: elsewhere the model has
            no opinion).
        fine_tune: what became of the embedder fine-tune (one line: skipped and why, or how its candidate fared).
    """

    bundle: Bundle
    comparison: Comparison
    counts: dict[str, int] = field(default_factory=dict)
    label_issues: tuple[LabelIssue, ...] = ()
    fine_tune: str = ""


def select_references(
    cups: Sequence[LabelledCup],
    view: GalleryView,
    embedder_version: str,
    *,
    per_design: int,
    holdout_fraction: float = 0.25,
    cal_fraction: float = 0.35,
    exclude: frozenset[int] = frozenset(),
) -> StationReferences:
    """Station references from the coins of the ``train`` split's labelled cups.

    Each coin whose ruling names an enrolled type, and whose nearest reference shows a design of that type, becomes
    a reference of the type on that design (a coin the gallery puts nearest another type's own design is left out:
    which side it shows is not known). Per (type, design) the ``per_design`` newest rulings are kept. Cups in
    ``exclude`` (rulings cleanlab suspects) and coins without a template signature, when the view compares
    templates, give none; the ``cal`` and ``holdout`` cups never give one, so the candidate is measured on cups it
    took nothing from.
    """
    dim = view.refs.shape[1]
    chosen: dict[tuple[str, str], list[tuple[str, int, np.ndarray, np.ndarray | None, GalleryEntry]]] = {}
    for cup in cups:
        if (
            cup.cup_id in exclude
            or split_of(cup.split_id, holdout_fraction, cal_fraction) != "train"
            or not cup.coins.n
        ):
            continue
        sigs = cup.coins.signatures
        if view.has_templates and sigs is None:
            continue
        best, arg = view.type_scores(cup.coins.embeddings)
        for j, type_id in enumerate(cup.coin_types):
            t = None if type_id is None else view.type_index.get(type_id)
            if type_id is None or t is None:
                continue
            # the coin's nearest reference must show a design of its type: that gives the side it lies on (a coin
            # put on its type's distinctive design while it shows the shared side would teach every lookalike)
            row = int(arg[j, int(np.argmax(best[j]))])
            if not view.design_types[view.ref_design[row], t]:
                continue
            side = Side.REVERSE if view.ref_side[row] == 1 else Side.OBVERSE
            ruled = cup.coin_sides[j] if j < len(cup.coin_sides) else None
            if ruled is not None and ruled != side:
                continue  # the supervisor said it shows the other side: its match is the mistake, not a reference
            entry = GalleryEntry(
                type_id, side, design_id=view.designs[int(view.ref_design[row])], source=f"cup:{cup.cup_id}/coin:{j}"
            )
            sig = None if sigs is None else np.asarray(sigs[j])
            chosen.setdefault((type_id, entry.design), []).append(
                (cup.labelled_at, cup.cup_id, cup.coins.embeddings[j], sig, entry)
            )
    rows = [r for key in sorted(chosen) for r in sorted(chosen[key], key=lambda r: (r[0], r[1]))[-per_design:]]
    if not rows:
        return StationReferences.empty(dim, embedder_version)
    sig_rows = [r[3] for r in rows]
    signatures = np.stack(sig_rows) if all(g is not None for g in sig_rows) else None  # type: ignore[arg-type]
    return StationReferences(
        np.stack([r[2] for r in rows]).astype(np.float32), tuple(r[4] for r in rows), signatures, embedder_version
    )


@dataclass(frozen=True)
class _Trial:
    """One candidate the gate judged: its voter, threshold, station references, embedder layer, and the station
    pairs it was built on (``train``, ``cal``, ``holdout``)."""

    variant: str
    voter: Voter
    choice: ThresholdChoice
    cal_scores: np.ndarray
    cal_y: np.ndarray
    comparison: Comparison
    refs: StationReferences | None
    parts: tuple[PairSet, PairSet, PairSet]
    adapter: EmbeddingAdapter | None
    with_frozen: bool


def mapped_cups(cups: Sequence[LabelledCup], matrix: np.ndarray) -> list[LabelledCup]:
    """The cups with every coin embedding mapped by the output layer ``matrix`` (rows renormalised)."""
    return [replace(c, coins=replace(c.coins, embeddings=apply_layer(matrix, c.coins.embeddings))) for c in cups]


def _ruled_coins(
    cups: Sequence[LabelledCup], view: GalleryView, split: str, holdout_fraction: float, cal_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The split's ruled coins of enrolled types: embeddings, type index, best similarity to each type, and the
    reference each type's best similarity came from."""
    rows = [
        (cup.coins.embeddings[j], view.type_index[t])
        for cup in cups
        if split_of(cup.split_id, holdout_fraction, cal_fraction) == split
        for j, t in enumerate(cup.coin_types)
        if t is not None and t in view.type_index
    ]
    if not rows:
        d = view.refs.shape[1]
        return np.zeros((0, d), np.float32), np.zeros(0, np.int64), np.zeros((0, view.n_types)), np.zeros((0, 0))
    emb = np.stack([r[0] for r in rows]).astype(np.float32)
    types = np.asarray([r[1] for r in rows], np.int64)
    best, arg = view.type_scores(emb)
    return emb, types, best, arg


TIE = 1e-6
"""Cosines closer than this are as near (float32 rounding of one photo's copies)."""


def design_hits(
    cups: Sequence[LabelledCup], view: GalleryView, split: str, holdout_fraction: float, cal_fraction: float
) -> tuple[int, int]:
    """How many of the split's ruled coins (of enrolled types) have a nearest reference that shows a design of
    their type, and of how many coins.

    A coin that a reference of another design lies as near (within :data:`TIE`) does not count: the side it shows
    is in doubt, and a photo filed under a second type would otherwise pass for right wherever the first type's
    references happen to be listed first.
    """
    _, types, best, arg = _ruled_coins(cups, view, split, holdout_fraction, cal_fraction)
    if types.size == 0:
        return 0, 0
    # (n, T): each type's nearest reference to the coin shows a design of the coin's type
    own = view.design_types[view.ref_design[arg], types[:, None]]
    nearest = own[np.arange(types.size), best.argmax(axis=1)]
    rival = np.where(own, -np.inf, best).max(axis=1)
    return int((nearest & (rival < best.max(axis=1) - TIE)).sum()), int(types.size)


def design_accuracy(
    cups: Sequence[LabelledCup], view: GalleryView, split: str, holdout_fraction: float, cal_fraction: float
) -> tuple[float, int]:
    """Share of the split's ruled coins (of enrolled types) whose nearest reference shows a design of their type
    (:func:`design_hits`), and how many coins that is (``nan`` for none)."""
    right, n = design_hits(cups, view, split, holdout_fraction, cal_fraction)
    return (right / n if n else math.nan), n


def nearest_design(
    old: tuple[int, int],
    new: tuple[Sequence[LabelledCup], GalleryView],
    holdout_fraction: float = 0.25,
    cal_fraction: float = 0.35,
) -> NearestDesign:
    """The holdout's ruled coins lying nearest a design of their type for the model in force and for a candidate.

    Args:
        old: the model in force's :func:`design_hits` on the holdout (right, coins), measured once for every
            candidate of a night.
        new: the cups as the candidate's embedder sees them and its gallery view (station references, output layer).
        holdout_fraction: share of cups in the holdout, as the split was made.
        cal_fraction: share of cups in the calibration split.

    Raises:
        ValueError: the two count different holdout coins (cups or enrolled types that do not match).
    """
    old_right, n_old = old
    new_right, n_new = design_hits(*new, "holdout", holdout_fraction, cal_fraction)
    if n_old != n_new:
        raise ValueError(
            f"the model in force sees {n_old} ruled holdout coins of enrolled types, the candidate {n_new}: "
            "measure both on the same cups and gallery types"
        )
    return NearestDesign(n_new, old_right, new_right)


def retrain_bundle(
    current: Bundle,
    pipeline: Pipeline,
    cups: Sequence[LabelledCup],
    out: Path,
    cfg: RetrainConfig | None = None,
) -> Candidate:
    """Take station references, refit the voter, choose its threshold, compare on the holdout, write the bundle.

    Candidates, each with the station references of :func:`select_references` (none with
    ``cfg.references_per_design == 0``):

    * the voter refit by continued boosting, when the training pairs the hard rules let through hold both truths
      and it adds a tree to the voter in force (:func:`refit_voter`);
    * only when the gate rejects that one, or there is none, and there are references, the voter in force;
    * with ``cfg.fine_tune_embedder``, the embedder's output layer fine-tuned on the training split's coins
      (:func:`models.adapter.fit_adapter`, starting from the layer in force) with the voter refit on what it
      embeds. Its threshold is certified on the station's calibration split alone, since the bundle's own
      calibration pairs were embedded without the new layer; it is tried only when that split holds at least the
      correct pairs a certificate at the target needs (598 at 99.5 % and delta 0.05).

    A candidate whose station references or output layer are not the model in force's is also judged by the
    holdout's ruled coins lying nearest a design of their type (:func:`nearest_design`), each model through its own
    view. Of the candidates the gate promotes, the one with the highest holdout auto-pass is returned (the first on
    a tie), else the refit.

    Args:
        current: the bundle in force.
        pipeline: its loaded pipeline (voter, pooler, embedder layer, and the station's gallery with the bundle's
            references); ``cups`` must be embedded by its embedder.
        cups: every labelled cup.
        out: staging folder for the candidate (``voter.txt``, ``pooler.pt``, ``verdict.json``, ``references.npz``,
            ``adapter.npz``).
        cfg: settings.

    Raises:
        ValueError: too few labels to calibrate, or to train with no reference to try instead (all pairs of a split
            of one truth).
        BundleError: the bundle in force was trained on another feature set.
    """
    current.check_feature_set()
    cfg = cfg or RetrainConfig()
    target = cfg.target if cfg.target is not None else current.threshold.target
    delta = cfg.delta if cfg.delta is not None else current.threshold.delta
    fractions = (cfg.holdout_fraction, cfg.cal_fraction)

    def pairs_in(some: Sequence[LabelledCup], view: GalleryView) -> PairSet:
        return labelled_pairs(
            some,
            view,
            pipeline.pooler,
            current.features,
            gem_p=current.preprocess.gem_p,
            negatives=cfg.negatives,
            seed=cfg.seed,
        )

    def splits(pairs: PairSet) -> tuple[PairSet, PairSet, PairSet]:
        split = np.array([split_of(int(c), *fractions) for c in pairs.split_id], dtype=str)
        train, cal, hold = (pairs.subset(split == s) for s in SPLITS)
        return train, cal, hold

    def references(some: Sequence[LabelledCup], view: GalleryView, version: str) -> StationReferences | None:
        if cfg.references_per_design <= 0:
            return None
        return select_references(
            some,
            view,
            version,
            per_design=cfg.references_per_design,
            holdout_fraction=cfg.holdout_fraction,
            cal_fraction=cfg.cal_fraction,
            exclude=excluded,
        )

    old_pairs = pairs_in(cups, pipeline.view)
    old_hold = splits(old_pairs)[2]
    # Only where the hard rules let the cup pass does the voter have an opinion: elsewhere it scores 0 by rule, and
    # every confirmed cup of a declared lookalike or showing a shared side would look mislabelled.
    prim = old_pairs.subset(old_pairs.primary)
    prim = prim.subset(passable(prim.x, current.features, pipeline.voter.min_coins)) if len(prim) else prim
    issues = tuple(rank_label_issues(prim.cup_id.tolist(), prim.y, pipeline.voter.predict(prim.x))) if len(prim) else ()
    excluded = frozenset(i.cup_id for i in issues if i.flagged)
    refs = references(cups, pipeline.view, pipeline.embedder.version)
    # without references before or after, the candidate sees the cups as the model in force does
    same = not refs and not pipeline.references
    view = pipeline.view if same else pipeline.with_references(refs).view
    parts = splits(old_pairs if same else pairs_in(cups, view))
    if len(parts[1]) == 0:
        raise ValueError("no labelled cups fall in the calibration split yet")
    # The threshold is certified on the station's calibration cups together with the bundle's own calibration
    # pairs (their features are kept beside it), re-scored by the new voter: a day's labels alone are far too
    # few to certify 99.5 % (at least 598 passes without an error at delta 0.05).
    root = current.path(".")
    frozen = load_calibration_features(root / CALIBRATION_FEATURES, current.features) if root else None

    def refit(train: PairSet) -> tuple[Voter | None, str]:
        """The refit voter, or ``None`` and why when the training pairs the hard rules let through are all of one
        truth (tossed coins: every clean cup shows a shared side) or too few to add a tree; the references may still
        lift the station."""
        try:
            return refit_voter(pipeline.voter, train, cfg), ""
        except ValueError as err:
            return None, str(err)

    # Every candidate this run may certify on these cups (the refit voter, the voter kept with the new references,
    # and the two fine-tuned embedder variants) shares delta: the one promoted is the best of them, and its
    # certificate must hold whichever it is (Bonferroni). Which ones may be tried is settled here, before any is
    # scored on a calibration pair: the refit is trained on the training split alone (one that cannot be trained
    # is no candidate), and the fine-tuned embedder, certified on the station's calibration cups alone, is not
    # tried when they are too few to certify anything at its share of delta.
    refitted, no_refit = refit(parts[0])
    tries_kept = bool(refs) and not cfg.shuffle_labels
    others = int(refitted is not None) + int(tries_kept)
    need = min_accepted_for_rejection(target, delta / (2 + others))
    have = int((parts[1].y & passable(parts[1].x, current.features, pipeline.voter.min_coins)).sum())
    tries_tune = cfg.fine_tune_embedder and not cfg.shuffle_labels and have >= need
    candidates = max(1, others + (2 if tries_tune else 0))

    @functools.cache
    def in_force_hits() -> tuple[int, int]:
        """The model in force's nearest designs on the holdout coins: the same for every candidate of the night."""
        return design_hits(cups, pipeline.view, "holdout", *fractions)

    def judged(
        variant: str,
        voter: Voter,
        parts: tuple[PairSet, PairSet, PairSet],
        refs: StationReferences | None,
        adapter: EmbeddingAdapter | None,
        seen: tuple[Sequence[LabelledCup], GalleryView],
        with_frozen: bool = True,
    ) -> _Trial:
        """The candidate certified and compared; ``seen``: the cups as its embedder gives them and its gallery
        view, to measure its nearest designs by where its references or output layer are not the model in force's
        (neither the frozen pairs nor a holdout of FLAGs would show what they change)."""
        cal, hold = parts[1], parts[2]
        fz = frozen if with_frozen else None
        cal_x, cal_y = (
            (cal.x, cal.y) if fz is None else (np.concatenate([cal.x, fz[0]]), np.concatenate([cal.y, fz[1]]))
        )
        cal_scores = voter.predict(cal_x)
        choice = choose_threshold(cal_scores, cal_y, target=target, delta=delta, candidates=candidates)
        changed = not same_references(refs, pipeline.references) or _layer(adapter) != _layer(pipeline.adapter)
        nearest = nearest_design(in_force_hits(), seen, *fractions) if changed else None
        cmp = compare(pipeline.voter, current.threshold, voter, choice, hold, fz, old_hold, nearest)
        return _Trial(variant, voter, choice, cal_scores, cal_y, cmp, refs, parts, adapter, with_frozen)

    tried: list[_Trial] = []
    if refitted is not None:
        tried.append(judged("refit", refitted, parts, refs, pipeline.adapter, (cups, view)))
    refit_failed = not tried or not tried[0].comparison.decision.promote
    if refit_failed and tries_kept:
        tried.append(judged("kept", pipeline.voter, parts, refs, pipeline.adapter, (cups, view)))

    def fine_tuned() -> tuple[_Trial | None, str]:
        if not tries_tune:
            return None, (
                f"skipped: the station's calibration cups give {have} correct pairs the hard rules let pass, and a "
                f"fine-tuned embedder is certified on them alone (the bundle's calibration pairs were embedded "
                f"without it), which takes at least {need} at {target:.1%} (delta {delta:g} shared by the "
                f"{2 + others} candidates of a night that tries it)"
            )
        # The layer learns against the enrolment photos alone (the station references are training coins
        # themselves), from every ruled coin of the training split: unlike a station reference, one wrong ruling
        # moves a map fitted on hundreds of coins and held near the identity very little, and the cups cleanlab
        # suspects are mostly those the model in force scored low, the drifted coins the layer is there for.
        enrolled = pipeline.with_adapter(pipeline.adapter, None).view
        emb, types, _, arg = _ruled_coins(cups, enrolled, "train", *fractions)
        if types.size == 0:
            return None, "skipped: no ruled coin of an enrolled type in the training split"
        designs = enrolled.ref_design[arg[np.arange(types.size), types]]
        fit = fit_adapter(
            emb,
            designs,
            enrolled.refs,
            enrolled.ref_design,
            steps=cfg.head_steps,
            weight_decay=cfg.head_decay,
            seed=cfg.seed,
        )
        bare = pipeline.embedder.without_adapter()
        adapter = (pipeline.adapter or EmbeddingAdapter.identity(bare.embed_dim, bare.version)).then(fit.matrix)
        moved = mapped_cups(cups, fit.matrix)
        tuned = pipeline.with_adapter(adapter, None)
        acc_old, n_hold = design_accuracy(cups, enrolled, "holdout", *fractions)
        acc_new, _ = design_accuracy(moved, tuned.view, "holdout", *fractions)
        new_refs = references(moved, tuned.view, adapter.version)
        tuned_view = tuned.with_references(new_refs).view
        new_parts = splits(pairs_in(moved, tuned_view))
        tuned_voter, _ = refit(new_parts[0])
        trial = None
        if tuned_voter is not None:
            trial = judged("fine-tuned embedder", tuned_voter, new_parts, new_refs, adapter, (moved, tuned_view), False)
        if trial is None or not trial.comparison.decision.promote:
            kept = judged(
                "fine-tuned embedder, voter kept",
                pipeline.voter,
                new_parts,
                new_refs,
                adapter,
                (moved, tuned_view),
                False,
            )
            trial = kept if trial is None or kept.comparison.decision.promote else trial
        decision = trial.comparison.decision
        verdict = "promotable" if decision.promote else f"rejected by the gate ({decision.reasons[0]})"
        return trial, (
            f"output layer fine-tuned on {types.size} coins ({fit.steps} steps, loss {fit.loss_before:.3f} -> "
            f"{fit.loss_after:.3f}); {n_hold} holdout coins whose nearest enrolment reference shows a design of "
            f"their type: {acc_old:.1%} -> {acc_new:.1%}; candidate {verdict}"
        )

    fine_tune = "not tried (turned off)"
    if cfg.shuffle_labels:
        fine_tune = "not tried (shuffled labels)"
    elif cfg.fine_tune_embedder:
        trial, fine_tune = fine_tuned()
        if trial is not None:
            tried.append(trial)
    if not tried:
        raise ValueError(no_refit)
    promoted = [t for t in tried if t.comparison.decision.promote]
    chosen = max(promoted, key=lambda t: t.comparison.decision.new.auto_pass) if promoted else tried[0]
    train, cal, hold = chosen.parts
    out.mkdir(parents=True, exist_ok=True)
    voter_path = chosen.voter.save(out / "voter.txt")
    pooler_path = pipeline.pooler.save(out / "pooler.pt")
    refs_path = chosen.refs.save(out / REFERENCES_FILE) if chosen.refs is not None and len(chosen.refs) else None
    adapter_path = chosen.adapter.save(out / ADAPTER_FILE) if chosen.adapter is not None else None
    carried = frozen is not None and chosen.with_frozen
    if frozen is not None and chosen.with_frozen:
        # only the bundle's own pairs travel on: the station's are rebuilt from its labels at every retrain, and
        # passing them on too would count each station cup again in every later generation's calibration
        save_calibration_features(out / CALIBRATION_FEATURES, frozen[0], frozen[1], current.features)
    counts = {
        "cups": len(cups),
        **{f"{s}_pairs": len(p) for s, p in zip(SPLITS, (train, cal, hold), strict=True)},
        **{f"{s}_positive": int(p.y.sum()) for s, p in zip(SPLITS, (train, cal, hold), strict=True)},
        **{f"{s}_cups": len(set(p.cup_id.tolist())) for s, p in zip(SPLITS, (train, cal, hold), strict=True)},
        "frozen_cal_pairs": len(frozen[1]) if carried and frozen is not None else 0,
        "station_references": 0 if chosen.refs is None else len(chosen.refs),
    }
    variants = {
        "refit": "refit",
        "kept": "kept (the refit was rejected by the gate)" if refitted is not None else f"kept (no refit: {no_refit})",
        "fine-tuned embedder": "refit on the fine-tuned embedder",
        "fine-tuned embedder, voter kept": "kept, on the fine-tuned embedder (no refit on it passed the gate)",
    }
    summary = {
        "retrained_from": current.version,
        "source": "station labels",
        "shuffled_labels": cfg.shuffle_labels,
        "rounds": chosen.voter.info.get("rounds"),
        "voter": variants[chosen.variant],
        "embedder_fine_tune": fine_tune,
        **counts,
        "holdout": chosen.comparison.decision.to_dict(),
    }
    if chosen.variant == "kept" and refitted is not None:
        summary["refit_rejected"] = list(tried[0].comparison.decision.reasons)
    # the synthetic mints behind the candidate: the voter's (refit from it) always, the calibration's while its
    # pairs are carried, so an evaluation can still tell a test set from them
    if DATA_MINTS in current.train:
        summary[DATA_MINTS] = current.train[DATA_MINTS]
    if carried and CAL_MINTS in current.train:
        summary[CAL_MINTS] = current.train[CAL_MINTS]
    bundle = replace(
        current,
        root=out,
        embedder_file=_absolute(current, current.embedder_file),
        detector_dir=_absolute(current, current.detector_dir),
        voter_file=voter_path.name,
        voter_sha256=sha256_file(voter_path),
        pooler_file=pooler_path.name,
        pooler_sha256=sha256_file(pooler_path),
        threshold=chosen.choice,
        # whole, as the threshold was chosen on them: rounded, re-choosing at the same target finds another one
        cal_scores=np.asarray(chosen.cal_scores, np.float64),
        cal_correct=chosen.cal_y,
        train=summary,
        version="",
        references_file=None if refs_path is None else refs_path.name,
        references_sha256="" if refs_path is None else sha256_file(refs_path),
        adapter_file=None if adapter_path is None else adapter_path.name,
        adapter_sha256="" if adapter_path is None else sha256_file(adapter_path),
        adapter_version="" if chosen.adapter is None else chosen.adapter.version,
    )
    bundle = replace(bundle, version=bundle.compute_version())
    bundle.save(out / "verdict.json")
    return Candidate(bundle, chosen.comparison, counts, issues, fine_tune)


def _layer(adapter: EmbeddingAdapter | None) -> str:
    """The version of an embedder output layer, ``""`` for none."""
    return "" if adapter is None else adapter.version


def _absolute(bundle: Bundle, rel: str | None) -> str | None:
    """A weights path of ``bundle`` as an absolute path (``None``, the shipped default, stays ``None``)."""
    p = bundle.path(rel)
    return None if p is None else str(p.resolve())


def nan_to_none(value: float) -> float | None:
    """``None`` for a non-finite float (JSON)."""
    return value if math.isfinite(value) else None
