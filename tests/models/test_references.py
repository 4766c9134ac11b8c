"""Station references: stored beside a bundle, joined to the station's gallery without changing it, taken only from
the training split's ruled coins on a design of their own type."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.bundle import BundleError, load_bundle
from models.features import FEATURES, CupCoins
from models.files import sha256_file
from models.gallery import Gallery, GalleryEntry
from models.gallery_view import GalleryView
from models.pipeline import Pipeline, station_view
from models.references import REFERENCES_FILE, ReferencesError, StationReferences, with_references
from models.retrain import LabelledCup, labelled_pairs, select_references, split_of
from models.template import SIG_SHAPE
from models.types import Side
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import enrolled_gallery, write_bundle

DIM = 8
V = "emb-v1"


def _unit(*axes: tuple[int, float]) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    for i, w in axes:
        v[i] = w
    return v / np.linalg.norm(v)


def _gallery(signed: bool = False) -> Gallery:
    """Types a and b share the obverse ``obv`` (axis 0); their reverses lie on axes 1 and 2."""
    g = Gallery(DIM, V)
    rows = [
        (_unit((0, 1.0)), GalleryEntry("a", Side.OBVERSE, "obv")),
        (_unit((0, 1.0), (7, 0.1)), GalleryEntry("b", Side.OBVERSE, "obv")),
        (_unit((1, 1.0)), GalleryEntry("a", Side.REVERSE, "a-rev")),
        (_unit((1, 1.0), (6, 0.2)), GalleryEntry("a", Side.REVERSE, "a-rev")),
        (_unit((2, 1.0)), GalleryEntry("b", Side.REVERSE, "b-rev")),
        (_unit((2, 1.0), (6, 0.2)), GalleryEntry("b", Side.REVERSE, "b-rev")),
    ]
    sigs = np.ones((len(rows), *SIG_SHAPE), np.float32) if signed else None
    g.add(np.stack([r[0] for r in rows]), [r[1] for r in rows], sigs)
    return g


def _refs(types: list[str], version: str = V, signed: bool = False) -> StationReferences:
    emb = np.stack([_unit((1 + (t == "b"), 1.0), (5, 0.3)) for t in types])
    entries = tuple(GalleryEntry(t, Side.REVERSE, f"{t}-rev", source=f"cup:{i}/coin:0") for i, t in enumerate(types))
    sigs = np.ones((len(types), *SIG_SHAPE), np.float32) if signed else None
    return StationReferences(emb, entries, sigs, version)


def test_references_round_trip_and_refuse_another_embedder(tmp_path: Path) -> None:
    refs = _refs(["a", "b", "a"], signed=True)
    path = refs.save(tmp_path / REFERENCES_FILE)
    back = StationReferences.load(path, V)
    assert back.entries == refs.entries and back.per_type() == {"a": 2, "b": 1}
    np.testing.assert_allclose(back.embeddings, refs.embeddings)
    assert back.signatures is not None and back.signatures.shape == (3, *SIG_SHAPE)
    with pytest.raises(ReferencesError, match="made by embedder emb-v1, but the embedder in use is emb-v2"):
        StationReferences.load(path, "emb-v2")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ReferencesError, match="not a station references file"):
        StationReferences.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        StationReferences.load(tmp_path / "missing.npz")
    with pytest.raises(ReferencesError, match="2 entries but embeddings"):
        StationReferences(np.zeros((3, DIM), np.float32), refs.entries[:2], None, V)


def test_joining_adds_enrolled_types_only_and_leaves_the_gallery_alone() -> None:
    base = _gallery()
    merged = with_references(base, _refs(["a", "gone", "b"]))
    assert len(base) == 6 and len(merged) == 8  # the type no longer enrolled is not enrolled again
    assert merged.types() == {"a": {"obverse": 1, "reverse": 3}, "b": {"obverse": 1, "reverse": 3}}
    with pytest.raises(ReferencesError, match="cannot join a gallery built with emb-v1"):
        with_references(base, _refs(["a"], version="emb-v0"))
    # a gallery that compares templates takes no unsigned reference: it could no longer score templates at all
    signed = _gallery(signed=True)
    assert len(with_references(signed, _refs(["a"]))) == 6 and with_references(signed, _refs(["a"])).has_signatures
    both = with_references(signed, _refs(["a"], signed=True))
    assert len(both) == 7 and both.has_signatures


def test_the_station_view_scores_coins_on_every_reference_but_describes_types_by_their_enrolment() -> None:
    base = _gallery()
    plain = station_view(base, None, None)
    view = station_view(base, _refs(["a", "a", "b"]), None)
    assert view.refs.shape[0] == plain.refs.shape[0] + 3
    np.testing.assert_array_equal(view.confusion, plain.confusion)
    np.testing.assert_array_equal(view.lookalike_rate, plain.lookalike_rate)
    coin = _unit((1, 1.0), (5, 0.3))[None]
    assert view.type_scores(coin)[0][0, 0] > plain.type_scores(coin)[0][0, 0]  # the coin meets its new reference
    with pytest.raises(ValueError, match="different types"):
        GalleryView.from_gallery(with_references(Gallery(DIM, V), None), statistics=view)


def _cup_ids(split: str, n: int) -> list[int]:
    return [i for i in range(1, 500) if split_of(i) == split][:n]


def _cup(cup_id: int, coins: list[np.ndarray], types: list[str], when: str) -> LabelledCup:
    n = len(coins)
    cc = CupCoins(
        embeddings=np.stack(coins).astype(np.float32),
        confidence=np.ones(n, np.float32),
        partial=np.zeros(n, bool),
        visible=np.ones(n, np.float32),
        diameter_mm=np.full(n, np.nan, np.float32),
        focus=np.full(n, 10.0, np.float32),
    )
    return LabelledCup(cup_id, types[0], cc, tuple(types), when)


def test_references_come_from_the_training_split_on_a_design_of_the_coins_type() -> None:
    view = GalleryView.from_gallery(_gallery())
    train, hold, cal = _cup_ids("train", 4), _cup_ids("holdout", 1), _cup_ids("cal", 1)
    rev_a, obv, rev_b = _unit((1, 1.0), (4, 0.5)), _unit((0, 1.0), (4, 0.5)), _unit((2, 1.0), (4, 0.5))
    cups = [
        # a reverse of a, a coin on the shared obverse, and a coin ruled a that the gallery puts on b's own design
        _cup(train[0], [rev_a, obv, rev_b], ["a", "a", "a"], "2026-01-01T00:00:01"),
        _cup(train[1], [rev_a], ["a"], "2026-01-01T00:00:03"),
        _cup(train[2], [rev_a], ["a"], "2026-01-01T00:00:02"),
        _cup(train[3], [rev_b, rev_a], ["b", "zz"], "2026-01-01T00:00:04"),  # zz: not enrolled
        _cup(hold[0], [rev_a], ["a"], "2026-01-01T00:00:05"),
        _cup(cal[0], [rev_b], ["b"], "2026-01-01T00:00:06"),
    ]
    refs = select_references(cups, view, V, per_design=2)
    got = sorted((e.type_id, e.side, e.design, e.source) for e in refs.entries)
    assert got == [
        ("a", Side.OBVERSE, "obv", f"cup:{train[0]}/coin:1"),
        ("a", Side.REVERSE, "a-rev", f"cup:{train[1]}/coin:0"),  # the two newest of three on a-rev
        ("a", Side.REVERSE, "a-rev", f"cup:{train[2]}/coin:0"),
        ("b", Side.REVERSE, "b-rev", f"cup:{train[3]}/coin:0"),
    ]
    assert refs.signatures is None and refs.embedder_version == V
    # a ruling cleanlab suspects gives none
    suspect = select_references(cups, view, V, per_design=2, exclude=frozenset({train[3]}))
    assert "b" not in suspect.per_type()
    assert len(select_references(cups[4:], view, V, per_design=2)) == 0
    # a first check follows its re-check's split: a training cup id in the holdout's split gives none
    followed = replace(cups[1], split_cup_id=hold[0])
    assert followed.split_id == hold[0] and len(select_references([followed], view, V, per_design=2)) == 0
    pairs = labelled_pairs([followed, cups[2]], view, None, FEATURES)
    assert set(pairs.split_id.tolist()) == {hold[0], train[2]} and set(pairs.cup_id.tolist()) == {train[1], train[2]}
    # a coin ruled to show the other side than it matched is no reference of the side it matched
    wrong = replace(cups[1], coin_sides=(Side.OBVERSE,))
    assert len(select_references([wrong], view, V, per_design=2)) == 0
    assert len(select_references([replace(cups[1], coin_sides=(Side.REVERSE,))], view, V, per_design=2)) == 1


def test_a_bundle_carries_its_references_and_the_pipeline_joins_them(tmp_path: Path) -> None:
    path, embedder = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    old = load_bundle(path)
    assert "references" not in json.loads(path.read_text())  # a bundle without them keeps its document
    gallery = enrolled_gallery(embedder)
    home = tmp_path / "home"
    gallery.save(home / "gallery")
    vec, ids = gallery.vectors()
    entries = gallery.entries
    picked = tuple(replace(entries[i], source="cup:1") for i in ids[:3])
    refs_path = StationReferences(vec[:3], picked, None, embedder.version).save(tmp_path / "b" / REFERENCES_FILE)

    withrefs = replace(old, references_file=REFERENCES_FILE, references_sha256=sha256_file(refs_path), version="")
    saved = withrefs.save(tmp_path / "b" / "with.json")
    again = load_bundle(saved)
    assert again.references_file == REFERENCES_FILE and again.compute_version() != old.compute_version()
    pipe = Pipeline.load(home, saved, with_detector=False)
    assert pipe.references is not None and len(pipe.references) == 3
    assert pipe.view.refs.shape[0] == len(gallery) + 3 and len(pipe.gallery) == len(gallery)
    assert Pipeline.load(home, path, with_detector=False).view.refs.shape[0] == len(gallery)
    assert pipe.with_references(None).view.refs.shape[0] == len(gallery)
    refs_path.write_bytes(refs_path.read_bytes() + b"x")
    with pytest.raises(BundleError, match="does not match the bundle"):
        load_bundle(saved)
