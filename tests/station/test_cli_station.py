"""``cupcheck station`` and ``cupcheck review``: argument and configuration errors exit 2 with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli import main


def test_station_refuses_a_camera_without_its_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["station", "--camera", "url"]) == 2
    err = capsys.readouterr().err
    assert "cupcheck station: error:" in err and 'needs url = "..."' in err


def test_station_reports_a_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "station.toml"
    cfg.write_text("[camera]\nkind = 'usb'\n")
    assert main(["station", "--config", str(cfg)]) == 2
    assert "camera.kind" in capsys.readouterr().err


def test_review_reports_a_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
