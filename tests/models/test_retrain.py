"""The nightly retrain's candidate bundle: what it stores lets its threshold be found again."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.bundle import load_bundle
from models.pipeline import Pipeline
from models.retrain import LabelledCup, RetrainConfig, retrain_bundle
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import plain_coins, prototype_gallery, write_bundle

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
