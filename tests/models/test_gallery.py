"""Gallery: per-type aggregation, add/remove in place, atomic save/load tied by a manifest, embedder version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.gallery import MANIFEST, Gallery, GalleryEntry, GalleryMismatchError
from models.types import Match, Side


def unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def small_gallery() -> Gallery:
    g = Gallery(3, "emb-v1")
    g.add(
        unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.3], [0, 0, 1]]),
        [
            GalleryEntry("a", Side.OBVERSE, "fam/obv", "a1.png", "h1"),
            GalleryEntry("a", Side.REVERSE, "a/rev", "a2.png", "h2"),
            GalleryEntry("b", Side.OBVERSE, "fam/obv", "b1.png", "h3"),
            GalleryEntry("b", Side.REVERSE, "b/rev", "b2.png", "h4"),
            GalleryEntry("c", Side.OBVERSE, "", "c1.png", "h5"),
        ],
    )
    return g


def test_search_aggregates_best_reference_per_type() -> None:
    g = small_gallery()
    (res,) = g.search(unit([[0.95, 0.05, 0]]), k=5)
    assert [m.type_id for m in res] == ["a", "b", "c"]
    assert res[0].side == Side.OBVERSE and res[0].score == pytest.approx(float(unit([[0.95, 0.05, 0]])[0, 0]), abs=1e-3)
    assert all(isinstance(m, Match) for m in res)
    assert [m.score for m in res] == sorted((m.score for m in res), reverse=True)
    (top1,) = g.search(unit([[0, 0.2, 1]]), k=1)
    assert [(m.type_id, m.side) for m in top1] == [("c", Side.OBVERSE)]
    assert g.search(np.zeros((0, 3), np.float32)) == []
    with pytest.raises(ValueError, match="must be"):
        g.add(np.ones((1, 4), np.float32), [GalleryEntry("x", Side.OBVERSE)])


def test_add_and_remove_ids_and_types_in_place() -> None:
    g = small_gallery()
    assert len(g) == 5 and g.types() == {
        "a": {"obverse": 1, "reverse": 1},
        "b": {"obverse": 1, "reverse": 1},
        "c": {"obverse": 1},
    }
    assert g.remove_type("a") == 2
    assert g.remove_ids([4, 99]) == 1
    assert len(g) == 2 and set(g.types()) == {"b"}
    new = g.add(unit([[1, 1, 0]]), [GalleryEntry("d", Side.REVERSE)])
    assert new == [5]
    (res,) = g.search(unit([[1, 0, 0]]), k=5)
    assert {m.type_id for m in res} == {"b", "d"}
    vecs, ids = g.vectors()
    assert ids == [2, 3, 5] and vecs.shape == (3, 3)
    np.testing.assert_allclose(vecs[-1], unit([[1, 1, 0]])[0], atol=1e-6)


def test_save_load_round_trip_is_atomic(tmp_path: Path) -> None:
    g = small_gallery()
    folder = tmp_path / "gallery"
    g.save(folder)
    first = sorted(p.name for p in folder.iterdir())
    assert len(first) == 3 and MANIFEST in first
    g.remove_type("b")
    g.save(folder)
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 3 and not any(p.endswith(".tmp") for p in files)
    assert set(files) != set(first)
    loaded = Gallery.load(folder, embedder_version="emb-v1")
    assert len(loaded) == 3 and loaded.entries == g.entries and loaded.embedder_version == "emb-v1"
    q = unit([[0.2, 0.1, 1]])
    assert loaded.search(q) == g.search(q)
    assert loaded.add(unit([[0, 1, 0]]), [GalleryEntry("e", Side.OBVERSE)]) == [5]


def test_load_refuses_mismatched_or_damaged_files(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    small_gallery().save(folder)
    with pytest.raises(GalleryMismatchError, match="emb-v1"):
        Gallery.load(folder, embedder_version="emb-v2")
    with pytest.warns(UserWarning, match="re-enrol"):
        Gallery.load(folder, embedder_version="emb-v2", allow_mismatch=True)
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / manifest["meta"]["file"]).write_text('{"id": 0}\n')
    with pytest.raises(ValueError, match="does not match"):
        Gallery.load(folder)
    with pytest.raises(FileNotFoundError, match="enrol"):
        Gallery.load(tmp_path / "empty")
    assert not Gallery.exists(tmp_path / "empty") and Gallery.exists(folder)


def test_search_looks_deeper_when_one_type_fills_the_neighbourhood() -> None:
    rng = np.random.default_rng(0)
    g = Gallery(8, "v")
    near = unit((np.eye(8)[0] + 0.01 * rng.standard_normal((200, 8))).tolist())
    g.add(near, [GalleryEntry("crowd", Side.OBVERSE)] * 200)
    g.add(
        unit([[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0]]),
        [GalleryEntry("x", Side.REVERSE), GalleryEntry("y", Side.OBVERSE)],
    )
    (res,) = g.search(unit([[1, 0.1, 0, 0, 0, 0, 0, 0]]), k=3, depth=16)
    assert [m.type_id for m in res] == ["crowd", "x", "y"]


def test_template_signatures_travel_with_their_references(tmp_path: Path) -> None:
    g = small_gallery()
    assert not g.has_signatures
    with pytest.raises(KeyError, match="re-enrol"):
        g.signatures([0])
    sigs = np.random.default_rng(0).normal(size=(2, 8, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="signatures"):
        g.add(unit([[1, 1, 0]]), [GalleryEntry("d", Side.REVERSE)], sigs)
    ids = g.add(unit([[1, 1, 0], [1, 0, 1]]), [GalleryEntry("d", Side.REVERSE), GalleryEntry("d", Side.OBVERSE)], sigs)
    assert not g.has_signatures  # the first five references have none
    g.remove_ids(range(5))
    assert g.has_signatures
    np.testing.assert_allclose(g.signatures(ids), sigs, atol=1e-2)  # kept as float16
    g.save(tmp_path / "g")
    doc = json.loads((tmp_path / "g" / MANIFEST).read_text())
    assert doc["signatures"]["file"].startswith("sigs-")
    back = Gallery.load(tmp_path / "g")
    assert back.has_signatures
    np.testing.assert_array_equal(back.signatures(ids), g.signatures(ids))
    back.remove_type("d")
    assert not back.has_signatures and len(back) == 0
    back.save(tmp_path / "g")
    assert "signatures" not in json.loads((tmp_path / "g" / MANIFEST).read_text())
    assert not list((tmp_path / "g").glob("sigs-*.npz"))  # the stale file is removed


def test_a_damaged_signature_file_is_refused(tmp_path: Path) -> None:
    g = Gallery(3, "emb-v1")
    g.add(unit([[1, 0, 0]]), [GalleryEntry("a", Side.REVERSE)], np.ones((1, 8, 4), np.float32))
    g.save(tmp_path)
    doc = json.loads((tmp_path / MANIFEST).read_text())
    (tmp_path / doc["signatures"]["file"]).write_bytes(b"broken")
    with pytest.raises(ValueError, match="does not match"):
        Gallery.load(tmp_path)


def test_search_reranks_by_template_when_signatures_are_given() -> None:
    from models.gallery import RERANK_DEPTH, TEMPLATE_WEIGHT
    from models.template import SIG_SHAPE

    rng = np.random.default_rng(1)
    sig = rng.normal(size=(3, *SIG_SHAPE)).astype(np.float32)
    sig /= np.linalg.norm(sig.reshape(3, -1), axis=1)[:, None, None]
    g = Gallery(3, "emb-v1")
    # "near" is the embedding's favourite, but the query's template is "far"'s
    g.add(
        unit([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]]),
        [GalleryEntry("near", Side.REVERSE), GalleryEntry("far", Side.REVERSE), GalleryEntry("other", Side.REVERSE)],
        sig,
    )
    q = unit([[1, 0.05, 0]])
    plain = g.search(q, 3)[0]
    assert [m.type_id for m in plain][:2] == ["near", "far"] and all(m.template is None for m in plain)
    ranked = g.search(q, 3, signatures=sig[1:2])[0]
    assert ranked[0].type_id == "far" and ranked[0].template == pytest.approx(1.0, abs=1e-4)
    keys = [m.score + TEMPLATE_WEIGHT * (m.template or 0.0) for m in ranked]
    assert keys == sorted(keys, reverse=True) and RERANK_DEPTH >= 3
    with pytest.raises(ValueError, match="signatures"):
        g.search(q, 3, signatures=sig)
    # a gallery without signatures ignores them
    bare = small_gallery()
    assert bare.search(q, 2, signatures=sig[:1]) == bare.search(q, 2)
