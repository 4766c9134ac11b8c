"""The verdict report's by-kind breakdown: shown at a threshold that means something, never passing refused pairs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from calibration.reports import reliability_bins
from calibration.risk import choose_threshold, passes
from models.eval_real import real_pass_counts, real_target_table
from models.eval_verdict import (
    BUNDLE_TRAIN,
    breakdown_threshold,
    check_held_out,
    recorded_sets,
    reliability_on_passable,
)
from models.features import FEATURES
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.train.pairs import Pair, PairTable


def _scores(n_clean: int, n_mixed: int, error_every: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_clean`` correct pairs on top, then ``n_mixed`` with one error in ``error_every``, then refused pairs
    (p = 0: half of them correct, as pure cups showing a shared obverse)."""
    rng = np.random.default_rng(seed)
    top = np.sort(rng.uniform(0.9, 1.0, n_clean))[::-1]
    mid = np.sort(rng.uniform(0.2, 0.9, n_mixed))[::-1]
    refused = np.zeros(400)
    scores = np.concatenate([top, mid, refused])
    correct = np.concatenate([np.ones(n_clean, bool), np.arange(n_mixed) % error_every != 0, np.arange(400) % 2 == 0])
    return scores, correct


def test_certified_threshold_is_used_when_there_is_one() -> None:
    s, y = _scores(900, 200, 5)
    choice = choose_threshold(s, y, target=0.995, delta=0.05)
    assert choice.can_pass
    thr, label = breakdown_threshold(s, y, choice, 0.05)
    assert thr == choice.threshold and label == "certified threshold"


def test_without_one_the_highest_lower_target_that_certifies_is_used() -> None:
    s, y = _scores(80, 600, 12)  # too few clean passes for 99.5 %, enough for a lower target
    choice = choose_threshold(s, y, target=0.995, delta=0.05)
    assert not choice.can_pass
    thr, label = breakdown_threshold(s, y, choice, 0.05)
    assert label.startswith("threshold certified at the highest target that certifies")
    target = float(label.rsplit(", ", 1)[1])
    assert target < 0.995 and choose_threshold(s, y, target=target, delta=0.05).threshold == thr
    assert math.isfinite(thr) and thr > 0


def test_refused_pairs_never_pass_even_when_nothing_is_certified() -> None:
    # a ranking that certifies nothing: errors from the very top, and most correct pairs refused (p = 0)
    s = np.concatenate([np.linspace(0.99, 0.5, 100), np.zeros(500)])
    y = np.concatenate([np.arange(100) % 2 == 0, np.ones(500, bool)])
    choice = choose_threshold(s, y, target=0.995, delta=0.05)
    thr, label = breakdown_threshold(s, y, choice, 0.05)
    assert label.startswith("uncertified threshold")
    assert thr > 0  # half of the correct pairs the rules let through, not half of all correct pairs (p = 0)
    ok = passes(s, thr)
    assert not ok[s == 0].any() and ok[s >= thr].all()
    assert not passes(np.zeros(3), 0.0).any()


def _real_row(photo: str, kind: str, denom: str | None, passed: list[str]) -> dict[str, object]:
    return {"photo": photo, "kind": kind, "denomination": denom, "pass": passed}


def test_real_pass_counts_true_wrong_and_mixed() -> None:
    singles = [
        _real_row("a", "single", "10c", ["10c"]),
        _real_row("b", "single", "20c", ["10c", "20c"]),
        _real_row("c", "single", "1e", []),
    ]
    mixed = [_real_row("m1", "mixed", None, []), _real_row("m2", "mixed", None, ["5c", "1e"])]
    got = real_pass_counts(singles, mixed, lambda r: r["pass"])
    assert got == {"single_pass_true": 2, "single_pass_wrong": 1, "mixed_pass": 2}


def test_real_target_table_shows_uncertified_targets_as_never() -> None:
    r = {
        "single": 26,
        "mixed": 60,
        "at": {
            "0.98": {"threshold": 0.9689, "single_pass_true": 2, "single_pass_wrong": 0, "mixed_pass": 0},
            "0.995": {"threshold": math.inf, "single_pass_true": 0, "single_pass_wrong": 0, "mixed_pass": 0},
        },
    }
    lines = real_target_table(r)
    assert "| 0.98 | 0.9689 | 2/26 | 0 | 0 (60 photos) |" in lines
    assert "| 0.995 | never | 0/26 | 0 | 0 (60 photos) |" in lines


