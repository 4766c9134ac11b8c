"""The pieces of a coin split by coins lying across it are joined, and nothing else is."""

from __future__ import annotations

import numpy as np

from calibration.camera import CupRoi
from models.detector import Detector, DetectorSettings
from models.fragments import Outline, circle_fit_radius, hidden_by_others, joining_circle, merge_fragments, union_mask
from models.masks import paste_mask
from models.outline import circle_fit, fit_outline, rim_points
from models.types import CoinInstance
from tests.models.discs import disc, piece


def _outline(i: CoinInstance) -> Outline:
    return Outline(*rim_points(i.mask, i.mask_origin, 300, 300), int(i.mask.sum()))


def _same_coin(a: CoinInstance, b: CoinInstance, sizes: tuple[float, ...] = ()) -> bool:
    return joining_circle(a, _outline(a), b, _outline(b), sizes) is not None


def pieces_under_two_coins(over_r: float, d: float) -> tuple[CoinInstance, CoinInstance, np.ndarray]:
    """A coin of radius 60 at (150, 150) with two coins lying across it: its left and right pieces, the two."""
    over = disc(150, 150 - d, over_r) | disc(150, 150 + d, over_r)
    xx = np.mgrid[0:300, 0:300][1]
    coin = disc(150, 150, 60)
    return piece(coin & ~over & (xx < 150)), piece(coin & ~over & (xx > 150)), over


def test_the_two_halves_of_a_coin_under_another_are_joined_and_nothing_else_is() -> None:
    coin = disc(150, 150, 60)
    # two coins lying across its middle hide a band: the pieces left and right are one coin
    over = disc(150, 100, 52) | disc(150, 200, 52)
    xx = np.mgrid[0:300, 0:300][1]
    a, b = piece(coin & ~over & (xx < 150)), piece(coin & ~over & (xx > 150))
    assert max(a.axes) < 0.9 * 120  # each half alone fits a smaller circle
    assert _same_coin(a, b) and _same_coin(b, a)
    mask, origin = union_mask(a, b)
    whole = fit_outline(mask, origin, 300, 300)
    assert whole is not None
    (cx, cy), axes, _ = whole
    assert abs(max(axes) - 121) < 3 and abs(cx - 150) < 1.5 and abs(cy - 150) < 1.5
    # two coins side by side are not one coin
    assert not _same_coin(piece(disc(90, 150, 50)), piece(disc(191, 150, 50)))
    # nor is a small coin lying on a large one
    big, small = disc(150, 150, 80), disc(160, 140, 30)
    assert not _same_coin(piece(big & ~small), piece(small))
    # nor a coin peeking out from under another
    upper = disc(150, 150, 60)
    assert not _same_coin(piece(upper), piece(disc(150, 185, 60) & ~upper))


def test_pieces_far_apart_are_joined_when_the_frame_shows_coins_of_their_size() -> None:
    a, b, _ = pieces_under_two_coins(62, 40)  # coins of 124 px lie across it: its pieces are 73 px apart
    assert max(a.axes) < 0.4 * 120  # each piece alone fits a far smaller circle
    assert not _same_coin(a, b)  # their own sizes say no coin spans that gap
    assert _same_coin(a, b, sizes=(60.0,))  # a whole coin of the frame does
    circle = joining_circle(a, _outline(a), b, _outline(b), (60.0,))
    assert circle is not None and np.hypot(circle[0] - 150, circle[1] - 150) < 1.5 and abs(circle[2] - 60) < 2


def test_no_coin_is_joined_far_larger_than_the_frames_whole_coins() -> None:
    """Along the edge of a dense pile, the rims of several coins can line up on one large circle."""
    a, b, _ = pieces_under_two_coins(52, 50)
    assert _same_coin(a, b, sizes=(58.0,))
    assert not _same_coin(a, b, sizes=(45.0,))  # 60 px is more than 15 % over the frame's largest coin


def test_a_joined_coin_must_lie_under_other_instances_where_it_does_not_show() -> None:
    a, b, over = pieces_under_two_coins(55, 48)
    circle = joining_circle(a, _outline(a), b, _outline(b), (60.0,))
    assert circle is not None
    pieces = np.zeros((300, 300), bool)
    for p in (a, b):
        paste_mask(pieces, p)
    assert hidden_by_others(circle, pieces | over)  # the two coins lying across it hide the rest
    assert not hidden_by_others(circle, pieces)  # bare tray between the pieces: two things, not one coin
    # under the cup's rim counts as hidden too
    roi = CupRoi(250.0, 150.0, 100.0)  # the cup's edge runs through the coin's middle; its left half is under the rim
    right = np.mgrid[0:300, 0:300][1] >= 150
    assert not hidden_by_others(circle, pieces | (over & right))
    assert hidden_by_others(circle, pieces | (over & right), roi)


def test_the_detector_joins_the_pieces_of_a_coin_and_keeps_the_coins_on_it() -> None:
    a, b, _ = pieces_under_two_coins(58, 45)
    tops = [piece(disc(150, 105, 58)), piece(disc(150, 195, 58) & ~disc(150, 105, 58))]
    settings = DetectorSettings(
        version="t", imgsz=256, conf=0.3, iou=0.6, names={0: "coin"}, yolo_file="", yolo_sha256=""
    )
    parts = [(p, _outline(p), 0) for p in (*tops, a, b)]
    found = [inst for inst, _ in merge_fragments(parts, 300, 300, None, Detector(None, None, settings)._instance)]
    assert len(found) == 3
    joined = min(found, key=lambda i: np.hypot(i.center[0] - 150, i.center[1] - 150))
    assert abs(joined.diameter_px - 121) < 4 and joined.mask.sum() == a.mask.sum() + b.mask.sum()


def test_fixed_size_circle_fit_recovers_a_short_arc() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(-0.5, 0.5, 40)
    arc = np.stack([150 + 60 * np.cos(t), 150 + 60 * np.sin(t)], axis=1) + rng.normal(0, 0.7, (40, 2))
    pts = np.asarray(arc, dtype=np.float32)
    free = circle_fit(pts)
    centre = circle_fit_radius(pts, 60.0, free)
    assert centre is not None and np.hypot(centre[0] - 150, centre[1] - 150) < 1.0
