"""The model panel's words on the shipped bundle: the threshold shown is the one a cup is held to."""

from __future__ import annotations

from calibration.risk import PASS_FLOOR
from models.bundle import load_bundle
from station.controllers.model_info import describe_model


def test_a_loose_target_shows_the_floor_it_is_held_to_and_counts_the_passes_there() -> None:
    bundle = load_bundle()
    choice = bundle.rechoose(0.98)
    assert choice.floored  # 98 % certifies 0.078 on the shipped calibration pairs
    good = bundle.cal_correct.astype(bool)
    held = float((choice.accepted(bundle.cal_scores) & good).sum() / good.sum())
    assert round(held, 2) != round(choice.coverage, 2)  # 41 % pass at the floor, 42 % at 0.078
    line = describe_model(None, 0.98)[2]
    assert line.startswith(f"PASS when p ≥ {PASS_FLOOR:.3f} (certified {choice.threshold:.3f}; no cup under the floor")
    assert f"{held:.0%} of good cups pass" in line and f"{choice.coverage:.0%} of good cups" not in line


def test_the_shipped_threshold_is_shown_as_certified() -> None:
    bundle = load_bundle()
    line = describe_model()[2]
    assert line.startswith(f"PASS when p ≥ {bundle.threshold.threshold:.3f}: precision ≥ 99.5%")
    assert "certified" not in line and "floor" not in line
    assert f"{bundle.threshold.coverage:.0%} of good cups pass" in line
    assert bundle.threshold.applied == bundle.threshold.threshold
