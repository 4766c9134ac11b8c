"""Cups checked again after the operator turns the coins a FLAG names, with the shipped detector, embedder and voter
over a small mint's enrolment photos."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from models.bundle import load_bundle
from models.eval_turn import (
    TurnCheck,
    TurnStation,
    check_with_turn,
    coins_to_turn,
    evaluate_turning,
    turn_options,
    turn_station,
    turn_summary,
    turning_lines,
)
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import CupKind, SceneOptions, render_cup
from models.train.galleries import ENROL_DIR
from models.types import Decision, Frame

SEED = 3
SCENE = SceneOptions(image_size=480, max_coins=6, kind_weights={CupKind.PURE: 1.0})


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> TurnStation:
    root = tmp_path_factory.mktemp("turn_data")
    for out, cups, first in ((root, 1, 0), (root / ENROL_DIR, 24, 100_000)):
        config = SynthConfig(n_types=6, n_cups=cups, seed=SEED, scene=SCENE, crop_size=128, first_index=first)
        write_dataset(config, out, progress=False)
    return turn_station(root, load_bundle(), tmp_path_factory.mktemp("turn_cache"), progress=False)


def _first_index(station: TurnStation, opts: SceneOptions, start: int = 0) -> int:
    """The first cup index from ``start`` whose render has two coins or more."""
    for index in range(start, start + 200):
        scene = render_cup(station.assets, station.seed, index, opts)
        if sum(inst.is_coin for inst in scene.instances) >= 2:
            return index
    raise AssertionError("no cup of two coins")


def test_an_obverse_only_cup_names_its_coins_and_they_lie_reverse_up_once_turned(station: TurnStation) -> None:
    opts = replace(turn_options(480), kind_weights={CupKind.OBVERSE_ONLY: 1.0}, max_coins=4)
    index = _first_index(station, opts)
    scene = render_cup(station.assets, station.seed, index, opts)
    shared = station.assets.mint.shared_designs()
    assert all(inst.design_id in shared for inst in scene.instances if inst.is_coin)
    pipe = replace(station.pipeline, empty_tray=scene.empty, cup_roi=scene.tray)
    obs = pipe.observe(Frame(image=scene.image, source="test"))
    verdict = pipe.decide(obs, scene.expected_type)
    assert verdict.decision == Decision.FLAG and verdict.turn_first
    turn = coins_to_turn(scene, obs, verdict)
    assert turn, verdict.reasons  # the FLAG names coins on the shared obverse to turn over
    assert {inst.label for inst in scene.instances if inst.is_coin} >= turn
    turned = render_cup(station.assets, station.seed, index, replace(opts, turn=turn))
    for inst in turned.instances:  # the same cup, the named coins on their own reverse
        if inst.label in turn:
            assert inst.side == "reverse" and inst.design_id not in shared
    check = check_with_turn(station.pipeline, station.assets, station.seed, index, opts, station.lookalikes)
    assert check.kind == "obverse_only" and check.good and not check.allowed and not check.first
    assert check.turned == len(turn) and check.second is not None


def test_a_pure_cup_lying_reverse_up_is_allowed_and_not_turned_when_it_passes(station: TurnStation) -> None:
    opts = replace(turn_options(480), kind_weights={CupKind.PURE: 1.0}, max_coins=4, reverse_share=1.0)
    index = _first_index(station, opts)
    check = check_with_turn(station.pipeline, station.assets, station.seed, index, opts, station.lookalikes)
    expected = render_cup(station.assets, station.seed, index, opts).expected_type
    assert check.kind == "pure" and check.good
    assert check.allowed == (expected not in station.lookalikes)
    if check.first:
        assert check.turned == 0 and check.second is None


def test_a_contaminated_cup_is_never_passed_wrongly_after_turning(station: TurnStation) -> None:
    opts = replace(turn_options(480), kind_weights={CupKind.CONTAMINATED: 1.0}, max_coins=4)
    checks = [
        check_with_turn(station.pipeline, station.assets, station.seed, i, opts, station.lookalikes) for i in range(3)
    ]
    assert all(c.kind == "contaminated" and not c.good and not c.passed for c in checks)


def test_the_summary_counts_each_kind_and_every_wrong_pass() -> None:
    checks = [
        TurnCheck("pure", True, True, True, 0, None),
        TurnCheck("pure", True, False, False, 2, True),
        TurnCheck("pure", True, False, False, 1, False),
        TurnCheck("contaminated", False, False, False, 1, True),
        TurnCheck("obverse_only", True, False, False, 3, True),
    ]
    s = turn_summary(checks)
    assert s["cups"] == 5 and list(s["kinds"]) == ["pure", "contaminated", "obverse_only"]
    pure = s["kinds"]["pure"]
    assert (pure["cups"], pure["allowed"], pure["first"], pure["turned"], pure["second"], pure["passed"]) == (
        3,
        1,
        1,
        2,
        1,
        2,
    )
    assert s["kinds"]["contaminated"]["second_wrong"] == 1 and s["kinds"]["obverse_only"]["second_wrong"] == 0
    lines = turning_lines({**s, "threshold": 0.97, "first_index": 500_000})
    assert "| pure | 3 | 1 | 1 (0) | 2 | 1 (0) | 2 (66.7%) |" in lines
    assert lines[-1].endswith("Wrong PASSes in all: 1.")
    # one cup ends flagged; without the re-check link its first check would wait too, beside the other four
    assert any(
        line.startswith("A supervisor sees 1 of the 5 cups") and "make 5 queue entries" in line for line in lines
    )


def test_evaluate_turning_refuses_a_check_of_no_cups(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cups must be >= 1"):
        evaluate_turning(tmp_path, load_bundle(), tmp_path, cups=0)
