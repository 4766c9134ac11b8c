"""Doubtful boxes on towel weave or on the bare tray between coins are dropped; coins are kept."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from calibration.camera import CupRoi
from models.box_checks import RIM_REFERENCE_CONF, drop_bare_tray, drop_faint_rims, shows_whole, tray_colour
from models.types import CoinInstance
from tests.models.discs import disc, piece


def _weave(seed: int = 0) -> np.ndarray:
    """A 300 px frame of towel-like weave: a grid of soft bumps with noise, no edge stronger than its neighbours'."""
    yy, xx = np.mgrid[0:300, 0:300]
    rng = np.random.default_rng(seed)
    g = 120 + 12 * np.sin(xx / 3.0) * np.sin(yy / 3.0) + rng.normal(0, 4, (300, 300))
    return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _with_conf(inst: CoinInstance, confidence: float, is_coin: bool = True) -> CoinInstance:
    return replace(inst, confidence=confidence, is_coin=is_coin)


def test_a_doubtful_whole_disc_of_towel_weave_is_dropped_and_doubtful_coins_kept() -> None:
    image = _weave()
    coins = [disc(60, 60, 40), disc(160, 60, 40), disc(60, 170, 40), disc(230, 230, 40)]
    for c in coins:  # bright discs lying on the weave: their rims are strong edges
        image[c] = (190, 215, 230)
    sure = [piece(c) for c in coins[:3]]
    doubtful_coin = _with_conf(piece(coins[3]), 0.5)
    weave = _with_conf(piece(disc(190, 150, 30) & ~coins[3]), 0.5)  # a bare patch of towel boxed as a coin
    kept = [id(i) for i in drop_faint_rims([*sure, doubtful_coin, weave], image, 0.5)]
    assert id(doubtful_coin) in kept and id(weave) not in kept and all(id(s) in kept for s in sure)
    # a coin partly hidden under others may show a faint rim where it borders them: it is never dropped
    hidden = _with_conf(piece(disc(190, 150, 30) & ~disc(222, 150, 28)), 0.5)
    assert abs(max(hidden.axes) - 60) < 4 and len(drop_faint_rims([*sure, hidden], image, 0.5)) == 4
    # a confident box, an object, a frame without a confident coin and a zero share keep everything
    assert len(drop_faint_rims([*sure, _with_conf(weave, 0.9)], image, 0.5)) == 4
    assert len(drop_faint_rims([*sure, _with_conf(weave, 0.5, is_coin=False)], image, 0.5)) == 4
    assert len(drop_faint_rims([doubtful_coin, weave], image, 0.5)) == 2
    assert len(drop_faint_rims([*sure, weave], image, 0.0)) == 4


def test_a_doubtful_box_the_colour_of_the_bare_tray_is_dropped_even_partly_hidden() -> None:
    image = _weave(1)
    coins = [disc(60, 60, 40), disc(140, 60, 40), disc(60, 160, 40)]
    small_coin = disc(230, 230, 26)  # a smaller coin of a mixed pile, half as sure
    for c in (*coins, small_coin):
        image[c] = (190, 215, 230)
    sure = [piece(c) for c in coins]
    # the gap between three coins, boxed as a coin and partly under them: not a whole disc, so no rim test
    gap = _with_conf(piece(disc(75, 100, 30) & ~coins[0] & ~coins[1] & ~coins[2]), 0.6)
    assert not shows_whole(gap) and len(drop_faint_rims([*sure, gap], image, 0.5)) == 4
    coin = _with_conf(piece(small_coin), 0.5)
    kept = [id(i) for i in drop_bare_tray([*sure, gap, coin], image, 0.2)]
    assert id(gap) not in kept and id(coin) in kept and all(id(s) in kept for s in sure)
    # a coin lying mostly hidden between the others shows metal, not tray
    hidden = disc(75, 100, 30) & ~coins[0] & ~coins[1] & ~coins[2]
    metal = image.copy()
    metal[hidden] = (170, 200, 215)
    assert len(drop_bare_tray([*sure, gap], metal, 0.2)) == 4
    # a confident box, an object, a frame without a confident coin, a zero share: kept
    assert len(drop_bare_tray([*sure, _with_conf(gap, RIM_REFERENCE_CONF)], image, 0.2)) == 4
    assert len(drop_bare_tray([*sure, _with_conf(gap, 0.6, is_coin=False)], image, 0.2)) == 4
    assert len(drop_bare_tray([gap, coin], image, 0.2)) == 2
    assert len(drop_bare_tray([*sure, gap], image, 0.0)) == 4
    # coins the colour of the tray: colour tells nothing, every box is kept
    dull = _weave(1)
    assert tray_colour(dull, sure) is not None and len(drop_bare_tray([*sure, gap], dull, 0.2)) == 4
    # a cup region: only its inside is tray; a region the coins fill leaves too little tray to judge by
    assert len(drop_bare_tray([*sure, gap], image, 0.2, CupRoi(150.0, 150.0, 140.0))) == 3
    assert tray_colour(image, sure, CupRoi(60.0, 60.0, 38.0)) is None
