"""``cupcheck bench camera`` on a few synthetic cups: no false alarm, every knock told where the surroundings allow,
the measured shift close to the applied one."""

from __future__ import annotations

import pytest

from models.eval_movement import bench_movement
from station.cli import main


def test_knocked_cameras_are_told_and_still_ones_are_not() -> None:
    report = bench_movement(40, image_size=480, with_detector=False, progress=False)
    assert report.cups == 40 and report.told >= 4  # most synthetic tables are plain: nothing to tell by
    assert report.false_alarms == 0 and report.nudged_alarms == 0
    assert report.knocked == report.told  # every knock reaches past the tolerance
    assert report.caught >= 3 and report.caught + report.lost == report.knocked  # told ones are all called moved
    assert len(report.lost_features) == report.lost
    median, _, largest = report.centre_error_px
    assert median < 0.3 and largest < 1.0 and report.scale_error < 0.005
    assert report.compare_ms > 0 and report.forward_ms == 0
    lines = report.lines()
    assert lines[1] == f"as taken: 0 of {report.told} called moved (false alarms)"
    assert not any("detector" in line for line in lines)


def test_the_command_prints_the_report_and_checks_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "camera", "--cups", "6", "--size", "320", "--no-detector"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cups rendered: 6; the camera can be told on ") and "one comparison: " in out
    assert main(["bench", "camera", "--cups", "0"]) == 2
    assert "--cups must be at least 1" in capsys.readouterr().err


def test_nothing_measured_reads_n_a_not_zero() -> None:
    report = bench_movement(1, seed=1, with_detector=False, progress=False)
    assert report.told == 0  # a table with nothing to recognise: no error, no timing
    lines = report.lines()
    assert lines[-2] == "cup centre's shift: error median n/a, 95% n/a, largest n/a; scale error at most n/a"
    assert lines[-1] == "one comparison: n/a"
