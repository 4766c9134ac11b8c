"""The model panel's registry lines."""

from __future__ import annotations

import json
from pathlib import Path

from models.registry import SHIPPED, ModelEntry, promote, register_version


def test_model_panel_lines_show_the_history(tmp_path: Path) -> None:
    from station.controllers.model_info import describe_registry

    home = tmp_path / "home"
    assert describe_registry(home) == [f"In force: {SHIPPED} (0 retrained versions registered)"]
    register_version(home, _bundle_dir(tmp_path), ModelEntry("verdict-aaaa", "2026-01-01T00:00:00+00:00", SHIPPED))
    promote(home, "verdict-aaaa")
    lines = describe_registry(home)
    assert lines[0] == "In force: verdict-aaaa (1 retrained versions registered)"
    assert lines[1].endswith(f"promote {SHIPPED} → verdict-aaaa")


def _bundle_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "verdict.json").write_text(json.dumps({}))
    return folder
