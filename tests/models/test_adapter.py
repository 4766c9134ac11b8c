"""The embedder's fine-tuned output layer: metric learning that fixes a drift, exact on stored embeddings, carried
and checked by its bundle, applied by the pipeline to the crops it embeds and to the station's gallery alike."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.adapter import ADAPTER_FILE, AdapterError, EmbeddingAdapter, adapted_gallery, fit_adapter
from models.bundle import BundleError, load_bundle
from models.files import sha256_file
from models.gallery import Gallery, GalleryEntry
from models.pipeline import Pipeline
from models.retrain import LabelledCup, RetrainConfig, mapped_cups, retrain_bundle
from models.types import Side
from tests.models.embed_helpers import coin_image, tiny_embedder, write_tiny_checkpoint
from tests.models.verdict_world import PIPE_TYPES, enrolled_gallery, plain_coins, prototype_gallery, write_bundle

DIM = 16


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _drifted_world(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Six designs whose references sit on random directions; the station's coins of each design come out of the
    camera pushed along one shared direction (new light), far enough that many land nearer another design."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(6, DIM)))
    ref_design = np.repeat(np.arange(6), 3)
    refs = _unit(centres[ref_design] + 0.15 * rng.normal(size=(18, DIM)))
    light = _unit(rng.normal(size=DIM)) * 1.3

    def coins(n: int) -> tuple[np.ndarray, np.ndarray]:
        d = rng.integers(0, 6, n)
        return _unit(centres[d] + light + 0.35 * rng.normal(size=(n, DIM))), d

    train, train_d = coins(300)
    test, test_d = coins(300)
    return refs, ref_design, train, train_d, test, test_d


def _accuracy(coins: np.ndarray, designs: np.ndarray, refs: np.ndarray, ref_design: np.ndarray) -> float:
    return float((ref_design[np.argmax(coins @ refs.T, axis=1)] == designs).mean())


def test_the_fitted_layer_pulls_drifted_coins_back_to_their_designs() -> None:
    refs, ref_design, train, train_d, test, test_d = _drifted_world()
    before = _accuracy(test, test_d, refs, ref_design)
    fit = fit_adapter(train, train_d, refs, ref_design, steps=200, seed=0)
    layer = EmbeddingAdapter(fit.matrix, "base")
    after = _accuracy(layer.apply(test), test_d, layer.apply(refs), ref_design)
    assert before < 0.8 and after > before + 0.1, (before, after)  # coins it never saw
    assert fit.loss_after < fit.loss_before and fit.steps == 200
    # the pull towards the identity: a strong one leaves the layer where it started
    held = fit_adapter(train, train_d, refs, ref_design, steps=200, weight_decay=100.0, seed=0)
    assert np.abs(held.matrix - np.eye(DIM)).max() < 0.05
    with pytest.raises(ValueError, match="needs coins"):
        fit_adapter(train[:0], train_d[:0], refs, ref_design)
    with pytest.raises(ValueError, match="mismatched"):
        fit_adapter(train, train_d[:5], refs, ref_design)


def test_a_layer_maps_stored_embeddings_and_chains_as_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    first = EmbeddingAdapter(np.eye(DIM, dtype=np.float32) + 0.1 * rng.normal(size=(DIM, DIM)).astype(np.float32), "v")
    second = np.eye(DIM, dtype=np.float32) + 0.1 * rng.normal(size=(DIM, DIM)).astype(np.float32)
    e = _unit(rng.normal(size=(5, DIM)))
    chained = first.then(second)
    # following a layer by another one is one layer, whichever way the embeddings get there
    np.testing.assert_allclose(chained.apply(e), EmbeddingAdapter(second, "v").apply(first.apply(e)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(chained.apply(e), axis=1), 1.0, atol=1e-5)
    assert EmbeddingAdapter.identity(DIM, "v").apply(e) == pytest.approx(e, abs=1e-6)
    assert chained.version.startswith("v+head-") and chained.version != first.version
    assert chained.apply(e[:0]).shape == (0, DIM)
    path = chained.save(tmp_path / ADAPTER_FILE)
    again = EmbeddingAdapter.load(path, "v")
    assert again.version == chained.version
    with pytest.raises(AdapterError, match="fine-tunes embedder v"):
        EmbeddingAdapter.load(path, "other")
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(AdapterError, match="not an embedding adapter"):
        EmbeddingAdapter.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        EmbeddingAdapter.load(tmp_path / "none.npz")
    with pytest.raises(AdapterError, match="square"):
        EmbeddingAdapter(np.zeros((2, 3), np.float32), "v")
    with pytest.raises(AdapterError, match="non-finite"):
        EmbeddingAdapter(np.full((2, 2), np.nan, np.float32), "v")


def test_an_adapted_gallery_maps_every_reference_and_leaves_the_station_gallery_alone() -> None:
    rng = np.random.default_rng(2)
    g = Gallery(DIM, "v")
    vec = _unit(rng.normal(size=(4, DIM)))
    g.add(vec, [GalleryEntry(t, Side.REVERSE, f"{t}-rev") for t in "abcd"])
    layer = EmbeddingAdapter(np.eye(DIM, dtype=np.float32) + 0.2 * rng.normal(size=(DIM, DIM)).astype(np.float32), "v")
    out = adapted_gallery(g, layer)
    mapped, ids = out.vectors()
    np.testing.assert_allclose(mapped, layer.apply(g.vectors()[0]), atol=1e-6)
    assert out.embedder_version == layer.version and [out.entries[i].type_id for i in ids] == list("abcd")
    np.testing.assert_allclose(g.vectors()[0], vec, atol=1e-6)  # the station's gallery is not written
    with pytest.raises(AdapterError, match="built with other"):
        adapted_gallery(Gallery(DIM, "other"), layer)


def test_a_bundle_with_a_layer_embeds_crops_and_gallery_through_it(tmp_path: Path) -> None:
    path, embedder = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    home = tmp_path / "home"
    gallery = enrolled_gallery(embedder)
    gallery.save(home / "gallery")
    d = embedder.embed_dim
    rng = np.random.default_rng(3)
    layer = EmbeddingAdapter(
        np.eye(d, dtype=np.float32) + 0.3 * rng.normal(size=(d, d)).astype(np.float32), embedder.version
    )
    layer_path = layer.save(tmp_path / "b" / ADAPTER_FILE)
    old = load_bundle(path)
    with_layer = replace(
        old,
        adapter_file=ADAPTER_FILE,
        adapter_sha256=sha256_file(layer_path),
        adapter_version=layer.version,
        version="",
    )
    saved = with_layer.save(tmp_path / "b" / "with.json")
    bundle = load_bundle(saved)
    assert bundle.embedding_version == layer.version and old.embedding_version == embedder.version
    assert bundle.compute_version() != old.compute_version()
    pipe = Pipeline.load(home, saved, with_detector=False)
    assert pipe.embedder.version == layer.version and pipe.adapter is not None
    crops = [coin_image(i) for i in range(3)]
    np.testing.assert_allclose(pipe.embedder.embed(crops), layer.apply(tiny_embedder().embed(crops)), atol=1e-5)
    assert pipe.embedder.without_adapter().version == embedder.version
    # the view scores against the gallery as the layer maps it; the station's gallery stays as enrolled
    np.testing.assert_allclose(
        np.sort(pipe.view.refs, axis=0), np.sort(layer.apply(gallery.vectors()[0]), axis=0), atol=1e-5
    )
    assert pipe.gallery.embedder_version == embedder.version
    verdict = pipe.run_crops(crops[:2], PIPE_TYPES[0])
    assert verdict.model_version == bundle.version
    bare = pipe.with_adapter(None, None)
    assert bare.embedder.version == embedder.version and bare.adapter is None
    # a layer for another embedder, or a changed file, is refused
    with pytest.raises(ValueError, match="fine-tunes embedder"):
        embedder.with_adapter(replace(layer, base_version="other"))
    replace(layer, base_version="other").save(layer_path)
    with pytest.raises(BundleError, match="does not match the bundle"):
        load_bundle(saved)
    forged = replace(with_layer, adapter_sha256=sha256_file(layer_path), version="")
    with pytest.raises(BundleError, match="fine-tunes embedder other"):
        Pipeline.load(home, forged.save(tmp_path / "b" / "forged.json"), with_detector=False)


def _rotation(d: int, angle: float) -> np.ndarray:
    """A rotation by ``angle`` in each plane of consecutive coordinate pairs (new light moving every embedding)."""
    r = np.eye(d, dtype=np.float32)
    c, s = np.cos(angle), np.sin(angle)
    for i in range(0, d - 1, 2):
        r[i : i + 2, i : i + 2] = [[c, -s], [s, c]]
    return r


def test_the_retrain_fine_tunes_the_output_layer_and_certifies_it_on_the_station_cups(tmp_path: Path) -> None:
    path, embedder = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    current = load_bundle(path)
    d = embedder.embed_dim
    rng = np.random.default_rng(4)
    # four types in two families; each family shares its obverse, each type has its own reverse
    gallery, protos = prototype_gallery(d, embedder.version, rng)
    pipeline = Pipeline.from_parts(current, gallery, embedder=embedder)
    light = _rotation(d, 1.3)

    def cup(i: int) -> LabelledCup:
        t = PIPE_TYPES[i % 4]
        types = [t] * 4
        if i % 3 == 2:
            types[1] = PIPE_TYPES[(i + 2) % 4]  # a coin of the other family
        emb = _unit(np.stack([protos[f"{u}-rev"] for u in types]) + 0.15 * rng.normal(size=(4, d))) @ light.T
        return LabelledCup(i, t, plain_coins(emb), tuple(types), f"2026-01-01T00:00:{i % 60:02d}")

    cups = [cup(i) for i in range(240)]
    cfg = RetrainConfig(target=0.8, delta=0.2, rounds=20, references_per_design=0)
    cand = retrain_bundle(current, pipeline, cups, tmp_path / "cand", cfg)
    # the layer undoes most of the drift on coins it never saw, and only its candidate passes most clean cups
    match = re.search(r"(\d+) holdout coins .*: ([\d.]+)% -> ([\d.]+)%; candidate promotable", cand.fine_tune)
    assert cand.fine_tune.startswith("output layer fine-tuned on ") and match, cand.fine_tune
    assert float(match[3]) > float(match[2]) + 10
    decision = cand.comparison.decision
    assert decision.promote and decision.new.auto_pass > decision.old.auto_pass + 0.3, decision.reasons
    bundle = cand.bundle
    assert bundle.train["voter"] == "refit on the fine-tuned embedder" and bundle.adapter_file == ADAPTER_FILE
    layer = EmbeddingAdapter.load(tmp_path / "cand" / ADAPTER_FILE, embedder.version)
    assert bundle.adapter_version == layer.version == bundle.embedding_version
    # certified on the station's calibration cups alone: the bundle's own pairs were embedded without the layer
    assert bundle.train["frozen_cal_pairs"] == 0 and bundle.cal_scores.size == bundle.train["cal_pairs"]
    assert bundle.threshold.target == 0.8 and bundle.threshold.can_pass
    loaded = Pipeline.from_parts(load_bundle(tmp_path / "cand" / "verdict.json"), gallery, embedder=embedder)
    assert loaded.embedder.version == layer.version
    # the next night starts from this layer: its cups come embedded through it
    again = retrain_bundle(
        load_bundle(tmp_path / "cand" / "verdict.json"),
        loaded,
        mapped_cups(cups, layer.matrix),
        tmp_path / "again",
        replace(cfg, seed=1),
    )
    assert again.fine_tune.startswith("output layer fine-tuned on "), again.fine_tune
    assert again.fine_tune.endswith("candidate promotable"), again.fine_tune
    # a refit alone keeps the layer in force: it travels on with the new voter
    kept = retrain_bundle(
        load_bundle(tmp_path / "cand" / "verdict.json"),
        loaded,
        mapped_cups(cups, layer.matrix),
        tmp_path / "kept",
        replace(cfg, seed=1, fine_tune_embedder=False),
    )
    assert kept.bundle.train["voter"] == "refit" and kept.bundle.adapter_version == layer.version
    assert EmbeddingAdapter.load(tmp_path / "kept" / ADAPTER_FILE, embedder.version).version == layer.version
