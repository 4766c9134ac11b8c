"""Crops: one square, background-free crop per instance, neighbours excluded."""

from __future__ import annotations

import numpy as np
import pytest

from models.crops import cut_crops
from models.types import CoinInstance, Frame


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _instance(full: np.ndarray, cx: float, cy: float, r: float, partial: bool = False) -> CoinInstance:
    ys, xs = np.nonzero(full)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return CoinInstance(
        bbox=np.array([x0, y0, x1, y1], dtype=np.float32),
        mask=full[y0:y1, x0:x1].copy(),
        mask_origin=(int(x0), int(y0)),
        confidence=0.9,
        center=(cx, cy),
        axes=(2 * r, 2 * r),
        partial=partial,
    )


@pytest.fixture
def scene() -> tuple[Frame, list[CoinInstance], list[np.ndarray]]:
    """Two overlapping discs (B on top of A) plus one cut by the image's left edge, on random texture."""
    h, w = 200, 260
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, size=(h, w, 3), dtype=np.uint8)
    a = _disc(h, w, 80, 100, 40)
    b = _disc(h, w, 135, 100, 35)
    c = _disc(h, w, 5, 30, 25)
    a_visible = a & ~b
    masks = [a_visible, b, c]
    insts = [
        _instance(a_visible, 80, 100, 40),
        _instance(b, 135, 100, 35),
        _instance(c, 5, 30, 25, partial=True),
    ]
    return Frame(image=image), insts, masks


@pytest.mark.parametrize("size", [32, 128])
def test_crop_shapes_and_types(scene, size: int) -> None:
    frame, insts, _ = scene
    crops = cut_crops(frame, insts, size=size)
    assert len(crops) == len(insts)
    for i, crop in enumerate(crops):
        assert crop.image.shape == (size, size, 3) and crop.image.dtype == np.uint8
        assert crop.mask.shape == (size, size) and crop.mask.dtype == np.bool_
        assert crop.index == i
        assert crop.partial == insts[i].partial


def test_pixels_outside_mask_are_black_and_inside_are_not(scene) -> None:
    frame, insts, _ = scene
    for crop in cut_crops(frame, insts, size=96):
        assert not crop.image[~crop.mask].any()
        # the texture has no black pixel, so (almost) every kept pixel is non-black
        inside = crop.image[crop.mask]
        assert inside.any(axis=1).mean() > 0.95


def test_overlapping_coins_keep_only_their_own_pixels(scene) -> None:
    frame, insts, _ = scene
    under, top = cut_crops(frame, insts[:2], size=128)
    # the coin underneath is cut where the top coin covers it: its mask fills much less than the disc
    disc_fraction = np.pi / 4
    assert under.mask.mean() < 0.95 * disc_fraction
    assert top.mask.mean() == pytest.approx(disc_fraction, rel=0.05)
    # the covered side of the lower coin (right half, centre row) is black
    assert not under.image[64, 120:].any()


def test_crop_matches_the_source_mask(scene) -> None:
    """Mapping crop pixels back to the frame lands inside the instance's own mask."""
    frame, insts, masks = scene
    size = 64
    for inst, full, crop in zip(insts, masks, cut_crops(frame, insts, size=size), strict=True):
        side = max(inst.axes)
        ys, xs = np.nonzero(crop.mask)
        fx = np.round(inst.center[0] - side / 2 + (xs + 0.5) * side / size - 0.5).astype(int)
        fy = np.round(inst.center[1] - side / 2 + (ys + 0.5) * side / size - 0.5).astype(int)
        fx, fy = np.clip(fx, 0, full.shape[1] - 1), np.clip(fy, 0, full.shape[0] - 1)
        hit = full[fy, fx].mean()
        assert hit > 0.97


def test_empty_list_and_bad_size(scene) -> None:
    frame, insts, _ = scene
    assert cut_crops(frame, [], size=64) == []
    with pytest.raises(ValueError, match="crop size"):
        cut_crops(frame, insts, size=0)
