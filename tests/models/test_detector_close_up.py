"""The shipped detector on close-ups: a coin filling most of the photo is found whole, once, and a neighbour cut by
the photo's edge is partial; rendered cups, full or empty, are detected as before."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.detector import Detector, _past_edge
from models.enroll import detect_coins
from models.synth.mint import generate_mint
from models.synth.scene import CupKind, SceneAssets, SceneOptions, render_cup
from models.types import CoinInstance, Frame, UInt8Array

PHOTO = "euro_kaa/photos/single/IMG_4197.jpg"
COIN = (929.9, 907.9, 145.8)
"""A one-euro coin of :data:`PHOTO` lying among others: centre x, y and diameter in pixels (the detector's fit)."""


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load()


def close_up(real_data: Path, share: float, size: int) -> UInt8Array:
    """A square photo of ``size`` px centred on :data:`COIN`, the coin spanning ``share`` of it (its neighbours
    cut by the edges), as a phone held over one coin takes it."""
    image = cv2.imread(str(real_data / PHOTO))
    assert image is not None, f"cannot read {real_data / PHOTO}"
    cx, cy, d = COIN
    half = int(d / share / 2)
    crop = image[int(cy) - half : int(cy) + half, int(cx) - half : int(cx) + half]
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def _covered(inst: CoinInstance, by: CoinInstance) -> bool:
    """Whether ``inst``'s centre lies inside ``by``'s fitted circle (a piece of its design)."""
    return bool(np.hypot(inst.center[0] - by.center[0], inst.center[1] - by.center[1]) < by.diameter_px / 2)


@pytest.mark.parametrize(("share", "size"), [(0.65, 1000), (0.8, 800), (0.8, 1280)])
def test_a_coin_filling_most_of_the_photo_is_found_whole_and_once(
    detector: Detector, real_data: Path, share: float, size: int
) -> None:
    """At 65 % the first pass boxed only a neighbour cut by the edge; at 80 % it boxed nothing and the pass at a
    larger size seven pieces of the coin's design. The shrunk copy finds the coin itself."""
    image = close_up(real_data, share, size)
    coins = [i for i in detector.detect(Frame(image=image, source="close-up")) if i.is_coin]
    centre = [i for i in coins if np.hypot(i.center[0] - size / 2, i.center[1] - size / 2) < 0.05 * size]
    assert len(centre) == 1, f"{len(coins)} coins, {len(centre)} at the centre"
    coin = centre[0]
    assert coin.diameter_px == pytest.approx(share * size, rel=0.04)
    assert not coin.partial
    assert not [i for i in coins if i is not coin and _covered(i, coin)]  # no pieces of it


def test_a_neighbour_cut_by_the_edge_is_partial_though_its_mask_stops_short(
    detector: Detector, real_data: Path
) -> None:
    """The 65 % close-up's neighbour above was reported whole, its centre 150 px above the photo: its mask stopped
    a pixel short of the top edge."""
    size = 1000
    coins = [i for i in detector.detect(Frame(image=close_up(real_data, 0.65, size), source="close-up")) if i.is_coin]
    outside = [i for i in coins if not (0 <= i.center[0] < size and 0 <= i.center[1] < size)]
    assert outside and all(i.partial for i in outside)
    for inst in coins:
        r = inst.diameter_px / 2
        past = min(inst.center[0], inst.center[1], size - inst.center[0], size - inst.center[1]) < r * 0.91
        assert inst.partial or not past


def test_a_catalogue_close_up_gives_its_coin_as_the_largest(detector: Detector, real_data: Path) -> None:
    """``enroll`` takes a catalogue photo's largest coin as its reference: the coin itself, not a cut neighbour
    nor a piece of its design."""
    for share, size in ((0.65, 1000), (0.8, 800)):
        inst, crop = max(detect_coins(close_up(real_data, share, size), detector, 128), key=lambda c: c[0].diameter_px)
        assert np.hypot(inst.center[0] - size / 2, inst.center[1] - size / 2) < 0.05 * size
        assert inst.diameter_px == pytest.approx(share * size, rel=0.04) and not inst.partial
        assert crop.image.shape[:2] == (128, 128)


def test_the_fitted_outline_past_the_edge() -> None:
    # a circle of radius 50 whose centre lies 40 px inside the left edge reaches 10 px (20 % of it) past it
    assert _past_edge(((40.0, 100.0), (100.0, 100.0), 0.0), 200, 200, 0.09)
    assert not _past_edge(((48.0, 100.0), (100.0, 100.0), 0.0), 200, 200, 0.09)  # 2 px: within the fit's error
    # a tilted ellipse: the major axis upright (90 degrees), so across it only the minor half-axis reaches out
    assert not _past_edge(((35.0, 100.0), (100.0, 60.0), 90.0), 200, 200, 0.09)
    assert _past_edge(((35.0, 100.0), (100.0, 60.0), 0.0), 200, 200, 0.09)
    assert _past_edge(((100.0, 195.0), (100.0, 100.0), 0.0), 200, 200, 0.09)


def test_rendered_cups_full_or_empty_take_no_close_up_pass(detector: Detector) -> None:
    """A cup frame's coins are at the trained scale, and an empty cup shows nothing: neither looks like a
    close-up, so neither is predicted on a shrunk copy (an empty cup shrunk is boxed as a coin: the cup itself)."""
    assets = SceneAssets(generate_mint(6, 4242))
    for kind in (CupKind.PURE, CupKind.EMPTY):
        for index in range(4):
            scene = render_cup(assets, 4242, index, SceneOptions(image_size=640, kind_weights={kind: 1.0}))
            image = np.ascontiguousarray(scene.image, dtype=np.uint8)
            found = detector.boxes(image)
            result = detector._rescaled(image, found)
            assert not detector._looks_close_up(image, found, result), f"{kind} cup {index}"
            if kind is CupKind.EMPTY:
                assert detector.detect(Frame(image=image, source="empty")) == []
