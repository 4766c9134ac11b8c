"""What a run killed while it copied a version into the registry leaves there: a temporary copy (before
``.staging-``: ``.verdict-<v>.<random>``) or a version folder renamed into place with no registry entry. Both hold
hard links to stored files, so a pruned file's space was never freed: the next registry write that installs a
version removes them, and so does ``cupcheck models prune``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from models.registry import (
    BLOBS_DIR,
    SHIPPED,
    ModelEntry,
    load_registry,
    register_version,
    registry_root,
    version_dir,
)
from station.cli import main


def _bundle(tmp_path: Path, name: str, pairs: bytes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "verdict.json").write_text(json.dumps({"night": name}))
    (folder / "calibration.npz").write_bytes(pairs)
    return folder


def _leave_killed_copies(home: Path, tmp_path: Path) -> list[Path]:
    """The folders killed runs left, each holding links to the stored files, as the copy left them."""
    root = registry_root(home)
    kept = version_dir(home, "verdict-0000")
    left = [root / ".verdict-8ff735fc.cnsmyb7h", root / ".staging-verdict-1111.ab12cd34", root / "verdict-2222"]
    for folder in left:
        folder.mkdir()
        for f in kept.iterdir():
            os.link(f, folder / f.name)  # what the registry's copy makes: links to the stored file
    return left


def test_the_next_registration_removes_what_a_killed_copy_left(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_version(home, _bundle(tmp_path, "b0", b"pairs" * 1000), ModelEntry("verdict-0000", "2026-01-01", SHIPPED))
    left = _leave_killed_copies(home, tmp_path)
    register_version(home, _bundle(tmp_path, "b3", b"other" * 1000), ModelEntry("verdict-3333", "2026-01-02", SHIPPED))
    assert [f for f in left if f.exists()] == []
    assert [e.version for e in load_registry(home).versions] == ["verdict-0000", "verdict-3333"]
    assert (version_dir(home, "verdict-0000") / "calibration.npz").read_bytes() == b"pairs" * 1000


def test_prune_removes_what_a_killed_copy_left_and_frees_the_stored_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    register_version(home, _bundle(tmp_path, "b0", b"pairs" * 1000), ModelEntry("verdict-0000", "2026-01-01", SHIPPED))
    register_version(home, _bundle(tmp_path, "b1", b"night" * 1000), ModelEntry("verdict-0001", "2026-01-02", SHIPPED))
    left = _leave_killed_copies(home, tmp_path)
    assert main(["models", "--home", str(home), "prune", "--keep", "0", "--dry-run"]) == 0
    assert all(f.exists() for f in left)
    out = capsys.readouterr().out
    assert "would remove 3 folders left by a run stopped while it copied a model into the registry" in out
    assert main(["models", "--home", str(home), "prune", "--keep", "0"]) == 0
    assert [f for f in left if f.exists()] == []
    blobs = registry_root(home) / BLOBS_DIR
    assert sorted(p.name for p in blobs.iterdir()) == []  # nothing in force: every stored file went
    names = sorted(p.name for p in registry_root(home).iterdir())
    assert names == [BLOBS_DIR, "registry.json"]
