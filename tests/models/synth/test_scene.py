"""Synthetic cup scenes: determinism, ground-truth consistency, cup kinds, objects, textures, real crops."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.synth.mint import generate_mint
from models.synth.objects import ForeignObject, render_object
from models.synth.real_coins import list_real_types
from models.synth.scene import CupScene, SceneAssets, SceneOptions, render_cup
from models.synth.textures import SURFACES, cut_patches, procedural_surface
from models.types import CupKind, Side

SIZE = 256


@pytest.fixture(scope="module")
def assets() -> SceneAssets:
    return SceneAssets(generate_mint(12, 3))


def _only(kind: CupKind) -> SceneOptions:
    return SceneOptions(image_size=SIZE, kind_weights={kind: 1.0}, max_coins=12)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_same_seed_and_index_give_the_same_bytes(assets: SceneAssets) -> None:
    opts = SceneOptions(image_size=SIZE)
    a = render_cup(assets, 5, 3, opts)
    # A fresh asset set (empty caches) must not change the output.
    b = render_cup(SceneAssets(generate_mint(12, 3)), 5, 3, opts)
    c = render_cup(assets, 5, 4, opts)
    assert a.jpeg == b.jpeg
    assert np.array_equal(a.labels, b.labels)
    assert a.jpeg != c.jpeg
    assert a.image.shape == (SIZE, SIZE, 3)
    decoded = cv2.imdecode(np.frombuffer(a.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and np.array_equal(decoded, a.image)


def _check_ground_truth(scene: CupScene) -> None:
    labels_seen = set(np.unique(scene.labels).tolist()) - {-1}
    assert labels_seen == {inst.label for inst in scene.instances}
    for inst in scene.instances:
        mask = scene.mask(inst)
        ys, xs = np.nonzero(mask)
        assert inst.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        poly = np.zeros_like(mask, np.uint8)
        cv2.fillPoly(poly, [inst.polygon.reshape(-1, 1, 2)], 1)
        n, comp = cv2.connectedComponents(mask.astype(np.uint8))
        largest = comp == (1 + int(np.argmax([(comp == i).sum() for i in range(1, n)])))
        assert _iou(poly > 0, largest) > 0.9
        if n == 2:  # one visible part: the polygon is the whole mask
            assert _iou(poly > 0, mask) > 0.9
        assert 0.0 <= inst.occlusion <= 1.0
        # The visible area never exceeds the footprint of the true circle.
        assert mask.sum() <= np.pi / 4 * inst.diameter_px**2 * 1.05 + 4 * inst.diameter_px
        cx, _cy = inst.center
        assert inst.bbox[0] - 1 <= cx + inst.diameter_px / 2 and inst.bbox[2] + 1 >= cx - inst.diameter_px / 2
        if inst.partial:
            continue
        # An unoccluded, uncut coin's visible mask is about its full footprint.
        if inst.occlusion < 0.01:
            assert mask.sum() > 0.9 * np.pi / 4 * inst.diameter_px**2 * 0.9


def test_masks_boxes_and_polygons_agree(assets: SceneAssets) -> None:
    for i in range(6):
        scene = render_cup(assets, 11, i, SceneOptions(image_size=SIZE, kind_weights={CupKind.PURE: 1.0}))
        _check_ground_truth(scene)
        assert scene.px_per_mm > 0
        for inst in scene.instances:
            assert inst.diameter_px == pytest.approx(inst.diameter_mm * scene.px_per_mm, rel=0.03)


def test_pure_cups_hold_one_type(assets: SceneAssets) -> None:
    for i in range(4):
        scene = render_cup(assets, 1, i, _only(CupKind.PURE))
        assert scene.kind == CupKind.PURE
        assert scene.instances
        assert {inst.type_id for inst in scene.instances} == {scene.expected_type}
        assert scene.contaminant is None


@pytest.mark.parametrize(("share", "side"), [(1.0, Side.REVERSE), (0.0, Side.OBVERSE)])
def test_reverse_share_sets_which_side_is_up(assets: SceneAssets, share: float, side: Side) -> None:
    opts = SceneOptions(image_size=SIZE, kind_weights={CupKind.PURE: 1.0}, max_coins=12, reverse_share=share)
    sides = {inst.side for i in range(4) for inst in render_cup(assets, 5, i, opts).instances}
    assert sides == {side.value}


def test_contaminated_cups_hold_one_or_two_other_coins(assets: SceneAssets) -> None:
    relations = set()
    for i in range(8):
        scene = render_cup(assets, 2, i, _only(CupKind.CONTAMINATED))
        others = [inst for inst in scene.instances if inst.type_id != scene.expected_type]
        assert 1 <= len(others) <= 2
        assert scene.contaminant in ("twin", "family", "other")
        relations.add(scene.contaminant)
        expected = assets.mint.by_id(scene.expected_type)
        for o in others:
            other = assets.mint.by_id(o.type_id)
            if scene.contaminant == "family":
                assert other.family == expected.family
            if scene.contaminant == "twin":
                assert expected.id == other.twin_of or other.id == expected.twin_of
        _check_ground_truth(scene)
    assert len(relations) >= 2


def test_an_intruder_drawn_from_the_family_that_is_the_near_twin_is_labelled_twin() -> None:
    """The family pool holds the expected type's near-twin too (what a seed draws stays as it was); a cup whose
    intruders are that twin alone is labelled twin, as the virtual cups and the pair labels count it. Cup 46 of seed 5
    (12 types) draws the twin from the family pool."""
    mint = generate_mint(12, 5)
    assets = SceneAssets(mint)
    opts = SceneOptions(image_size=128, kind_weights={CupKind.CONTAMINATED: 1.0}, max_coins=6)
    for index in (46, *range(10)):
        scene = render_cup(assets, 5, index, opts)
        expected = mint.by_id(scene.expected_type)
        intruders = {i.type_id for i in scene.instances if i.is_coin and i.type_id != expected.id}
        if index == 46:
            assert intruders == {expected.twin_of} and scene.contaminant == "twin"
        if scene.contaminant == "family" and intruders:
            assert intruders != {expected.twin_of}
            assert all(mint.by_id(t).family == expected.family for t in intruders)


def test_obverse_only_cups_show_the_shared_obverse(assets: SceneAssets) -> None:
    for i in range(4):
        scene = render_cup(assets, 3, i, _only(CupKind.OBVERSE_ONLY))
        expected = assets.mint.by_id(scene.expected_type)
        assert len(assets.families[expected.family]) >= 2
        assert scene.instances
        for inst in scene.instances:
            assert inst.side == Side.OBVERSE.value
            assert inst.design_id == expected.obverse.id


def test_foreign_object_and_empty_cups(assets: SceneAssets) -> None:
    for i in range(4):
        scene = render_cup(assets, 4, i, _only(CupKind.FOREIGN_OBJECT))
        objects = [inst for inst in scene.instances if not inst.is_coin]
        assert objects and all(o.type_id.startswith("object-") for o in objects)
        assert all(inst.type_id == scene.expected_type for inst in scene.instances if inst.is_coin)
        empty = render_cup(assets, 4, i, _only(CupKind.EMPTY))
        assert empty.instances == ()
        assert (empty.labels == -1).all()


def test_washer_has_a_transparent_hole() -> None:
    img = render_object(ForeignObject("washer", 20.0, 7), 64)
    assert img.shape == (64, 64, 4)
    assert img[32, 32, 3] == 0 and img[32, 4, 3] == 255


@pytest.mark.parametrize("kind", SURFACES)
def test_procedural_surfaces(kind: str) -> None:
    rng = np.random.default_rng(0)
    img = procedural_surface(kind, rng, 60, 80)
    assert img.shape == (60, 80, 3) and img.dtype == np.uint8
    assert img.std() > 0.5


def test_cut_patches_avoids_coins() -> None:
    photo = np.full((600, 800, 3), 200, np.uint8)
    cv2.circle(photo, (400, 300), 60, (60, 90, 120), -1)
    cv2.circle(photo, (60, 60), 40, (60, 90, 120), -1)
    patches = cut_patches(photo, max_patches=20)
    assert patches
    for p in patches:
        # A patch is plain paper: no dark coin pixels in it.
        assert p.min() > 150


def test_real_cups_paste_real_coins(real_data: Path) -> None:
    assets = SceneAssets(generate_mint(12, 3), list_real_types(real_data))
    opts = SceneOptions(image_size=SIZE, kind_weights={CupKind.PURE: 1.0}, real_fraction=1.0, max_coins=6)
    scene = render_cup(assets, 9, 0, opts)
    assert scene.expected_type.startswith("real-")
    assert scene.instances and all(i.source == "real" for i in scene.instances)
    _check_ground_truth(scene)


def test_the_tray_region_explains_the_rim_cuts(assets: SceneAssets) -> None:
    """The recorded cup region agrees with the cup size and with which coins the rim cuts."""
    shapes, cut, whole = set(), 0, 0
    for i in range(30):
        scene = render_cup(assets, 5, i, SceneOptions(image_size=SIZE, kind_weights={CupKind.PURE: 1.0}))
        tray = scene.tray
        shapes.add("flat" if tray is None else tray.shape)
        if tray is None:
            continue
        assert 2 * tray.radius / scene.px_per_mm == pytest.approx(scene.cup_diameter_mm, rel=1e-6)
        for inst in scene.instances:
            x, y = inst.center
            r = inst.diameter_px / 2
            on_image = r <= x <= SIZE - r and r <= y <= SIZE - r
            assert tray.inset(x, y) > 0  # every coin lies in the cup
            if on_image and tray.cuts(x, y, r, 0.2):
                assert inst.partial
                cut += 1
            if not tray.cuts(x, y, r, 0.0) and on_image:
                assert not inst.partial
                whole += 1
    assert cut > 0 and whole > 0
    assert shapes >= {"round", "square"}


def test_turned_coins_show_their_other_side_where_they_lay(assets: SceneAssets) -> None:
    opts = SceneOptions(image_size=SIZE, kind_weights={CupKind.PURE: 1.0}, max_coins=6, reverse_share=0.0)
    index = next(i for i in range(40) if sum(x.is_coin for x in render_cup(assets, 3, i, opts).instances) >= 3)
    before = render_cup(assets, 3, index, opts)
    turn = frozenset(x.label for x in before.instances[:2])
    after = render_cup(assets, 3, index, replace(opts, turn=turn))
    assert [x.label for x in after.instances] == [x.label for x in before.instances]
    for b, a in zip(before.instances, after.instances, strict=True):
        assert a.center == b.center and a.type_id == b.type_id and b.side == Side.OBVERSE.value
        assert a.side == (Side.REVERSE.value if b.label in turn else Side.OBVERSE.value)
        assert (a.design_id != b.design_id) is (b.label in turn)
    assert np.array_equal(after.labels, before.labels) and not np.array_equal(after.image, before.image)
    outside = before.labels < 0  # the tray, the table and the rim are drawn the same
    assert np.abs(after.image[outside].astype(int) - before.image[outside].astype(int)).mean() < 2.0


def test_a_mint_without_a_shared_obverse_never_labels_a_cup_obverse_only() -> None:
    assets = SceneAssets(generate_mint(2, 0))
    assert not assets.shared_obverse
    opts = SceneOptions(image_size=128, max_coins=4, kind_weights={CupKind.OBVERSE_ONLY: 3.0, CupKind.EMPTY: 1.0})
    kinds = {render_cup(assets, 0, i, opts).kind for i in range(8)}
    assert kinds == {CupKind.EMPTY}
    with pytest.raises(ValueError, match="share an obverse design"):
        render_cup(assets, 0, 0, replace(opts, kind_weights={CupKind.OBVERSE_ONLY: 1.0}))
    shared = SceneAssets(generate_mint(12, 3))
    scene = render_cup(shared, 3, 0, replace(opts, kind_weights={CupKind.OBVERSE_ONLY: 1.0}))
    designs = {inst.design_id for inst in scene.instances}
    assert scene.kind == CupKind.OBVERSE_ONLY
    assert sum(t.obverse.id in designs for t in shared.mint.types) >= 2  # a design two types show
