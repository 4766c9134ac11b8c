"""Gallery lookalikes: the measured share of references mistaken for another type, and declared pairs."""

from __future__ import annotations

import numpy as np

from models.features import feature_vector, pair_evidence
from models.gallery import Gallery, GalleryEntry
from models.gallery_view import GalleryView
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
    # a declared lookalike not enrolled yet counts too: the gallery holds no photo of it to tell its coins by
    alone = GalleryView.from_gallery(gallery, None, {ids[2]: ("not-enrolled",), ids[3]: ("also-not", "not-enrolled")})
    assert alone.declared(alone.type_index[ids[2]]) == "not-enrolled"
    assert alone.declared(alone.type_index[ids[3]]) == "also-not" and alone.declared(alone.type_index[ids[4]]) is None
    assert alone.types == sorted(ids)  # the twins named are not enrolled by being named
    ev = pair_evidence(alone, cup, alone.type_index[ids[2]], None)
    assert not passable(feature_vector(ev.features, RULE_FEATURES), RULE_FEATURES)[0]


def test_template_features_tell_types_apart_where_the_embedding_cannot() -> None:
    import cv2

    from models.features import TEMPLATE_FEATURES, CupCoins
    from models.synth.mint import generate_mint
    from models.template import signatures
    from models.train.galleries import reference_crops

    mint = generate_mint(6, 4)
    types = mint.types[:3]  # three distinct reverse designs
    flat = np.zeros((1, 8), np.float32)
    flat[0, 0] = 1.0  # every image embeds to the same vector: the embedding says nothing
    gallery = Gallery(8, "toy")
    for coin in types:
        faces = [reference_crops(coin, Side.REVERSE, 1, seed=s)[0] for s in (0, 1)]
        entries = [GalleryEntry(coin.id, Side.REVERSE, f"{coin.id}-rev") for _ in faces]
        gallery.add(np.repeat(flat, 2, axis=0), entries, signatures(faces))
    face = reference_crops(types[0], Side.REVERSE, 1, seed=2)[0]
    turned = []
    for deg in (30.0, 100.0, 200.0, 290.0):
        m = cv2.getRotationMatrix2D((64.0, 64.0), deg, 1.0)
        turned.append(np.asarray(cv2.warpAffine(face, m, (128, 128)), np.uint8))
    n = len(turned)
    base = dict(
        embeddings=np.repeat(flat, n, axis=0),
        confidence=np.ones(n, np.float32),
        partial=np.zeros(n, bool),
        visible=np.ones(n, np.float32),
        diameter_mm=np.full(n, np.nan, np.float32),
        focus=np.full(n, 5.0, np.float32),
    )
    cup = CupCoins(**base, signatures=signatures(turned))  # type: ignore[arg-type]
    view = GalleryView.from_gallery(gallery)
    assert view.has_templates
    right = pair_evidence(view, cup, view.type_index[types[0].id], None).features
    wrong = pair_evidence(view, cup, view.type_index[types[1].id], None).features
    assert right["n_tproof"] == n and right["ttop_share"] == 1.0 and right["tmargin_min"] > 0
    assert wrong["n_tproof"] == 0 and wrong["ttop_share"] == 0.0 and wrong["tmargin_mean"] < 0
    assert right["tsim_min"] > wrong["tsim_mean"]
    # cosine + template: the embedding ties, so the template decides
    assert right["cmargin_min"] > 0 > wrong["cmargin_mean"] and right["n_cproof"] == n and wrong["ctop_share"] == 0
    # the embedding features cannot tell the two candidates apart
    assert right["sim_min"] == wrong["sim_min"] and right["margin_min"] == wrong["margin_min"]
    # without signatures in the cup (or the gallery) the template features are missing, not zero
    blind = pair_evidence(view, CupCoins(**base), 0, None).features  # type: ignore[arg-type]
    assert all(np.isnan(blind[k]) for k in TEMPLATE_FEATURES)


def test_a_shared_obverse_neither_proves_the_candidate_nor_hides_a_family_member() -> None:
    """A family member's reverse whose template fits the family obverse best is still the candidate's rival."""
    from models.features import CupCoins
    from models.synth.mint import generate_mint
    from models.template import correlate, signatures, spectra
    from models.train.galleries import reference_crops

    mint = generate_mint(40, 5)
    families = [m for m in mint.families().values() if len(m) >= 2]
    by_id = {t.id: t for t in mint.types}
    flat = np.zeros((1, 8), np.float32)
    flat[0, 0] = 1.0  # the embedding ties everywhere: the template decides
    found = None
    for members in families:
        for a_id in members:
            a = by_id[a_id]
            obv = reference_crops(a, Side.OBVERSE, 1, seed=0)[0]
            rev = reference_crops(a, Side.REVERSE, 1, seed=0)[0]
            for b_id in members:
                if b_id == a_id:
                    continue
                coin = reference_crops(by_id[b_id], Side.REVERSE, 1, seed=7)[0]
                cc = correlate(spectra(signatures([coin])), spectra(signatures([obv, rev])))[0]
                if cc[0] > cc[1]:  # B's reverse fits A's obverse better than A's reverse
                    found = (a, by_id[b_id], coin)
                    break
            if found:
                break
        if found:
            break
    assert found is not None, "no family member's reverse fits another's obverse best in this mint"
    a, b, coin = found
    gallery = Gallery(8, "toy")
    for t in (a, b):
        for side in (Side.OBVERSE, Side.REVERSE):
            faces = reference_crops(t, side, 2, seed=0)
            entries = [GalleryEntry(t.id, side, t.design(side).id) for _ in faces]
            gallery.add(np.repeat(flat, len(faces), axis=0), entries, signatures(faces))
    view = GalleryView.from_gallery(gallery)
    cup = CupCoins(
        embeddings=flat.copy(),
        confidence=np.ones(1, np.float32),
        partial=np.zeros(1, bool),
        visible=np.ones(1, np.float32),
        diameter_mm=np.full(1, np.nan, np.float32),
        focus=np.full(1, 5.0, np.float32),
        signatures=signatures([coin]),
    )
    wrong = pair_evidence(view, cup, view.type_index[a.id], None).features
    right = pair_evidence(view, cup, view.type_index[b.id], None).features
    # against the wrong candidate the coin's rival (its own type) is measured, not skipped for a favourable default
    assert np.isfinite(wrong["tmargin_min"]) and wrong["tmargin_min"] < 0 < right["tmargin_min"]
    assert wrong["cmargin_min"] < 0 < right["cmargin_min"]
    assert wrong["n_tproof"] == 0 and wrong["n_tinformative"] == 0 and wrong["ctop_share"] == 0
    assert right["n_tproof"] == 1 and right["ctop_share"] == 1


