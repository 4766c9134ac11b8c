"""``cupcheck backup``: a station home copied into a folder that works as a home (verdicts, photographs, registry,
gallery, set-up), a second run copying only what changed, and the folders it refuses."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from db.repository import VerdictRepository
from db.schema import Role
from db.store import ContentStore
from models.registry import SHIPPED, ModelEntry, load_registry, promote, register_version
from station.backup import BackupError, back_up, check_backup
from station.cli import main
from station.config import StationConfig, config_from_dict
from tests.db.factories import OPERATOR, OPERATOR_PIN, make_record


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A station home with a verdict log, two registered models sharing a file, a gallery and its set-up files."""
    home = tmp_path / "home"
    home.mkdir()
    repo = VerdictRepository.open(home)
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        for seed in (1, 2):
            repo.log_verdict(make_record(seed))
    finally:
        repo.engine.dispose()
    for night in (1, 2):
        folder = tmp_path / f"bundle-{night}"
        folder.mkdir()
        (folder / "verdict.json").write_text(json.dumps({"night": night}))
        (folder / "calibration.npz").write_bytes(b"pairs" * 1000)  # the same each night: stored once, linked
        register_version(home, folder, ModelEntry(f"verdict-{night}", f"2026-01-0{night}T02:00:00+00:00", SHIPPED))
    promote(home, "verdict-2")
    (home / "gallery").mkdir()
    (home / "gallery" / "manifest.json").write_text('{"index": "index-1.faiss"}')
    (home / "gallery" / "index-1.faiss").write_bytes(b"\0" * 64)
    (home / "calibration.json").write_text('{"px_per_mm": 8}')
    (home / "orders.csv").write_text("A-1,t0000\n")
    return home


def _verdicts(folder: Path) -> int:
    with sqlite3.connect(folder / "cupcheck.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])


def test_a_backup_is_a_home_and_a_second_one_copies_what_changed(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "usb" / "backup"
    first = back_up(StationConfig(), home, out)
    assert first.database.startswith(f"{home / 'cupcheck.db'} copied")
    assert first.images_new > 0 and first.images_kept == 0
    assert _verdicts(out) == 2
    restored = VerdictRepository.open(out)  # the backup used as a home
    try:
        (item,) = [c for c in restored.cup_coins(1)][:1]
        assert item.crop_ref is not None and restored.read_blob(item.crop_ref)  # the crop is there
    finally:
        restored.engine.dispose()
    assert load_registry(out).current == "verdict-2"
    blobs = list((out / "models" / ".blobs").iterdir())
    assert blobs and all(b.stat().st_nlink > 1 for b in blobs)  # versions still share their stored files
    assert (out / "gallery" / "index-1.faiss").read_bytes() == b"\0" * 64
    assert (out / "orders.csv").read_text() == "A-1,t0000\n" and (out / "calibration.json").is_file()
    assert not list(out.rglob("*.lock")) and not list(out.rglob("*.tmp"))
    assert json.loads((out / "backup.json").read_text())["home"] == str(home)
    problems = check_backup(out).problems  # the fixture's gallery and bundles are stand-ins: the check says so
    assert [p.split(":")[0] for p in problems] == ["the gallery does not load", "the model registry does not load"]

    repo = VerdictRepository.open(home)
    try:
        repo.log_verdict(make_record(3))
    finally:
        repo.engine.dispose()
    (home / "orders.csv").write_text("A-1,t0000\nA-2,t0001\n")
    second = back_up(StationConfig(), home, out)
    assert second.images_new > 0 and second.images_kept == first.images_new
    assert second.files == 1  # orders.csv; the registry and gallery did not change
    assert _verdicts(out) == 3


def test_a_server_database_is_left_to_its_tools(home: Path, tmp_path: Path) -> None:
    config = config_from_dict({"database_url": "postgresql+psycopg://cupcheck@dbhost/cupcheck"})
    report = back_up(config, home, tmp_path / "out")
    assert "pg_dump" in report.database and not (tmp_path / "out" / "cupcheck.db").exists()
    assert report.images_new > 0


def test_a_backup_may_not_overlap_what_it_copies(home: Path, tmp_path: Path) -> None:
    for out in (home, home / "backup", tmp_path):
        with pytest.raises(BackupError, match="overlaps"):
            back_up(StationConfig(), home, out)


def test_the_command(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "--home", str(home), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0].startswith("database: ")
        and out[1].startswith("images: ")
        and out[1].endswith(", 0 already in the backup")
    )
    assert out[-1] == f"backup: {tmp_path / 'out'} (restore: use it as the station home)"
    assert main(["backup", "--home", str(home), "--out", str(home / "inside")]) == 2
    assert "overlaps" in capsys.readouterr().err


def test_a_check_finds_what_would_not_restore(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "backup"
    shutil.rmtree(home / "gallery")  # the fixture's gallery and models are stand-ins that would not load
    shutil.rmtree(home / "models")
    back_up(StationConfig(), home, out)
    found = check_backup(out)
    assert found.sound and found.verdicts == 2 and found.images > 0
    assert main(["backup", "--check", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "sound: it restores whole (use the folder as the station home)"

    lost, changed = sorted(ContentStore(out).iter_refs())[:2]
    ContentStore(out).path(lost[0]).unlink()
    ContentStore(out).path(changed[0]).write_bytes(b"bit rot")
    (out / "gallery").mkdir()
    (out / "gallery" / "manifest.json").write_text("{}")
    found = check_backup(out)
    assert (found.missing, found.damaged) == ((lost[0],), (changed[0],))
    assert len(found.problems) == 1 and found.problems[0].startswith("the gallery does not load")
    assert main(["backup", "--check", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"missing: {lost[0]}" in printed and printed.splitlines()[-1].startswith("NOT SOUND: 1 missing, 1 damaged")
    with pytest.raises(BackupError, match="is not a backup"):
        check_backup(home)
