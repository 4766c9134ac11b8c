"""Instance masks: each pixel to the instance most sure of it, and masks cut to or pasted into their frame."""

from __future__ import annotations

import numpy as np

from models.masks import instance_full_mask, mask_window, paste_mask, resolve_overlaps
from models.segmenter import Window
from models.types import CoinInstance


def _disc_logits(side: int, cx: float, cy: float, r: float, peak: float) -> np.ndarray:
    """Logits ``peak`` at a disc's centre falling to 0 at its rim (negative outside)."""
    yy, xx = np.mgrid[0:side, 0:side]
    return np.asarray(peak * (1.0 - np.hypot(xx - cx, yy - cy) / r), np.float32)


def test_each_pixel_goes_to_the_instance_most_sure_of_it() -> None:
    a = (_disc_logits(40, 20, 20, 15, 2.0), Window(10, 10, 40))  # centre (30, 30) in the frame
    b = (_disc_logits(40, 20, 20, 15, 1.0), Window(30, 10, 40))  # centre (50, 30): overlaps a, less sure
    ma, mb = resolve_overlaps([a, b], 100, 80)
    assert ma is not None and mb is not None
    full_a, full_b = np.zeros((80, 100), bool), np.zeros((80, 100), bool)
    for full, (mask, (ox, oy)) in ((full_a, ma), (full_b, mb)):
        full[oy : oy + mask.shape[0], ox : ox + mask.shape[1]] = mask
    assert not (full_a & full_b).any()  # no pixel is given twice
    # where both claim it, the surer one (a, peak 2) wins: the boundary lies right of the midpoint x = 40
    assert full_a[30, 41] and not full_b[30, 41]
    assert full_b[30, 50] and full_a[30, 25]
    # masks are cut to their extent, origin in frame pixels
    assert ma[1] == (16, 16) and ma[0].shape == (29, 26)  # 16..41 wide: b has x = 42 on


def test_windows_reaching_past_the_frame_and_specks_are_handled() -> None:
    edge = (_disc_logits(40, 20, 20, 15, 1.0), Window(-20, -20, 40))  # its centre at the frame's corner
    outside = (_disc_logits(40, 20, 20, 15, 1.0), Window(200, 0, 40))  # wholly outside a 100 px frame
    speck = (_disc_logits(40, 20, 20, 2.0, 1.0), Window(50, 40, 40))  # 9 pixels: no instance
    got = resolve_overlaps([edge, outside, speck], 100, 80)
    assert got[1] is None and got[2] is None
    assert got[0] is not None
    mask, origin = got[0]
    assert origin == (0, 0) and mask.shape == (15, 15) and mask[0, 0]


def test_a_stray_fleck_of_an_instance_is_dropped() -> None:
    lg = _disc_logits(60, 30, 30, 20, 1.0)
    lg[2:4, 55:57] = 1.0  # two by two pixels far from the coin, its own component
    (got,) = resolve_overlaps([(lg, Window(0, 0, 60))], 60, 60)
    assert got is not None and got[1] == (11, 11)  # the fleck at x = 55 did not widen the mask


def _instance(mask: np.ndarray, origin: tuple[int, int]) -> CoinInstance:
    x, y = origin
    bbox = np.array([x, y, x + mask.shape[1], y + mask.shape[0]], np.float32)
    return CoinInstance(bbox=bbox, mask=mask, mask_origin=origin, confidence=0.9, center=(0.0, 0.0), axes=(1.0, 1.0))


def test_a_mask_is_cut_to_its_frame_and_pasted_into_it() -> None:
    mask = np.ones((10, 10), bool)
    mask[0, 0] = False
    inside, over, away = _instance(mask, (5, 5)), _instance(mask, (-4, 15)), _instance(mask, (30, 0))
    window = mask_window(over, 20, 20)
    assert window is not None
    (rows, cols), cut = window
    assert (rows, cols) == (slice(15, 20), slice(0, 6)) and cut.shape == (5, 6) and cut.all()
    assert mask_window(away, 20, 20) is None
    frame = np.zeros((20, 20), bool)
    for inst in (inside, over, away):
        paste_mask(frame, inst)
    assert frame.sum() == 99 + 30 and not frame[5, 5] and frame[19, 0]
    assert np.array_equal(instance_full_mask(inside, 20, 20), frame & (np.arange(20)[:, None] < 15))
