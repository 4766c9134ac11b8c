"""``cupcheck synth`` and ``cupcheck synth-sheet`` end to end, and their argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from station.cli import main

TINY = ["--types", "12", "--cups", "6", "--image-size", "256", "--seed", "3"]


@pytest.fixture(autouse=True)
def _no_shared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the CLI away from the real data folder and the user's cache (fast, hermetic)."""
    monkeypatch.setenv("CUPCHECK_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("CUPCHECK_CACHE", str(tmp_path / "cache"))


def test_synth_then_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    assert main(["synth", *TINY, "--out", str(out), "--kinds", "pure,foreign_object", "--kind-weights", "3,1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 6 cups" in printed and "images/s" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert {c["kind"] for c in manifest["cups"]} <= {"pure", "foreign_object"}
    assert (out / "yolo" / "data.yaml").is_file() and (out / "crops" / "index.csv").is_file()
    sheet = tmp_path / "sheet.png"
    assert main(["synth-sheet", str(out), "--out", str(sheet), "--n", "4"]) == 0
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    before = sorted((out / "yolo" / "images" / "train").iterdir())
    assert main(["synth", *TINY, "--out", str(out), "--seed", "3"]) == 2  # a second mint into the same folder
    assert "already holds a data set (manifest.json, mint.json, yolo, crops)" in capsys.readouterr().err
    assert sorted((out / "yolo" / "images" / "train").iterdir()) == before
    assert main(["synth", *TINY, "--out", str(out / "enrol"), "--kinds", "pure"]) == 0  # its enrolment set beside


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--types", "1", "--cups", "2"], "--types"),
        (["--types", "12", "--cups", "-1"], "--cups"),
        (["--types", "12", "--cups", "2", "--kinds", "pure,bogus"], "unknown cup kind"),
        (["--types", "12", "--cups", "2", "--kinds", "pure", "--kind-weights", "1,2"], "--kind-weights"),
        (["--types", "12", "--cups", "2", "--val-fraction", "2"], "val fraction"),
        (["--types", "12", "--cups", "2", "--reverse-share", "1.5"], "reverse share"),
        (["--types", "12", "--cups", "2", "--workers", "0"], "--workers"),
        (["--types", "12", "--cups", "2", "--image-size", "100000"], "image size must be from 64 to 4096"),
        (["--types", "3", "--cups", "1", "--crop-size", "100000"], "crop size must be from 8 to 4096"),
        (
            ["--types", "6", "--cups", "6", "--max-coins", "1", "--kinds", "contaminated", "--real-fraction", "0"],
            "max coins 1 is too few for contaminated cups, which hold at least 3 coins",
        ),
        (["--types", "6", "--cups", "6", "--max-coins", "2"], "leave contaminated cups out of the kinds"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["synth", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err


def test_a_small_most_coins_is_fine_without_contaminated_cups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pure"
    assert main(["synth", *TINY, "--cups", "2", "--max-coins", "1", "--kinds", "pure", "--out", str(out)]) == 0
    cups = json.loads((out / "manifest.json").read_text())["cups"]
    assert [len(c["instances"]) for c in cups] == [1, 1]


def test_unwritable_output_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["synth", *TINY, "--out", str(blocker / "sub")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_non_numeric_count_is_an_argparse_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["synth", "--types", "many", "--cups", "2", "--out", str(tmp_path)])
    assert info.value.code == 2


def test_sheet_of_missing_dataset_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth-sheet", str(tmp_path / "nothing"), "--out", str(tmp_path / "s.png")]) == 2
    assert "manifest.json" in capsys.readouterr().err
    assert main(["synth-sheet", str(tmp_path / "nothing"), "--out", str(tmp_path / "sheet.txt")]) == 2
    assert "cannot write a picture to" in capsys.readouterr().err


@pytest.mark.parametrize("weights", ["inf,1", "nan,1", "1e308,1e308"])
def test_weights_that_are_not_finite_are_refused_and_leave_nothing_behind(
    weights: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    assert main(["synth", *TINY, "--out", str(out), "--kinds", "pure,empty", "--kind-weights", weights]) == 2
    assert "--kind-weights must" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
    assert main(["synth", *TINY, "--out", str(out), "--kinds", "pure,empty", "--kind-weights", "1,1"]) == 0


def test_obverse_only_for_a_mint_without_a_shared_obverse_and_too_many_cups_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["synth", "--types", "2", "--cups", "3", "--seed", "0", "--image-size", "128"]
    assert main([*args, "--kinds", "obverse_only", "--out", str(tmp_path / "t2")]) == 2
    assert "share an obverse design" in capsys.readouterr().err
    assert main([*args, "--kinds", "obverse_only,pure", "--out", str(tmp_path / "t3")]) == 0
    kinds = {c["kind"] for c in json.loads((tmp_path / "t3" / "manifest.json").read_text())["cups"]}
    assert kinds == {"pure"}
    assert main(["synth", *TINY[:2], "--cups", "10", "--first-index", "999995", "--out", str(tmp_path / "big")]) == 2
    assert "first index 999995 is too large for 10 cups" in capsys.readouterr().err


def test_real_backgrounds_need_the_real_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", *TINY, "--out", str(tmp_path / "ds"), "--real-backgrounds"]) == 2
    assert "--real-backgrounds needs the real data folder" in capsys.readouterr().err
