"""Gallery lookalikes: the measured share of references mistaken for another type, and declared pairs."""

from __future__ import annotations

import numpy as np

from models.features import GalleryView, feature_vector, pair_evidence
from models.gallery import Gallery, GalleryEntry
from models.types import Side
from models.voter import RULE_FEATURES, passable
from tests.models.verdict_world import DIM, make_world


def twin_gallery(per_side: int = 8) -> tuple[Gallery, list[str]]:
    """Six toy types; types 0 and 1 get the same reverse prototype (a near-twin pair the embedder cannot split)."""
    world = make_world(6, seed=3)
    world.reverse[1] = world.reverse[0]
    gallery = Gallery(DIM, "toy")
    world.enrol(gallery, range(6), per_side=per_side)
    return gallery, [world.type_id(t) for t in range(6)]


def test_measured_lookalike_rate_finds_the_twin_pair() -> None:
    gallery, ids = twin_gallery()
    view = GalleryView.from_gallery(gallery)
    a, b = view.type_index[ids[0]], view.type_index[ids[1]]
    assert view.lookalike_rate[a] >= 0.25 and view.lookalike_rate[b] >= 0.25
    assert view.types[int(view.lookalike_of[a])] == ids[1]
    others = [view.type_index[t] for t in ids[2:]]
    assert np.all(view.lookalike_rate[others] < 0.2)
    pairs = view.measured_lookalikes()
    assert [set(p[:2]) for p in pairs] == [{ids[0], ids[1]}]


def test_a_type_with_one_reference_a_side_has_no_measured_rate() -> None:
    gallery = Gallery(DIM, "toy")
    rng = np.random.default_rng(0)
    for t in ("x", "y"):
        v = rng.normal(size=(1, DIM)).astype(np.float32)
        gallery.add(v / np.linalg.norm(v), [GalleryEntry(t, Side.REVERSE, f"{t}-rev")])
    view = GalleryView.from_gallery(gallery)
    assert np.isnan(view.lookalike_rate).all() and (view.lookalike_of == -1).all()
    assert view.measured_lookalikes() == []


def test_declared_lookalike_is_a_hard_rule() -> None:
    gallery, ids = twin_gallery()
    world = make_world(6, seed=3)  # same prototypes: a pure cup of type 2, all reverses
    cup = world.cup(2, 6, reverse_share=1.0)
    plain = GalleryView.from_gallery(gallery)
    declared = GalleryView.from_gallery(gallery, None, {ids[2]: (ids[3], "not-enrolled"), ids[3]: (ids[2],)})
    assert declared.declared(declared.type_index[ids[2]]) == ids[3] and plain.declared(2) is None
    assert declared.declared(declared.type_index[ids[4]]) is None
    rows = []
    for view in (plain, declared):
        ev = pair_evidence(view, cup, view.type_index[ids[2]], None)
        rows.append(feature_vector(ev.features, RULE_FEATURES))
    assert passable(np.stack(rows), RULE_FEATURES).tolist() == [True, False]
    # a declared lookalike that is not enrolled does not count
    alone = GalleryView.from_gallery(gallery, None, {ids[2]: ("not-enrolled",)})
    assert alone.declared(alone.type_index[ids[2]]) is None
