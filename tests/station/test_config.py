"""The station configuration: good and bad dicts, TOML files, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from station.config import ConfigError, StationConfig, config_from_dict, load_config


@pytest.mark.parametrize(
    ("data", "check"),
    [
        ({}, lambda c: c.name == "station-1" and c.camera.kind == "index" and c.camera.index == 0),  # a real webcam
        ({"name": "pack-2", "sound": False}, lambda c: c.name == "pack-2" and not c.sound),
        ({"camera": {"kind": "index", "index": 2, "fps": 30}}, lambda c: c.camera.index == 2 and c.camera.fps == 30),
        ({"camera": {"kind": "url", "url": "rtsp://cam/1"}}, lambda c: c.camera.url == "rtsp://cam/1"),
        ({"camera": {"kind": "folder", "folder": "cups"}}, lambda c: c.camera.folder == Path("cups")),
        ({"target_precision": 0.995}, lambda c: c.target_precision == 0.995),
        ({"cup_region": {"cx": 320, "cy": 240, "radius": 200}}, lambda c: c.cup_region.radius == 200),
        ({"database_url": "postgresql+psycopg://db/cupcheck"}, lambda c: c.database_url.startswith("postgresql")),
        ({"store": "/mnt/cupcheck-share"}, lambda c: c.store == Path("/mnt/cupcheck-share")),
        ({}, lambda c: c.backend == "onnx"),
        ({"backend": "torch"}, lambda c: c.backend == "torch"),
        ({}, lambda c: c.audit_share == 0.02),
        ({"audit_share": 0}, lambda c: c.audit_share == 0.0),
    ],
)
def test_good_configs(data: dict[str, Any], check: Any) -> None:
    cfg = config_from_dict(data)
    assert isinstance(cfg, StationConfig)
    assert check(cfg)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"nmae": "typo"}, "nmae: unknown setting"),
        ({"camera": {"kind": "usb"}}, "camera.kind"),
        ({"camera": {"kind": "url"}}, "needs url"),
        ({"camera": {"kind": "folder"}}, "needs folder"),
        ({"camera": {"fps": 0}}, "camera.fps"),
        ({"camera": {"index": -1}}, "camera.index"),
        ({"target_precision": 1.0}, "target_precision"),
        ({"target_precision": 0.3}, "target_precision"),
        ({"cup_region": {"cx": 1, "cy": 1}}, "cup_region.radius"),
        ({"name": ""}, "name"),
        ({"sound": "loud"}, "sound"),
        ({"backend": "cuda"}, "backend"),
        ({"audit_share": 1.5}, "audit_share"),
    ],
)
def test_bad_configs_name_the_setting(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert where in str(err.value)


def test_toml_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text('name = "bench"\nsound = false\n[camera]\nkind = "index"\nindex = 1\n')
    cfg = load_config(path)
    assert (cfg.name, cfg.sound, cfg.camera.kind, cfg.camera.index) == ("bench", False, "index", 1)


def test_bad_toml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text('name = "bench"\n[camera\nkind = "index"\n')
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_config(path)


def test_bad_value_in_file_names_file_and_setting(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text("[camera]\nfps = -5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "camera.fps" in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_no_file_gives_defaults() -> None:
    assert load_config(None) == StationConfig()
