"""The verdict drawn on its photograph: numbers never crossed out by a neighbour's ring, a caption OpenCV can draw."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from models.types import CoinEvidence, Decision, Match, Side, Verdict
from station.controllers.overlay import (
    FLAG_BGR,
    PASS_BGR,
    ascii_text,
    coin_ok,
    draw_evidence,
    shown_reasons,
    summarise,
    verdict_picture,
)


def _coin(index: int, bbox: tuple[float, float, float, float], type_id: str) -> CoinEvidence:
    return CoinEvidence(index, bbox, (Match(type_id, Side.REVERSE, 0.9),), None, 0.9, False)


def _verdict(decision: Decision, coins: tuple[CoinEvidence, ...], reasons: tuple[str, ...] = ()) -> Verdict:
    return Verdict(decision, "t0001", 0.5, 0.97, reasons, coins, "v")


def test_a_coins_number_is_drawn_over_the_rings_of_the_coins_after_it() -> None:
    image = np.full((300, 300, 3), 90, np.uint8)
    # coin 1's number patch sits at its box's top left, where coin 2's ring (drawn after it) runs
    first = _coin(0, (100.0, 100.0, 200.0, 200.0), "t0001")
    second = _coin(1, (40.0, 40.0, 160.0, 160.0), "t0002")
    drawn = draw_evidence(image, _verdict(Decision.FLAG, (first, second)))
    patch = drawn[103:112, 100:110].reshape(-1, 3).astype(int)
    assert (np.abs(patch - PASS_BGR).sum(axis=1) < 40).mean() > 0.5  # coin 1's green patch, not coin 2's amber ring


@pytest.mark.parametrize(
    ("text", "drawn"),
    [
        ("coin 2 shows the shared obverse — turn it over", "coin 2 shows the shared obverse - turn it over"),
        ("the photo is 640×480 pixels", "the photo is 640x480 pixels"),
        ("needs ≥ 0.970", "needs >= 0.970"),
        ("Zürich 2 € · café", "Zurich 2 ? - cafe"),
    ],
)
def test_reasons_are_given_to_opencv_in_characters_it_draws(text: str, drawn: str) -> None:
    assert ascii_text(text) == drawn and ascii_text(text).isascii()


def test_the_picture_is_the_photo_with_the_verdict_and_each_reason_under_it() -> None:
    image = np.full((200, 400, 3), 90, np.uint8)
    coin = _coin(0, (50.0, 50.0, 150.0, 150.0), "t0001")
    short = verdict_picture(image, _verdict(Decision.PASS, (coin,)), "cup.jpg")
    long_reason = "coin 1 looks like t0002 (0.91) " + "and more words " * 12
    flagged = verdict_picture(image, _verdict(Decision.FLAG, (coin,), (long_reason, "object 2 is not a coin")))
    assert short.shape[1] == flagged.shape[1] == 400
    assert np.array_equal(short[:200], draw_evidence(image, _verdict(Decision.PASS, (coin,))))
    assert flagged.shape[0] > short.shape[0] + 3 * (short.shape[0] - 200) // 2  # a long reason wraps onto more lines
    for picture, word in ((short, PASS_BGR), (flagged, FLAG_BGR)):
        caption = picture[200:].reshape(-1, 3).astype(int)
        assert (np.abs(caption - word).sum(axis=1) < 40).any()


def test_a_score_just_under_the_threshold_never_reads_as_the_threshold() -> None:
    from station.controllers.overlay import needs

    flagged = Verdict(Decision.FLAG, "t0001", 0.96952, 0.9695703244117454, ("not sure enough",), (), "v")
    assert "p = 0.9695 (needs ≥ 0.9696)" in summarise(flagged).detail
    assert needs(0.9695703244117454, 0.96952) == "needs ≥ 0.9696"
    assert needs(0.9695703244117454) == "needs ≥ 0.970"  # no score beside it: three decimals
    assert needs(0.97, 0.5) == "needs ≥ 0.970" and needs(math.inf, 0.5).startswith("no threshold certified")


def test_a_cut_coin_is_marked_and_the_coin_that_looks_like_another_type_is_named() -> None:
    image = np.full((400, 400, 3), 90, np.uint8)
    wrong = _coin(0, (40.0, 40.0, 140.0, 140.0), "t0016")
    cut = dataclasses.replace(_coin(6, (200.0, 200.0, 300.0, 300.0), "t0001"), partial=True)
    reasons = (
        "the type t0001 has a lookalike (t0002) — check the date and mint mark by eye",
        "coin 7 is cut by the edge of the picture or the cup's rim — bring it into view",
        "coin 1 looks like t0016 (0.91)",
    )
    verdict = _verdict(Decision.FLAG, (wrong, cut), reasons)
    assert not coin_ok(cut, "t0001")
    ring = draw_evidence(image, verdict)[245:256, 296:305].reshape(-1, 3).astype(int)  # coin 7's right edge
    assert (np.abs(ring - FLAG_BGR).sum(axis=1) < 40).any() and not (np.abs(ring - PASS_BGR).sum(axis=1) < 40).any()
    reason = summarise(verdict).reason
    assert "Coin 1 looks like t0016 (0.91)." in reason  # the wrong coin, named
    assert "Coin 7 is cut by the edge of the picture or the cup's rim." in reason
    assert "into view" not in reason and reason.endswith("Put it aside for a supervisor.")
    assert reason.index("Coin 7") < reason.index("Coin 1")  # the pipeline's order among the coins named


def test_blurred_coins_are_said_before_the_coins_named() -> None:
    reasons = [
        "coins are out of focus",
        "object 5 is not a coin",
        "object 6 is not a coin",
        "coin 2 is cut by the edge",
    ]
    assert shown_reasons(reasons)[0] == "Coins are out of focus."
