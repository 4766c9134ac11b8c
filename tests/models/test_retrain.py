"""The nightly retrain's candidate bundle: what it stores lets its threshold be found again."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from calibration.risk import choose_threshold
from models.bundle import Bundle, load_bundle
from models.gallery import GalleryEntry
from models.gallery_view import GalleryView
from models.gate import GateDecision
from models.pipeline import Pipeline
from models.references import StationReferences
from models.retrain import (
    LabelledCup,
    PairSet,
    RetrainConfig,
    compare,
    design_hits,
    labelled_pairs,
    nearest_design,
    refit_voter,
    retrain_bundle,
    select_references,
    split_of,
)
from models.types import Side
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import PIPE_TYPES, plain_coins, prototype_gallery, unit, write_bundle

TYPES = ("a0", "a1", "b0", "b1")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_rechoosing_at_the_retrains_target_finds_its_threshold_and_counts_again(tmp_path: Path) -> None:
    """The calibration scores are stored as the threshold was chosen on them: rounded to 5 decimals, re-choosing at
    the same target found another threshold (0.96957 for 0.9695703) and another count of accepted pairs."""
    path, embedder = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    current = load_bundle(path)
    d = embedder.embed_dim
    rng = np.random.default_rng(4)
    # four types in two families; each family shares its obverse, each type has its own reverse
    gallery, protos = prototype_gallery(d, embedder.version, rng, TYPES)
    pipeline = Pipeline.from_parts(current, gallery, embedder=embedder)

    def cup(i: int) -> LabelledCup:
        t = TYPES[i % 4]
        types = [t] * 4
        if i % 3 == 2:
            types[1] = TYPES[(i + 2) % 4]  # a coin of the other family
        emb = _unit(np.stack([protos[f"{u}-rev"] for u in types]) + 0.3 * rng.normal(size=(4, d)))
        return LabelledCup(i, t, plain_coins(emb), tuple(types), f"2026-01-01T00:00:{i % 60:02d}")

    cfg = RetrainConfig(target=0.8, delta=0.2, rounds=20, references_per_design=0, fine_tune_embedder=False)
    cand = retrain_bundle(current, pipeline, [cup(i) for i in range(240)], tmp_path / "cand", cfg)
    stored = load_bundle(tmp_path / "cand" / "verdict.json")
    assert stored.threshold.can_pass and stored.cal_scores.size == cand.bundle.cal_scores.size > 0
    again = stored.rechoose(stored.threshold.target)
    assert again.threshold == stored.threshold.threshold
    assert (again.n_accepted, again.n_errors) == (stored.threshold.n_accepted, stored.threshold.n_errors)
    accepted = stored.cal_scores >= stored.threshold.threshold
    assert int(accepted.sum()) == stored.threshold.n_accepted
    assert int((accepted & ~stored.cal_correct).sum()) == stored.threshold.n_errors


LIGHT = 2.2
"""How far the station's light moves each design's coins from its enrolment photos (along a direction of its own):
the coins still lie nearest their own design, but less surely, until the station's references hold them."""


@dataclass(frozen=True)
class Station:
    """The tiny bundle in force over a gallery of prototype embeddings, each design's prototype as enrolled and
    under the station's light."""

    current: Bundle
    pipeline: Pipeline
    enrolled: dict[str, np.ndarray]
    drifted: dict[str, np.ndarray]
    rng: np.random.Generator


def _station(tmp_path: Path) -> Station:
    path, embedder = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    current = load_bundle(path)
    d = embedder.embed_dim
    rng = np.random.default_rng(4)
    gallery, protos = prototype_gallery(d, embedder.version, rng)
    drifted = {k: unit(v + LIGHT * unit(rng.normal(size=d))) for k, v in protos.items()}
    return Station(current, Pipeline.from_parts(current, gallery, embedder=embedder), protos, drifted, rng)


