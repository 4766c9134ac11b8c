"""The promotion gate on a degraded candidate that can still pass cups: a nightly retrain on shuffled labels, at a
station whose model in force passes its cups, is rejected and leaves that model in force; and the bundle's frozen
calibration pairs are scored by each model's own voter, never the candidate's by the voter in force."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.risk import choose_threshold
from db.records import CoinRecord
from db.repository import VerdictRepository
from db.schema import LabelKind, Role
from models.bundle import load_bundle
from models.gate import holdout_metrics
from models.pipeline import Pipeline
from models.registry import SHIPPED, ModelEntry, current_bundle_path, load_registry, promote, register_version
from models.retrain import LabelledCup, PairSet, RetrainConfig, compare, labelled_pairs
from models.train.voter import CALIBRATION_FEATURES, load_calibration_features, save_calibration_features
from models.voter import train_voter
from station.retrain_job import EXIT_REJECTED, RetrainOptions, run_retrain
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, flagged_cup, make_jpeg
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import PIPE_TYPES, plain_coins, prototype_gallery, write_bundle

NOISE = 0.15
"""Spread of a coin's embedding around its design's prototype (and of the gallery's references)."""
EVERY_MIXED = 6
"""Every this many-th cup holds one coin of the other family: the wrong pairs the hard rules still let through."""
STATION_CUPS = 120
FROZEN_CUPS = 600
SHUFFLED = RetrainConfig(
    target=0.95, delta=0.2, rounds=20, negatives=0, shuffle_labels=True, fine_tune_embedder=False, seed=0
)
"""The nightly retrain on shuffled labels, judged on the pairs the station judged (each cup with its expected type)."""


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Station:
    """A station home whose model in force (``version``) passes nearly every clean cup of its world."""

    home: Path
    version: str


def _cup_types(i: int) -> tuple[str, list[str]]:
    """Cup ``i``'s expected type and the true type of each of its four coins (one of another family in every
    :data:`EVERY_MIXED`-th cup)."""
    t = PIPE_TYPES[i % 4]
    types = [t] * 4
    if i % EVERY_MIXED == EVERY_MIXED - 1:
        types[1] = PIPE_TYPES[(i + 2) % 4]
    return t, types


def _station(tmp_path: Path) -> Station:
    """Put the toy-trained bundle in force over a gallery of prototype embeddings (four types, two families sharing
    an obverse), with frozen calibration pairs of its own cups, and log and rule on :data:`STATION_CUPS` cups whose
    coins lie reverse up, each kept with its embedding (the retrain reuses it, as for the model that logged it)."""
    home = tmp_path / "home"
    folder = tmp_path / "bundle"
    path, embedder = write_bundle(folder, embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    d = embedder.embed_dim
    rng = np.random.default_rng(4)
    gallery, protos = prototype_gallery(d, embedder.version, rng, noise=NOISE)
    gallery.save(home / "gallery")
    bundle = load_bundle(path)
    pipeline = Pipeline.from_parts(bundle, gallery, embedder=embedder)
    focus = pipeline.preprocess.focus_min + 1.0  # what the retrain gives a coin logged without its crop

    def embeddings(types: list[str]) -> np.ndarray:
        return _unit(np.stack([protos[f"{u}-rev"] for u in types]) + NOISE * rng.normal(size=(len(types), d)))

    def calibration_cup(i: int) -> LabelledCup:
        t, types = _cup_types(i)
        return LabelledCup(100_000 + i, t, plain_coins(embeddings(types), focus), tuple(types))

    frozen = labelled_pairs(
        [calibration_cup(i) for i in range(FROZEN_CUPS)],
        pipeline.view,
        pipeline.pooler,
        bundle.features,
        gem_p=bundle.preprocess.gem_p,
        negatives=0,
    )
    save_calibration_features(folder / CALIBRATION_FEATURES, frozen.x, frozen.y, bundle.features)
    version = load_bundle(path).version
    register_version(home, folder, ModelEntry(version, "2026-01-01T00:00:00+00:00", SHIPPED))
    promote(home, version)

    repo = VerdictRepository.open(home)
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        repo.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
        for i in range(STATION_CUPS):
            t, types = _cup_types(i)
            e = embeddings(types)
            coins = tuple(
                CoinRecord(
                    index=k,
                    bbox=(0.0, 0.0, 64.0, 64.0),
                    confidence=0.95,
                    top_type=t,
                    embedding=e[k].astype("<f4").tobytes(),
                )
                for k in range(len(types))
            )
            record = flagged_cup(t, make_jpeg(i), coins, version)
            cup_id = repo.cup_of_verdict(repo.log_verdict(record))
            repo.relabel(SUPERVISOR, cup_id, LabelKind.CONFIRMED)
            if types[1] != t:  # the coin of the other family, ruled so
                repo.relabel(SUPERVISOR, cup_id, LabelKind.CORRECTED, coin_index=1, corrected_type=types[1])
    finally:
        repo.engine.dispose()
    return Station(home, version)


def test_a_retrain_on_shuffled_labels_is_rejected_and_the_model_in_force_stays(tmp_path: Path) -> None:
    """``cupcheck retrain`` with a deliberately degraded candidate (:attr:`RetrainConfig.shuffle_labels`): it still
    certifies a threshold and passes some cups, far fewer than the model in force, and is refused."""
    station = _station(tmp_path)
    in_force = current_bundle_path(station.home)
    assert in_force is not None
    bundle = load_bundle(in_force)
    old_voter = Pipeline.load(station.home, in_force, with_detector=False).voter
    frozen = load_calibration_features(in_force.parent / CALIBRATION_FEATURES, bundle.features)
    assert frozen is not None
    fx, fy = frozen

    out = run_retrain(station.home, RetrainOptions(config=SHUFFLED, progress=False))

    assert out.code == EXIT_REJECTED, out.message
    assert out.message.startswith(f"rejected by the gate: {out.candidate} stays unpromoted, {station.version} in force")
    registry = load_registry(station.home)
    assert registry.current == station.version and current_bundle_path(station.home) == in_force
    assert out.candidate is not None and registry.get(out.candidate).status == "rejected"
    path = station.home / "models" / out.candidate / "verdict.json"
    candidate = load_bundle(path)
    assert candidate.train["shuffled_labels"] is True
    assert candidate.train["embedder_fine_tune"] == "not tried (shuffled labels)"
    # worse, but not useless: it certified a threshold, and passes some cups of the holdout and frozen pairs
    decision = out.decision
    assert decision is not None and not decision.promote
    assert candidate.threshold.can_pass and decision.new.n_accepted > 0, decision.reasons
    assert decision.old.auto_pass > 0.9 and decision.new.auto_pass < decision.old.auto_pass
    assert any(r.startswith("fails: auto-pass ") for r in decision.reasons), decision.reasons

    # the frozen pairs: each model scored by its own voter at its own threshold
    new_voter = Pipeline.load(station.home, path, with_detector=False).voter
    expected_old = holdout_metrics(old_voter.predict(fx), fy, bundle.threshold.threshold)
    expected_new = holdout_metrics(new_voter.predict(fx), fy, candidate.threshold.threshold)
    assert decision.frozen_old is not None and decision.frozen_new is not None
    assert decision.frozen_old.n_pairs == decision.frozen_new.n_pairs == len(fy) == FROZEN_CUPS
    for got, want in ((decision.frozen_old, expected_old), (decision.frozen_new, expected_new)):
        assert (got.n_accepted, got.n_errors, got.n_positive) == (want.n_accepted, want.n_errors, want.n_positive)
    assert decision.frozen_old.auto_pass > 0.95 and 0 < decision.frozen_new.auto_pass < decision.frozen_old.auto_pass
    assert f"fails: auto-pass on the {FROZEN_CUPS} frozen calibration pairs " in "\n".join(decision.reasons)
    # what would be measured were the candidate's threshold read off the voter in force's scores instead: a pass
    # rate like the old model's own, hiding how much less the candidate passes
    misread = holdout_metrics(old_voter.predict(fx), fy, candidate.threshold.threshold)
    assert misread.auto_pass > decision.frozen_new.auto_pass + 0.3


def _toy_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three features; the truth depends on the first two, the third is noise (as in ``tests/models/test_gate.py``)."""
    x = rng.standard_normal((n, 3))
    y = (1.6 * x[:, 0] + x[:, 1] + 0.3 * rng.standard_normal(n)) > 0.4
    return x, y


def test_compare_scores_the_frozen_pairs_with_each_models_own_voter() -> None:
    """A candidate learnt from labels 40 % of which were coin tosses: it certifies a looser threshold and passes
    fewer frozen calibration pairs, while the station holdout (five wrong pairs nobody passes) ties. Only the frozen
    comparison tells them apart, and it must score the candidate with its own voter."""
    rng = np.random.default_rng(0)
    names = ("a", "b", "noise")
    (x_tr, y_tr), (x_cal, y_cal), frozen = (_toy_pairs(n, rng) for n in (1500, 3000, 3000))
    tossed = rng.random(y_tr.size) < 0.4
    noisy = np.where(tossed, rng.random(y_tr.size) < 0.5, y_tr)
    good = train_voter(x_tr, y_tr, names, rounds=80)
    worse = train_voter(x_tr, noisy, names, rounds=80)
    good_t = choose_threshold(good.predict(x_cal), y_cal, target=0.95, delta=0.05)
    worse_t = choose_threshold(worse.predict(x_cal), y_cal, target=0.95, delta=0.05)
    assert good_t.can_pass and worse_t.can_pass and worse_t.threshold < good_t.threshold
    hold_x = np.column_stack([np.full(5, -3.0), np.full(5, -3.0), rng.standard_normal(5)])
    holdout = PairSet(hold_x, np.zeros(5, bool), np.arange(5), np.ones(5, bool), np.arange(5))

    cmp = compare(good, good_t, worse, worse_t, holdout, frozen=frozen)

    decision = cmp.decision
    assert decision.old.n_accepted == decision.new.n_accepted == 0  # the holdout ties
    assert decision.frozen_old is not None and decision.frozen_new is not None
    own = holdout_metrics(worse.predict(frozen[0]), frozen[1], worse_t.threshold)
    assert (decision.frozen_new.n_accepted, decision.frozen_new.n_errors) == (own.n_accepted, own.n_errors)
    assert decision.frozen_new.auto_pass < decision.frozen_old.auto_pass - 0.03
    assert not decision.promote
    assert decision.reasons[0].startswith("fails: auto-pass on the 3000 frozen calibration pairs ")
    # the voter in force at the candidate's looser threshold passes more than either: the misreading promotes
    assert holdout_metrics(good.predict(frozen[0]), frozen[1], worse_t.threshold).auto_pass > (
        decision.frozen_old.auto_pass
    )
