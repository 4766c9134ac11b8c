"""A labelled cup's truth comes from the rulings alone, whatever the station took each box for."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.retrain import LabelledCup
from tests.models.verdict_world import plain_coins


def _cup(
    coin_types: tuple[str | None, ...], n_objects: int = 0, object_types: tuple[str | None, ...] = ()
) -> LabelledCup:
    coins = replace(plain_coins(np.eye(len(coin_types), 8, dtype=np.float32)), n_objects=n_objects)
    return LabelledCup(1, "a", coins, coin_types, object_types=object_types)


def test_a_coin_the_station_took_for_an_object_is_still_a_coin_of_the_cup() -> None:
    # ruled a coin of the order: the cup is clean, though the station counts an object in it
    assert _cup(("a", "a"), 1, ("a",)).correct_for("a")
    assert _cup(("a", "a"), 1, ("b",)).true_type is None  # a coin of another type: a mixed cup
    # an object nobody ruled a coin, or ruled no coin: no clean cup
    assert not _cup(("a", "a"), 1).correct_for("a")
    assert not _cup(("a", "a"), 1, (None,)).correct_for("a")


def test_a_coin_ruled_no_coin_makes_the_cup_no_clean_cup() -> None:
    assert _cup(("a", "a", "a")).correct_for("a")
    washer = _cup(("a", "a", None))
    assert washer.coins.n == 3 and washer.true_type is None and not washer.correct_for("a")
    assert not _cup((None,)).correct_for("a")
    assert not replace(_cup(("a",)), holds_unseen=True).correct_for("a")