def _cup(station: Station, i: int, *, mixed: bool | None = None, light: bool = True) -> LabelledCup:
    """Cup ``i`` of four coins lying reverse up under the station's light (``light``, else the enrolment's); every
    third (or as ``mixed`` says) holds a coin of the other family."""
    t = PIPE_TYPES[i % 4]
    types = [t] * 4
    if (i % 3 == 2) if mixed is None else mixed:
        types[1] = PIPE_TYPES[(i + 2) % 4]
    d = station.pipeline.embedder.embed_dim
    protos = station.drifted if light else station.enrolled
    emb = unit(np.stack([protos[f"{u}-rev"] for u in types]) + 0.15 * station.rng.normal(size=(4, d)))
    return LabelledCup(i, t, plain_coins(emb), tuple(types), f"2026-01-01T00:00:{i % 60:02d}")


def test_the_confirmed_coins_own_references_are_promoted_and_measured_on_the_holdout_coins(tmp_path: Path) -> None:
    station = _station(tmp_path)
    cups = [_cup(station, i) for i in range(120)]
    cfg = RetrainConfig(target=0.8, delta=0.2, rounds=20, fine_tune_embedder=False)

    cand = retrain_bundle(station.current, station.pipeline, cups, tmp_path / "cand", cfg)

    decision = cand.comparison.decision
    assert decision.promote and cand.counts["station_references"] > 0, decision.reasons
    nearest = decision.nearest_design
    assert nearest is not None and nearest.n_coins == 4 * cand.counts["holdout_cups"]
    assert nearest.new_right > nearest.old_right  # the station's references hold its drifted coins
    line = (
        f"ok: nearest design on {nearest.n_coins} holdout coins: {nearest.new_share:.1%} ({nearest.new_right}) vs "
        f"{nearest.old_share:.1%} ({nearest.old_right})"
    )
    assert line in decision.reasons
    assert decision.to_dict()["nearest_design"] == {
        "n_coins": nearest.n_coins,
        "old_right": nearest.old_right,
        "new_right": nearest.new_right,
        "old_share": nearest.old_share,
        "new_share": nearest.new_share,
    }
    assert cand.bundle.train["holdout"]["nearest_design"]["new_right"] == nearest.new_right
    # without station references before or after, the candidate sees the coins as the model in force does
    bare = retrain_bundle(
        station.current, station.pipeline, cups, tmp_path / "bare", replace(cfg, references_per_design=0)
    )
    assert bare.comparison.decision.nearest_design is None


def test_station_references_filed_under_other_types_are_rejected_though_the_kept_voter_ties(tmp_path: Path) -> None:
    """The voter in force kept with new references scores the bundle's frozen calibration pairs exactly as before
    (their features were computed once), and a holdout of cups nobody may pass ties as well: only where the
    references act, on which design each holdout coin lies nearest, does a candidate whose references name every
    type's reverse by another type's show for what it is."""
    station = _station(tmp_path)
    pipe, current = station.pipeline, station.current
    # the holdout holds only cups with a coin of the other family: no correct pair, as at a station of FLAGs
    cups = [_cup(station, i, mixed=True if split_of(i) == "holdout" else None) for i in range(120)]
    good = select_references(cups, pipe.view, pipe.embedder.version, per_design=20)
    rev = [k for k, e in enumerate(good.entries) if e.side is Side.REVERSE]
    assert len(rev) > 40
    other = {t: PIPE_TYPES[(k + 1) % 4] for k, t in enumerate(PIPE_TYPES)}
    entries = tuple(
        replace(
            good.entries[k], type_id=other[good.entries[k].type_id], design_id=f"{other[good.entries[k].type_id]}-rev"
        )
        for k in rev
    )
    poisoned = StationReferences(good.embeddings[rev], entries, None, good.embedder_version)

    def pairs(view: GalleryView, split: str) -> PairSet:
        p = labelled_pairs(cups, view, pipe.pooler, current.features, gem_p=current.preprocess.gem_p)
        return p.subset(np.array([split_of(int(c)) == split for c in p.split_id], bool))

    # the bundle's own calibration cups, photographed offline under the enrolment's light
    frozen_cups = [replace(_cup(station, i, light=False), cup_id=100_000 + i) for i in range(400)]
    fz = labelled_pairs(frozen_cups, pipe.view, pipe.pooler, current.features, negatives=0)
    frozen = (fz.x, fz.y)

    def gate(refs: StationReferences) -> GateDecision:
        """The kept branch of the retrain: the voter in force, its threshold certified again on the station's
        calibration pairs and the frozen ones (the model in force's, certified on them alike), with ``refs``."""
        view = pipe.with_references(refs).view
        cal = pairs(view, "cal")
        x, y = np.concatenate([cal.x, frozen[0]]), np.concatenate([cal.y, frozen[1]])
        choice = choose_threshold(pipe.voter.predict(x), y, target=0.8, delta=0.2)
        nearest = nearest_design(design_hits(cups, pipe.view, "holdout", 0.25, 0.35), (cups, view))
        old_hold = pairs(pipe.view, "holdout")
        return compare(
            pipe.voter, choice, pipe.voter, choice, pairs(view, "holdout"), frozen, old_hold, nearest
        ).decision

    bad = gate(poisoned)
    assert bad.frozen_old is not None and bad.frozen_new is not None
    assert bad.frozen_new.n_accepted == bad.frozen_old.n_accepted > 0  # the frozen pairs cannot tell
    assert bad.new.n_positive == bad.old.n_positive == 0
    assert bad.nearest_design is not None and bad.nearest_design.new_right < bad.nearest_design.old_right
    assert not bad.promote
    assert [r for r in bad.reasons if r.startswith("fails")] == [
        f"fails: nearest design on {bad.nearest_design.n_coins} holdout coins: {bad.nearest_design.new_share:.1%} "
        f"({bad.nearest_design.new_right}) vs {bad.nearest_design.old_share:.1%} ({bad.nearest_design.old_right})"
    ]
    assert gate(good).promote  # the same coins filed under their own types