def _own_design_gallery(world, per_side: int = 8) -> Gallery:
    """Every side of every type enrolled as a design of its own (nothing declared shared)."""
    gallery = Gallery(DIM, "toy")
    for t in range(6):
        for side in (Side.OBVERSE, Side.REVERSE):
            emb = np.stack([world.sample(t, side) for _ in range(per_side)])
            gallery.add(emb, [GalleryEntry(world.type_id(t), side, f"{world.type_id(t)}/{side.value}")] * per_side)
    return gallery


def test_every_pair_of_designs_the_gallery_mistakes_is_named_with_its_sides() -> None:
    """A family's obverse enrolled as four types' own designs is six pairs, not each type's worst rival alone, and
    one warning."""
    from models.enroll import TypeInfo, undeclared_lookalike_warnings

    world = make_world(6, seed=3)
    world.obverse[1] = world.obverse[0]  # types 0-3 show one obverse; 4 and 5 another
    gallery = _own_design_gallery(world)
    pairs = GalleryView.from_gallery(gallery).design_lookalikes()
    ids = [world.type_id(t) for t in range(6)]
    named = {frozenset((t, u)) for t, _, u, _ in pairs}
    family = {frozenset((ids[a], ids[b])) for a in range(4) for b in range(a + 1, 4)}
    assert named == family | {frozenset((ids[4], ids[5]))}
    assert all(st == su == Side.OBVERSE for _, st, _, su in pairs)
    assert len(GalleryView.from_gallery(gallery).measured_lookalikes()) < len(pairs)  # one rival a type names fewer
    infos = [TypeInfo(t, t, None, lookalikes=(ids[5],) if t == ids[4] else ()) for t in ids]
    warnings = undeclared_lookalike_warnings(gallery, infos)
    assert len(warnings) == 1  # the declared lookalikes 4 and 5 are not warned about
    assert warnings[0].startswith(f"the obverses of {ids[0]}, {ids[1]}, {ids[2]} and {ids[3]} look like one design")
    assert 'name it in their coin.toml files (obverse_design = "...")' in warnings[0]
    # declared one design, the obverse is shared and proves nothing: no pair is left to warn about
    world.enrol(declared := Gallery(DIM, "toy"), range(6), per_side=8)
    assert GalleryView.from_gallery(declared).design_lookalikes() == []


def test_a_type_enrolled_later_on_a_declared_family_design_as_its_own_is_named() -> None:
    """The family's obverse declared shared, then one more member enrolled from tray photos without coin.toml: its
    obverse is a design of its own to the gallery, so a cup of any member lying obverse up could pass as it."""
    from models.enroll import TypeInfo, undeclared_lookalike_warnings

    world = make_world(6, seed=3)
    world.enrol(gallery := Gallery(DIM, "toy"), range(6), per_side=8)  # types 0 and 1 declare one obverse
    late = np.stack([world.sample(0, Side.OBVERSE) for _ in range(8)])
    gallery.add(late, [GalleryEntry("late", Side.OBVERSE, "late/obverse")] * 8)
    pairs = GalleryView.from_gallery(gallery).design_lookalikes()
    assert pairs and all("late" in (t, u) and st == su == Side.OBVERSE for t, st, u, su in pairs)
    ids = [world.type_id(t) for t in range(6)]
    warnings = undeclared_lookalike_warnings(gallery, [TypeInfo(t, t, None) for t in [*ids, "late"]])
    assert len(warnings) == 1 and "late" in warnings[0]


def test_a_type_whose_own_photos_differ_is_not_named_beside_every_design() -> None:
    """Two unlike photos enrolled as one type match each other poorly; other designs matching them as poorly are
    not one design with them."""
    world = make_world(6, seed=4)
    gallery = _own_design_gallery(world)
    rng = np.random.default_rng(1)
    odd = rng.normal(size=(2, DIM)).astype(np.float32)
    gallery.add(
        odd / np.linalg.norm(odd, axis=1, keepdims=True), [GalleryEntry("odd", Side.OBVERSE, "odd/obverse")] * 2
    )
    pairs = GalleryView.from_gallery(gallery).design_lookalikes()
    assert pairs and not [p for p in pairs if "odd" in (p[0], p[2])]
    assert {frozenset((t, u)) for t, _, u, _ in pairs} == {
        frozenset((world.type_id(2 * f), world.type_id(2 * f + 1))) for f in range(3)
    }  # the families' shared obverses, enrolled undeclared