def test_eval_verdict_needs_synthetic_or_real_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from station.cli import main

    assert main(["eval", "verdict", "--out", str(tmp_path / "r")]) == 2
    assert "give --data" in capsys.readouterr().err
    assert main(["eval", "verdict", "--out", str(tmp_path / "r"), "--real", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_bundle_calibrated_on_several_mints_names_each_and_their_pairs_join_in_order() -> None:
    assert recorded_sets(None) == [] and recorded_sets("") == []
    assert recorded_sets("/d/cal105") == [Path("/d/cal105")]
    assert recorded_sets(["/d/cal105", "/d/cal106"]) == [Path("/d/cal105"), Path("/d/cal106")]

    def part(n: int, correct: bool, value: float, extra: bool = True) -> PairTable:
        pairs = [Pair(i, "t0", correct, "pure", "true") for i in range(n)]
        bags = [np.full((2, 3), value) for _ in range(n)]
        more = {"softmax": np.full(n, value if extra else 1.0)}
        if extra:
            more["vote_share"] = np.full(n, value)
        return PairTable(pairs, np.full((n, len(FEATURES)), value), bags, more)

    joined = PairTable.concat([part(2, True, 0.1), part(3, False, 0.2, extra=False)])
    assert joined.y.tolist() == [True, True, False, False, False]
    assert joined.x.shape == (5, len(FEATURES)) and joined.x[2, 0] == 0.2 and len(joined.bags) == 5
    assert list(joined.extra) == ["softmax"]  # only what every part has
    assert joined.extra["softmax"].tolist() == [0.1, 0.1, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="no pair table"):
        PairTable.concat([])


def test_real_drawn_cups_are_counted_by_kind_at_every_threshold(real_data: Path, tmp_path: Path) -> None:
    from models.bundle import load_bundle
    from models.eval_real import evaluate_real_cups, real_cups_lines
    from tests.models.train.real_helpers import write_tiny_real_root

    bundle = load_bundle()
    plot = tmp_path / "report" / "real_cups.png"
    r = evaluate_real_cups(
        write_tiny_real_root(real_data, tmp_path / "real"), bundle, cups=40, progress=False, plot=plot
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and r["plot"] == "real_cups.png"
    assert r["currencies"] == ["euro"] and "won" in r["skipped"]
    assert r["cups"] == 40 and sum(g["n"] for g in r["groups"].values()) == r["pairs"]
    assert list(r["at"]) == ["bundle", "0.95", "0.98", "0.99", "0.995"]
    assert r["at"]["bundle"]["threshold"] == bundle.threshold.threshold
    wrong_groups = [g for g in r["groups"] if g != "pure"]
    for k, v in r["at"].items():
        assert v["pass"] == sum(g["pass"][k] for g in r["groups"].values())
        assert v["wrong"] == sum(r["groups"][g]["pass"][k] for g in wrong_groups)
        assert v["pure_pass"] == r["groups"]["pure"]["pass"][k] <= v["pure"] == r["groups"]["pure"]["n"]
    assert r["at"]["0.995"]["pass"] <= r["at"]["0.99"]["pass"] <= r["at"]["0.95"]["pass"]
    text = "\n".join(real_cups_lines(r))
    assert "40 cups drawn from the euro test crops" in text and "Not tested: won" in text


def test_precision_at_a_coverage_no_pass_reaches_is_not_a_number() -> None:
    """Refused pairs score 0 and never pass: a coverage reached only by counting them as PASSes has no precision."""
    import math

    from calibration.risk import precision_coverage_curve
    from models.eval_verdict import precision_at_coverage

    scores = np.array([0.99, 0.98, 0, 0, 0, 0, 0, 0, 0])
    y = np.array([True, True, True, True, True, False, False, False, False])
    assert precision_coverage_curve(scores, y).thresholds[-1] == 0
    passing = precision_coverage_curve(scores, y).passing()
    assert passing.thresholds.tolist() == [0.99, 0.98] and passing.coverage.tolist() == [0.2, 0.4]
    assert precision_at_coverage(scores, y, 0.3) == 1.0
    assert math.isnan(precision_at_coverage(scores, y, 0.5))


@pytest.fixture(scope="module")
def mints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny synthetic data sets: two of mint seed 51 (different folders and cup counts), one of seed 52."""
    root = tmp_path_factory.mktemp("mints")
    out = {}
    for name, seed, cups in (("a", 51, 2), ("a_again", 51, 1), ("b", 52, 1)):
        out[name] = root / name
        scene = SceneOptions(max_coins=3, real_fraction=0.0)
        write_dataset(SynthConfig(n_types=3, n_cups=cups, seed=seed, scene=scene), out[name], progress=False)
    return out


def test_a_test_set_that_is_the_calibration_set_is_refused(mints: dict[str, Path]) -> None:
    for cal in (mints["a"], mints["a_again"]):  # the same folder, or another rendering of the same mint
        with pytest.raises(ValueError, match=r"is the calibration set .*mint seed 51, 3 types"):
            check_held_out(mints["a"], trained=[(BUNDLE_TRAIN, mints["b"])], calibrated=[cal])


def test_the_test_types_are_called_new_to_the_voter_only_when_every_training_set_was_checked(
    mints: dict[str, Path], tmp_path: Path
) -> None:
    fresh = check_held_out(mints["b"], trained=[(BUNDLE_TRAIN, mints["a"])], calibrated=[mints["a_again"]])
    assert fresh.new_to_voter and fresh.warnings == ()
    seen = check_held_out(mints["a"], trained=[(BUNDLE_TRAIN, mints["a_again"])], calibrated=[mints["b"]])
    assert not seen.new_to_voter
    assert seen.warnings == (
        f"test data {mints['a']} has the same mint (test seed 51, 3 types; other seed 51, 3 types) with "
        f"{BUNDLE_TRAIN} {mints['a_again']}: those types are not new to the voter",
    )
    away = check_held_out(mints["b"], trained=[(BUNDLE_TRAIN, tmp_path / "gone")], calibrated=[mints["a"]])
    assert not away.new_to_voter and "has no readable mint.json" in away.warnings[0]
    unrecorded = check_held_out(mints["b"], trained=[("--data-train", mints["a"])], calibrated=[])
    assert not unrecorded.new_to_voter and "the bundle records no training data set" in unrecorded.warnings[0]


def test_the_reliability_diagram_leaves_out_the_pairs_the_hard_rules_refused(tmp_path: Path) -> None:
    scores, correct = _scores(200, 300, 4)  # 400 refused pairs (p = 0), half of them correct
    rel = reliability_on_passable(scores, correct, tmp_path / "rel.png")
    assert rel["pairs"] == 500 and rel["refused"] == 400 and rel["refused_correct"] == 200
    kept = scores > 0
    assert rel["ece"] == pytest.approx(reliability_bins(scores[kept], correct[kept]).expected_calibration_error)
    assert rel["ece"] < reliability_bins(scores, correct).expected_calibration_error
    assert (tmp_path / "rel.png").stat().st_size > 0
    none = reliability_on_passable(np.zeros(5), np.ones(5, bool), tmp_path / "none.png")
    assert none["pairs"] == 0 and math.isnan(none["ece"]) and not (tmp_path / "none.png").exists()


def test_eval_verdict_refuses_max_cups_below_one_and_the_calibration_set_as_test_set(
    mints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from station.cli import main

    base = ["eval", "verdict", "--data", str(mints["a"]), "--out", str(tmp_path / "r")]
    assert main([*base, "--max-cups", "0"]) == 2
    assert "--max-cups must be >= 1, got 0" in capsys.readouterr().err
    args = [*base, "--data-train", str(mints["b"]), "--data-cal", str(mints["a_again"]), "--turn-cups", "0"]
    assert main(args) == 2
    assert f"test data {mints['a']} is the calibration set {mints['a_again']}" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.md").exists()
