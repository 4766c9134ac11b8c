"""``cupcheck models``: list, promote, roll back and prune a registry, the home's or one named by --models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from db.repository import VerdictRepository
from db.schema import Role
from models.bundle import FEATURE_SET, load_bundle
from models.gallery import Gallery
from models.registry import PRUNED, SHIPPED, ModelEntry, load_registry, register_version, version_dir
from station.cli import main
from tests.db.factories import OPERATOR, make_record
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import write_bundle


def _bundle(tmp_path: Path, name: str, **changes: Any) -> Path:
    """A folder holding a real verdict bundle (the tiny world's), its JSON changed by ``changes``."""
    source = tmp_path / "tiny-bundle"
    if not source.is_dir():
        write_bundle(source, embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    folder = tmp_path / name
    shutil.copytree(source, folder)
    doc = json.loads((folder / "verdict.json").read_text())
    (folder / "verdict.json").write_text(json.dumps({**doc, **changes}))
    return folder


def _register(models: Path, tmp_path: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        folder = _bundle(tmp_path, f"bundle-{i}", night=i)  # a verdict.json of its own each night
        (folder / "calibration.npz").write_bytes(b"pairs" * 2000)  # the same every night: stored once
        name = f"verdict-{i:04d}"
        register_version(models, folder, ModelEntry(name, f"2026-01-{i + 1:02d}T02:00:00+00:00", SHIPPED))
        names.append(name)
    return names


def test_models_commands_on_a_shared_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "share"
    names = _register(site, tmp_path, 4)
    flags = ["models", "--home", str(tmp_path / "home"), "--models", str(site)]
    for name in names[:3]:
        assert main([*flags, "promote", name]) == 0
    assert f"in force: {names[2]}" in capsys.readouterr().out
    assert main([*flags, "list"]) == 0
    listing = capsys.readouterr().out
    assert f"* {names[2]}" in listing and f"  {names[3]}" in listing and f"  {SHIPPED}" in listing

    assert main([*flags, "prune", "--keep", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"would remove 1 version folder ({names[0]}) and 1 stored file,")
    assert version_dir(site, names[0]).is_dir()
    assert main([*flags, "prune", "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"removed 1 version folder ({names[0]})") and f"kept 3: {', '.join(names[1:])}" in out
    assert load_registry(site).get(names[0]).status == PRUNED and not version_dir(site, names[0]).exists()
    assert main([*flags, "list"]) == 0
    assert f"  {names[0]:<18} {PRUNED}" in capsys.readouterr().out

    assert main([*flags, "promote", names[0]]) == 2
    assert "was pruned" in capsys.readouterr().err
    assert main([*flags, "prune", "--keep", "-1"]) == 2
    assert "--keep must be >= 0" in capsys.readouterr().err
    assert main(["models", "--home", str(tmp_path / "home"), "list"]) == 0  # the home's own registry is empty
    assert f"* {SHIPPED}" in capsys.readouterr().out


def test_the_site_flags_may_follow_the_action_and_win_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "share"
    names = _register(site, tmp_path, 2)
    assert main(["models", "promote", names[1], "--models", str(site), "--home", str(tmp_path / "home")]) == 0
    assert f"in force: {names[1]}" in capsys.readouterr().out
    # before the action a flag holds, after it a flag wins
    assert main(["models", "--models", str(tmp_path / "elsewhere"), "list", "--models", str(site)]) == 0
    assert f"* {names[1]}" in capsys.readouterr().out
    assert main(["models", "--models", str(site), "list", "--home", str(tmp_path / "home")]) == 0
    assert f"* {names[1]}" in capsys.readouterr().out
    assert main(["models", "list", "--home", str(tmp_path / "home")]) == 0  # the home's own registry
    assert f"* {SHIPPED}" in capsys.readouterr().out


def test_models_list_names_the_model_each_station_last_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    names = _register(home, tmp_path, 1)
    assert main(["models", "--home", str(home), "promote", names[0]]) == 0
    assert main(["models", "--home", str(home), "list"]) == 0
    assert "stations" not in capsys.readouterr().out  # no database yet: none is made
    assert not (home / "cupcheck.db").exists()
    repo = VerdictRepository.open(home)
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, "1234")
        repo.log_verdict(make_record(1, station="packing-1", model_version=names[0]))
        repo.log_verdict(make_record(2, station="packing-2", model_version="verdict-old"))
    finally:
        repo.engine.dispose()
    assert main(["models", "--home", str(home), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("stations (the model of each one's newest cup):")
    assert lines[at + 1].split() == ["packing-1", names[0], "2026-01-01", "00:01", "UTC"]
    assert lines[at + 2].split()[:2] == ["packing-2", "verdict-old"] and lines[at + 2].endswith(
        "not the model in force"
    )


def test_a_listing_cut_short_by_its_reader_ends_quietly(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # a reader such as `head` that has gone before anything was written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "station.cli", "models", "--home", str(tmp_path), "list"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 141 and "Traceback" not in done.stderr, done.stderr


def test_a_version_that_would_pass_nothing_is_not_put_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    for name, status, threshold in (("verdict-none", "rejected", None), ("verdict-weak", "rejected", 0.97)):
        folder = _bundle(tmp_path, name)
        metrics = {"threshold": {"threshold": threshold, "target": 0.999}}
        register_version(
            home, folder, ModelEntry(name, "2026-01-01T02:00:00+00:00", SHIPPED, status, metrics, note="fails: x")
        )
    assert main(["models", "--home", str(home), "promote", "verdict-none"]) == 2
    assert "verdict-none certified no threshold at its target precision" in capsys.readouterr().err
    assert load_registry(home).current is None
    assert main(["models", "--home", str(home), "promote", "verdict-weak"]) == 0  # a person's call, said aloud
    assert "warning: the retrain's gate rejected verdict-weak: fails: x" in capsys.readouterr().err


def test_a_bundle_this_software_cannot_run_is_not_put_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In force, a bundle every station refuses would keep them on their fallback and stop every retrain."""
    home = tmp_path / "home"
    for name, changes in (
        ("verdict-good", {}),
        ("verdict-fine", {}),
        ("verdict-old", {"feature_set": 1}),  # its voter measured an older set of pair features
        ("verdict-alien", {"embedder": {"file": str(tmp_path / "embedder.pt"), "version": "another-embedder"}}),
    ):
        entry = ModelEntry(name, "2026-01-01T02:00:00+00:00", SHIPPED)
        register_version(home, _bundle(tmp_path, name, **changes), entry)
    assert FEATURE_SET > 1
    flags = ["models", "--home", str(home)]
    assert main([*flags, "promote", "verdict-old"]) == 2
    err = capsys.readouterr().err
    assert "cannot put in force verdict-old: the voter of bundle" in err and "pair features of set 1" in err
    assert load_registry(home).current is None
    (version_dir(home, "verdict-good") / "voter.txt").unlink()  # a stored file lost since
    assert main([*flags, "promote", "verdict-good"]) == 2
    assert "cannot put in force verdict-good: bundle file " in capsys.readouterr().err
    assert main([*flags, "promote", "verdict-alien"]) == 0  # no gallery here: its embedder is not compared
    # the station's gallery, enrolled with the embedder of the tiny bundle
    Gallery(8, load_bundle(tmp_path / "tiny-bundle" / "verdict.json").embedder_version).save(home / "gallery")
    assert main([*flags, "promote", "verdict-fine"]) == 0
    capsys.readouterr()
    assert main([*flags, "promote", "verdict-alien"]) == 2
    assert "cannot put in force verdict-alien: its embedder is not the gallery's" in capsys.readouterr().err
    # a rollback to a version that cannot run is refused too, and leaves the one in force
    assert main([*flags, "rollback"]) == 2
    assert "cannot roll back to verdict-alien: its embedder is not the gallery's" in capsys.readouterr().err
    assert load_registry(home).current == "verdict-fine"
