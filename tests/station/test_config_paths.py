"""A station file's relative paths mean the folders beside it, wherever the command that reads it runs (a cron job
starts in another folder than the operator's shell)."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli import main
from station.config import load_config


def _station_file(site: Path) -> Path:
    site.mkdir()
    path = site / "station.toml"
    path.write_text(
        'home = "home9"\nstore = "share"\nmodels = "share"\ngallery = "share"\nbundle = "models/verdict.json"\n'
        'database_url = "sqlite:///log/cupcheck.db"\n[camera]\nkind = "folder"\nfolder = "cups"\n'
    )
    return path


def test_relative_paths_are_taken_from_the_station_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "relsite"
    path = _station_file(site)
    elsewhere = tmp_path / "cron"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("..") / path.relative_to(tmp_path))  # ../relsite/station.toml
    assert (config.home, config.store, config.models, config.gallery) == (
        site / "home9",
        site / "share",
        site / "share",
        site / "share",
    )
    assert config.bundle == site / "models" / "verdict.json"
    assert config.camera.folder == site / "cups"
    assert config.database_url == f"sqlite:///{site}/log/cupcheck.db"


def test_absolute_and_home_relative_paths_stay_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    path = tmp_path / "station.toml"
    path.write_text(f'home = "~/cupcheck"\nstore = "{tmp_path / "mnt"}"\n')
    config = load_config(path)
    assert config.home == tmp_path / "user" / "cupcheck"
    assert config.store == tmp_path / "mnt"


def test_doctor_run_from_another_folder_checks_the_station_files_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "relsite"
    site.mkdir()
    (site / "share" / "captures").mkdir(parents=True)
    (site / "station.toml").write_text('home = "home9"\nstore = "share"\n')
    elsewhere = tmp_path / "cron"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    main(["doctor", "--config", str(site / "station.toml"), "--no-camera"])
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[0].startswith(f"ok home {site / 'home9'}: ")
    assert f"ok images shared folder {site / 'share'}" in lines
    assert not (elsewhere / "home9").exists()
