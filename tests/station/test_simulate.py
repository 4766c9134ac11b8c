"""``cupcheck simulate-day``: the closed loop end to end on a few cups with the shipped models, and the ceiling
the hard rules put on auto-pass, from the scenes' ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.repository import VerdictRepository
from models.synth.mint import generate_mint
from models.synth.scene import CupKind, SceneAssets, SceneOptions, render_cup, rules_allow
from station.cli import main
from station.simulate import lookalike_types


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
    finally:
        repo.engine.dispose()
