"""Tests of the procedural mint: catalogue structure, near-twins, rendering and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from models.synth.mint import MIN_SIZE_PX, TWIN_DETAILS, CoinType, Mint, generate_mint, render_face
from models.types import Side

SIZE = 128


@pytest.fixture(scope="module")
def mint() -> Mint:
    return generate_mint(300, 11)


def _diff_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the disc's pixels whose colour differs by more than 6 levels."""
    d = np.abs(a[..., :3].astype(int) - b[..., :3].astype(int)).max(axis=-1)
    return float((d > 6).sum() / (a[..., 3] > 0).sum())


def test_catalogue_size_ids_and_ranges(mint: Mint) -> None:
    assert len(mint.types) == 300
    ids = [t.id for t in mint.types]
    assert len(set(ids)) == 300
    assert len({t.reverse.id for t in mint.types}) == 300
    for t in mint.types:
        assert 15.0 <= t.diameter_mm <= 33.0
        assert 0.8 <= t.thickness_mm <= 3.2
        assert t.edge in ("reeded", "plain")
        assert (t.ring_bgr is not None) == (t.metal == "bimetallic")
        assert mint.by_id(t.id) is t
    assert len({t.metal for t in mint.types}) >= 4
    with pytest.raises(KeyError):
        mint.by_id("nope")


def test_families_share_obverse_diameter_and_metal(mint: Mint) -> None:
    families = mint.families()
    sizes = sorted(len(v) for v in families.values())
    assert sizes[0] <= 3 and sizes[-1] >= 10, sizes
    for members in families.values():
        coins = [mint.by_id(i) for i in members]
        assert len({c.obverse for c in coins}) == 1
        assert len({c.obverse.id for c in coins}) == 1
        assert len({(c.diameter_mm, c.metal, c.metal_bgr, c.edge) for c in coins}) == 1
    obverse_ids = {t.obverse.id for t in mint.types}
    assert len(obverse_ids) == len(families)
    # several families share (nearly) the same diameter, as real coins of different countries do
    diameters = sorted(mint.by_id(m[0]).diameter_mm for m in families.values())
    assert min(np.diff(diameters)) < 0.6


def test_twin_pairs_recorded_both_ways(mint: Mint) -> None:
    pairs = mint.twin_pairs()
    share = 2 * len(pairs) / len(mint.types)
    assert 0.08 <= share <= 0.35, share
    kinds = set()
    for a, b in pairs:
        ta, tb = mint.by_id(a), mint.by_id(b)
        assert ta.twin_of == b and tb.twin_of == a
        assert ta.twin_detail == tb.twin_detail in TWIN_DETAILS
        kinds.add(ta.twin_detail)
        assert ta.family == tb.family
        assert (ta.reverse.seed, ta.reverse.motif, ta.reverse.legend) == (
            tb.reverse.seed,
            tb.reverse.motif,
            tb.reverse.legend,
        )
        if ta.twin_detail == "digit":
            assert ta.reverse.detail == tb.reverse.detail
            diff = [i for i, (x, y) in enumerate(zip(ta.reverse.numeral, tb.reverse.numeral, strict=True)) if x != y]
            assert len(diff) == 1
        else:
            assert ta.reverse.numeral == tb.reverse.numeral
            assert ta.reverse.detail != tb.reverse.detail
    assert kinds == set(TWIN_DETAILS)


def test_near_twins_differ_only_in_a_small_region(mint: Mint) -> None:
    pairs = mint.twin_pairs()
    by_kind: dict[str, tuple[str, str]] = {}
    for a, b in pairs:
        by_kind.setdefault(mint.by_id(a).twin_detail or "", (a, b))
    for kind, (a, b) in sorted(by_kind.items()):
        ra = render_face(mint.by_id(a), Side.REVERSE, SIZE)
        rb = render_face(mint.by_id(b), Side.REVERSE, SIZE)
        frac = _diff_fraction(ra, rb)
        assert 0.0 < frac < 0.05, (kind, frac)
        # the differing pixels form one small blob, not scattered changes
        ys, xs = np.nonzero(np.abs(ra[..., :3].astype(int) - rb[..., :3].astype(int)).max(-1) > 6)
        assert (ys.max() - ys.min()) < SIZE * 0.3 and (xs.max() - xs.min()) < SIZE * 0.45, kind
        # obverses are the shared family design: identical
        assert np.array_equal(
            render_face(mint.by_id(a), Side.OBVERSE, SIZE), render_face(mint.by_id(b), Side.OBVERSE, SIZE)
        )
    # two members of one family that are not twins differ over much more of the face
    for members in mint.families().values():
        if len(members) >= 2 and mint.by_id(members[0]).twin_of != members[1]:
            ra = render_face(mint.by_id(members[0]), Side.REVERSE, SIZE)
            rb = render_face(mint.by_id(members[1]), Side.REVERSE, SIZE)
            assert _diff_fraction(ra, rb) > 0.1
            break