def test_a_refit_that_adds_no_tree_is_no_candidate(tmp_path: Path) -> None:
    """On a dozen labelled cups continued boosting stops before its first tree: that "refit" is the voter in force
    under another name, and counting it would certify the voter kept with the references at half the delta."""
    station = _station(tmp_path)
    pipe, current = station.pipeline, station.current
    cups = [_cup(station, i) for i in range(12)]
    train = labelled_pairs(
        [c for c in cups if split_of(c.split_id) == "train"], pipe.view, pipe.pooler, current.features
    )
    assert train.y.any() and not train.y.all()
    with pytest.raises(ValueError, match=r"^the refit added no tree to the voter in force's 120: "):
        refit_voter(pipe.voter, train, RetrainConfig(rounds=20))
    cfg = RetrainConfig(target=0.8, delta=0.2, rounds=20, fine_tune_embedder=False)

    cand = retrain_bundle(current, pipe, cups, tmp_path / "cand", cfg)

    assert cand.bundle.train["voter"].startswith("kept (no refit: the refit added no tree to the voter in force's ")
    assert "refit_rejected" not in cand.bundle.train
    assert (cand.bundle.threshold.delta, cand.bundle.threshold.candidates) == (0.2, 1)
    with pytest.raises(ValueError, match="the refit added no tree"):  # and without references, nothing to try
        retrain_bundle(current, pipe, cups, tmp_path / "bare", replace(cfg, references_per_design=0))


def test_an_enrolment_photo_copied_under_another_type_leaves_its_coins_in_doubt(tmp_path: Path) -> None:
    """Each type's reverse photos filed again under the next type, as a careless import would: every reverse coin
    then lies exactly as near a reference of another type's design as its own, and counts as wrong, whichever type's
    references the gallery lists first."""
    station = _station(tmp_path)
    pipe = station.pipeline
    cups = [_cup(station, i, light=False) for i in range(120)]
    vectors, ids = pipe.gallery.vectors()
    entries = pipe.gallery.entries
    other = {t: PIPE_TYPES[(k + 1) % 4] for k, t in enumerate(PIPE_TYPES)}
    rev = [k for k, i in enumerate(ids) if entries[i].side is Side.REVERSE]
    copies = StationReferences(
        vectors[rev],
        tuple(
            GalleryEntry(other[entries[ids[k]].type_id], Side.REVERSE, f"{other[entries[ids[k]].type_id]}-rev")
            for k in rev
        ),
        None,
        pipe.embedder.version,
    )

    in_force = design_hits(cups, pipe.view, "holdout", 0.25, 0.35)
    nearest = nearest_design(in_force, (cups, pipe.with_references(copies).view))

    assert nearest.old_right > 0.9 * nearest.n_coins
    assert nearest.new_right == 0
