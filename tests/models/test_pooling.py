"""Set pooling: mean/GeM shapes and norms, and the gated-attention MIL pooler's attention."""

from __future__ import annotations

import numpy as np
import pytest

from models.features import COIN_FEATURES, pair_evidence
from models.gallery_view import GalleryView
from models.pooling import SetPooler, attention_pool, gem_pool, mean_pool, train_pooler
from tests.models.verdict_world import trained


@pytest.mark.parametrize("n", [1, 2, 7])
def test_mean_and_gem_pool_give_unit_vectors(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for z in (mean_pool(x), gem_pool(x), attention_pool(x, np.full(n, 1 / n, np.float32))):
        assert z.shape == (16,)
        assert np.linalg.norm(z) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(gem_pool(x, p=1.0), mean_pool(x), atol=1e-5)
    np.testing.assert_allclose(attention_pool(x, np.full(n, 1 / n, np.float32)), mean_pool(x), atol=1e-5)


def test_empty_set_pools_to_zeros() -> None:
    empty = np.zeros((0, 8), np.float32)
    assert not mean_pool(empty).any() and not gem_pool(empty).any()


def test_attention_sums_to_one_and_finds_the_intruder(tmp_path) -> None:
    world, gallery, pooler, _ = trained()
    view = GalleryView.from_gallery(gallery)
    cand = view.type_index[world.type_id(6)]
    mixed = world.cup(6, 9, intruders=[13])  # coin 0 is of another type
    ev = pair_evidence(view, mixed, cand, pooler)
    assert ev.attention.shape == (9,)
    assert ev.attention.sum() == pytest.approx(1.0, abs=1e-5)
    assert int(np.argmax(ev.attention)) == 0
    pure = pair_evidence(view, world.cup(6, 9), cand, pooler)
    assert pure.features["mil_score"] > ev.features["mil_score"]
    again = SetPooler.load(pooler.save(tmp_path / "pooler.pt"))
    np.testing.assert_allclose(again(ev.scores.features).attention, ev.attention, atol=1e-6)
    assert again.version == pooler.version


def test_pooler_batches_bags_of_different_sizes() -> None:
    rng = np.random.default_rng(0)
    bags = [rng.normal(size=(n, len(COIN_FEATURES))).astype(np.float32) for n in (1, 4, 9)]
    pooler = train_pooler(bags, [True, False, True], COIN_FEATURES, epochs=2)
    outs = pooler.batch([*bags, np.zeros((0, len(COIN_FEATURES)), np.float32)])
    assert [o.attention.shape[0] for o in outs] == [1, 4, 9, 0]
    for o in outs[:3]:
        assert o.attention.sum() == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= o.score <= 1.0