def test_render_shape_alpha_is_the_disc(mint: Mint) -> None:
    coin = mint.types[0]
    for size in (MIN_SIZE_PX, 97, 256):
        img = render_face(coin, Side.OBVERSE, size, wear=0.5, toning=0.5, seed=3)
        assert img.shape == (size, size, 4) and img.dtype == np.uint8
        c = (size - 1) / 2
        yy, xx = np.mgrid[0:size, 0:size]
        r = np.hypot(xx - c, yy - c)
        alpha = img[..., 3]
        assert (alpha[r < size / 2 - 1] == 255).all()
        assert (alpha[r > size / 2 + 1] == 0).all()
        assert (img[..., :3][alpha == 0] == 0).all()
        # a lit metal face, not a flat disc
        assert img[..., :3][alpha == 255].std() > 5


def test_wear_and_toning_change_the_face(mint: Mint) -> None:
    coin = mint.types[1]
    clean = render_face(coin, Side.REVERSE, SIZE)
    worn = render_face(coin, Side.REVERSE, SIZE, wear=0.8)
    toned = render_face(coin, Side.REVERSE, SIZE, toning=0.8)
    assert _diff_fraction(clean, worn) > 0.05
    assert _diff_fraction(clean, toned) > 0.3
    # worn relief is softer: the strong edges of the relief lose contrast

    def edge_strength(img: np.ndarray) -> float:
        return float(np.percentile(np.abs(np.diff(img[20:-20, 20:-20, 1].astype(int), axis=1)), 95))

    assert edge_strength(worn) < 0.85 * edge_strength(clean)
    # another coin of the same type gets its own scratches
    assert not np.array_equal(worn, render_face(coin, Side.REVERSE, SIZE, wear=0.8, seed=1))


def test_determinism() -> None:
    a, b, c = generate_mint(40, 5), generate_mint(40, 5), generate_mint(40, 6)
    assert a == b
    assert a.to_json() == b.to_json()
    assert a != c
    ta, tc = a.types[3], c.types[3]
    img = render_face(ta, Side.REVERSE, 96, wear=0.4, toning=0.3, seed=2)
    assert render_face(b.types[3], Side.REVERSE, 96, wear=0.4, toning=0.3, seed=2).tobytes() == img.tobytes()
    assert render_face(tc, Side.REVERSE, 96, wear=0.4, toning=0.3, seed=2).tobytes() != img.tobytes()


def test_small_mint_and_json_round_trip() -> None:
    one = generate_mint(1, 0)
    assert len(one.types) == 1 and one.types[0].twin_of is None
    m = generate_mint(30, 2)
    back = Mint.from_json(m.to_json())
    assert back == m
    assert isinstance(back.types[0], CoinType) and isinstance(back.types[0].metal_bgr, tuple)
    assert back.by_id(m.types[-1].id) == m.types[-1]


@pytest.mark.parametrize("n_types", [0, -3])
def test_invalid_n_types(n_types: int) -> None:
    with pytest.raises(ValueError):
        generate_mint(n_types, 0)


@pytest.mark.parametrize(
    ("size", "wear", "toning"),
    [(MIN_SIZE_PX - 1, 0.0, 0.0), (0, 0.0, 0.0), (64, -0.1, 0.0), (64, 1.5, 0.0), (64, 0.0, 2.0)],
)
def test_invalid_render_args(size: int, wear: float, toning: float) -> None:
    coin = generate_mint(3, 0).types[0]
    with pytest.raises(ValueError):
        render_face(coin, Side.OBVERSE, size, wear=wear, toning=toning)
