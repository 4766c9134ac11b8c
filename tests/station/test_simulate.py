"""``cupcheck simulate-day``: the closed loop end to end on a few cups with the shipped models, and the ceiling
the hard rules put on auto-pass, from the scenes' ground truth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from db.repository import VerdictRepository
from models.synth.mint import generate_mint
from models.synth.scene import CupKind, SceneAssets, SceneOptions, render_cup, rules_allow
from station.cli import main
from station.simulate import CycleCounts, lookalike_types


def test_the_hard_rules_allow_only_cups_whose_coins_show_their_own_side() -> None:
    assets = SceneAssets(generate_mint(12, 7))
    shared = assets.mint.shared_designs()
    families = {t.family for t in assets.mint.types}
    # the mint's shared designs are exactly the obverses of families with more than one member
    assert shared == {
        t.obverse.id for t in assets.mint.types if sum(u.family == t.family for u in assets.mint.types) > 1
    }
    assert shared and len(shared) <= len(families)
    for share, allowed in ((1.0, True), (0.0, False)):
        opts = SceneOptions(image_size=256, max_coins=4, reverse_share=share, kind_weights={CupKind.PURE: 1.0})
        scenes = [render_cup(assets, 8, i, opts) for i in range(12)]
        several = [s for s in scenes if sum(inst.is_coin for inst in s.instances) >= 2]
        assert several, "no pure cup of two coins or more among 12"
        assert all(rules_allow(s, shared, 2) == allowed for s in several)
        # a single coin is never enough under a two-coin rule, whichever side it shows
        single = [s for s in scenes if sum(inst.is_coin for inst in s.instances) == 1]
        assert not any(rules_allow(s, shared, 2) for s in single)
    # a near-twin's cups are checked by a person whatever they show
    twins = lookalike_types(assets)
    assert twins == {t.id for t in assets.mint.types if t.twin_of} and twins
    opts = SceneOptions(image_size=256, max_coins=4, reverse_share=1.0, kind_weights={CupKind.PURE: 1.0})
    scenes = [render_cup(assets, 8, i, opts) for i in range(60)]
    of_twins = [s for s in scenes if s.expected_type in twins and sum(i.is_coin for i in s.instances) >= 2]
    assert of_twins and not any(rules_allow(s, shared, 2, twins) for s in of_twins)
    assert all(rules_allow(s, shared, 2) for s in of_twins)


def _row(report: str) -> list[str]:
    row = next(line for line in report.splitlines() if line.startswith("| 1 |"))
    return [c.strip() for c in row.strip("|").split("|")]


def test_precision_counts_every_pass_the_station_gave_after_turning_too() -> None:
    """A wrong PASS after turning ships a wrong cup as surely as one at the first check."""
    counts = CycleCounts(passed=10, wrong=0, turned=8, turned_passed=5, turned_wrong=1)
    assert counts.all_passed == 15 and counts.precision == 14 / 15
    assert math.isnan(CycleCounts(turned=3).precision)


def test_simulate_day_reports_auto_pass_beside_what_the_rules_allow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    args = ["simulate-day", "--cups", "6", "--cycles", "1", "--types", "4", "--reverse-share", "1"]
    args += ["--audit-share", "1", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "cycle 1: auto-pass" in printed and "the hard rules allow" in printed
    report = (out / "report.md").read_text()
    assert "| rules allow |" in report and (out / "cycles.png").stat().st_size > 0
    cells = _row(report)
    clean, allowed, passed, wrong = int(cells[3]), int(cells[4].split()[0]), int(cells[5]), int(cells[6])
    assert 0 <= allowed <= clean <= 6 and 0 <= wrong <= passed <= 6
    # every FLAG is ruled on, and with --audit-share 1 every PASS too
    assert cells[12] == f"6 ({passed})"
    # one cycle: the model in force is the one the day started with, judging the same cups
    assert cells[8] == f"{cells[7]} ({wrong} wrong)"
    assert cells[10] == "0: 0 (0)"  # every coin lay reverse up: nothing to turn
    assert main(["simulate-day", "--reverse-share", "1.5", "--out", str(out)]) == 2
    assert "--reverse-share must be between 0 and 1" in capsys.readouterr().err
    assert main(["simulate-day", "--audit-share", "-0.1", "--out", str(out)]) == 2
    assert "--audit-share must be between 0 and 1" in capsys.readouterr().err
    assert main(["simulate-day", "--target", "5", "--out", str(out)]) == 2  # refused before any cup is drawn
    assert "--target must be in (0, 1), got 5.0" in capsys.readouterr().err
    assert main(["simulate-day", "--delta", "0", "--out", str(out)]) == 2
    assert "--delta must be in (0, 1), got 0.0" in capsys.readouterr().err
    assert main(["simulate-day", "--references-per-design", "-1", "--out", str(out)]) == 2
    assert "--references-per-design must be >= 0, got -1" in capsys.readouterr().err
    assert main(["simulate-day", "--enrol-photos", "0", "--out", str(out)]) == 2
    assert "--enrol-photos must be >= 1, got 0" in capsys.readouterr().err
    assert main(["retrain", "--home", str(tmp_path / "h"), "--references-per-design", "-1"]) == 2
    assert "--references-per-design must be >= 0, got -1" in capsys.readouterr().err


def test_the_operator_turns_the_coins_a_flag_names_and_checks_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    args = ["simulate-day", "--cups", "5", "--cycles", "1", "--types", "4", "--reverse-share", "0"]
    args += ["--operator-turns", "--audit-share", "1", "--no-empty-tray", "--out", str(out)]
    assert main(args) == 0
    cells = _row((out / "report.md").read_text())
    passed = int(cells[5])
    turned, rest = cells[10].split(": ")
    turned_passed = int(rest.split()[0])
    # every coin lay obverse up on the family's shared side: nothing passes at first, and each cup whose FLAG
    # named coins to turn is checked a second time, logged as the first check's re-check; the oracle rules on
    # each cup once, as the review queue shows it (with --audit-share 1, every PASS too)
    assert passed == 0 and int(turned) >= 1
    assert cells[12] == f"5 ({turned_passed})"
    repo = VerdictRepository.open(out / "home")
    try:
        queue = repo.review_queue(limit=50, margin=1.0)
        assert len(queue) == 5 and sum(it.recheck_of is not None for it in queue) == int(turned)
        # the nights count the oracle's audits at the share it drew them at, not the review window's default
        audit = json.loads((out / "home" / "models" / "registry.json").read_text())
        audited = [v["metrics"]["pass_audit"]["audited"] for v in audit["versions"] if "pass_audit" in v["metrics"]]
        assert audited == [turned_passed]
    finally:
        repo.engine.dispose()
    # the same --out again would learn the same cups twice
    assert main(args) == 2 and "holds an earlier simulation" in capsys.readouterr().err


def test_the_oracle_rules_what_lies_there_whatever_the_detector_called_it(tmp_path: Path) -> None:
    """A real coin the detector called an object is ruled a coin of its type, not 'not a coin'."""
    import numpy as np

    from db.schema import Role
    from models.types import CoinInstance, Decision
    from station.simulate import SUPERVISOR, SUPERVISOR_PIN, _oracle
    from tests.db.factories import OPERATOR, OPERATOR_PIN, make_record

    assets = SceneAssets(generate_mint(6, 7))
    options = SceneOptions(image_size=480, max_coins=8, kind_weights={CupKind.PURE: 1.0})
    scene = next(s for s in (render_cup(assets, 8, i, options) for i in range(50)) if len(s.instances) >= 2)
    coins = [s for s in scene.instances if s.is_coin]
    found = []
    for k, s in enumerate(coins):  # every coin found, the first called an object
        ys, xs = np.nonzero(scene.labels == s.label)
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
        x1, y1 = int(xs.min()), int(ys.min())
        found.append(
            CoinInstance(
                bbox=box,
                mask=(scene.labels == s.label)[y1 : int(ys.max()) + 1, x1 : int(xs.max()) + 1],  # as segmented
                mask_origin=(x1, y1),
                confidence=0.9,
                center=(float(xs.mean()), float(ys.mean())),
                axes=(10.0, 10.0),
                is_coin=k != 0,
            )
        )
    (tmp_path / "home").mkdir()
    repo = VerdictRepository.open(tmp_path / "home")
    repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
    repo.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
    tops = tuple(scene.expected_type if i.is_coin else None for i in found)
    record = make_record(1, expected=str(scene.expected_type), order=None, top_types=tops, decision=Decision.FLAG)
    cup = repo.cup_of_verdict(repo.log_verdict(record))
    _oracle(repo, cup, scene, found)
    truth = {c.index: c.true_type for c in repo.training_export().coins}
    assert truth == {k: s.type_id for k, s in enumerate(coins)}
    repo.engine.dispose()
