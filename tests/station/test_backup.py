"""``cupcheck backup``: a station home copied into a folder that works as a home (verdicts, photographs, registry,
gallery, set-up), a second run copying only what changed, and the folders it refuses."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import psycopg
import pytest

from db.backup import PG_DUMP_FILE, DumpError, dumped_refs
from db.embedded_pg import running_server
from db.repository import VerdictRepository
from db.schema import Role
from db.session import init_db
from db.store import ContentStore
from models.gallery import Gallery
from models.registry import SHIPPED, ModelEntry, load_registry, promote, register_version
from station.backup import ENROLMENTS_DIR, BackupError, back_up, backup_record, check_backup, restore
from station.cli import main
from station.commands.options import site_flags
from station.config import StationConfig, config_from_dict
from tests.db.factories import OPERATOR, OPERATOR_PIN, make_record
from tests.db.full_disk import files_limited_to
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import enrolled_gallery, write_bundle


def _log(repo: VerdictRepository, seeds: tuple[int, ...]) -> None:
    """Register the operator and log a verdict per seed, then let go of the database."""
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        for seed in seeds:
            repo.log_verdict(make_record(seed))
    finally:
        repo.engine.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A station home with a verdict log, two registered models sharing a file, a gallery and its set-up files."""
    home = tmp_path / "home"
    home.mkdir()
    _log(VerdictRepository.open(home), (1, 2))
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
    (home / "verdict-spool.damaged.jsonl").write_bytes(b"{damaged}\n")  # a journal line set aside for a person
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
    assert (out / "verdict-spool.damaged.jsonl").read_bytes() == b"{damaged}\n"
    assert not list(out.rglob("*.lock")) and not list(out.rglob("*.tmp"))
    assert json.loads((out / "backup.json").read_text())["home"] == str(home.resolve())
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


def test_a_site_database_is_dumped_and_the_dump_restores(tmp_path: Path) -> None:
    """A real PostgreSQL server: the backup dumps it with pg_dump, the check reads the dump through, and pg_restore
    brings back every verdict into an empty database."""
    with running_server(tmp_path / "pg") as server:
        url = server.url(server.create_database())
        home = tmp_path / "home"
        home.mkdir()
        _log(VerdictRepository(init_db(url), home), (1, 2, 3))
        out = tmp_path / "out"
        report = back_up(config_from_dict({"database_url": url}), home, out)
        assert report.database_ok and report.database.startswith(f"PostgreSQL dumped to {out / PG_DUMP_FILE} (")
        assert not (out / "cupcheck.db").exists() and report.images_new > 0
        assert (home / "last-backup.json").is_file()
        found = check_backup(out)
        assert found.sound and found.dump == PG_DUMP_FILE and found.verdicts is None
        assert found.images == report.images_new

        restored = server.create_database()  # a new server's empty database, and a new station home
        site = config_from_dict({"database_url": server.url(restored)})
        put_back = restore(site, tmp_path / "new-home", out)
        assert put_back.database == f"{PG_DUMP_FILE} restored into the site's database" and put_back.verdicts is None
        assert put_back.images_new == found.images
        with psycopg.connect(server.dsn(restored)) as conn:
            row = conn.execute(b"SELECT COUNT(*) FROM verdicts").fetchone()
            assert row is not None and row[0] == 3
        with pytest.raises(BackupError, match=r"is set up \(pg_restore needs an empty one\)"):
            restore(site, tmp_path / "another-home", out)

        # an image the dumped verdicts name but the folder lacks: the check says so, and restore refuses the folder
        named = dumped_refs(out / PG_DUMP_FILE)
        assert named and named <= {ref for ref, _ in ContentStore(out).iter_refs()}
        lost = sorted(named)[0]
        holey = tmp_path / "holey"
        shutil.copytree(out, holey)
        ContentStore(holey).path(lost).unlink()
        found = check_backup(holey)
        assert not found.sound and found.missing == (lost,)
        with pytest.raises(BackupError, match="missing"):
            restore(config_from_dict({"database_url": server.url(server.create_database())}), tmp_path / "h3", holey)

    dump = out / PG_DUMP_FILE
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 3])  # a dump cut off
    cut = check_backup(out)
    assert not cut.sound and any("pg_restore cannot read" in p or "without its rows" in p for p in cut.problems)


def test_a_database_that_cannot_be_dumped_is_said_and_the_rest_still_copied(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg://cupcheck:secret@127.0.0.1:1/cupcheck"  # nothing listens on port 1
    report = back_up(config_from_dict({"database_url": url}), home, tmp_path / "out")
    assert not report.database_ok and report.database.startswith("NOT BACKED UP: pg_dump failed:")
    assert "secret" not in report.database  # the password went through the environment, not the command line
    assert report.images_new > 0
    record = backup_record(home)  # doctor keeps warning: never backed up whole, and why this one was not
    assert record is not None and record.made_at is None and record.failed.startswith("NOT BACKED UP: pg_dump failed")
    (tmp_path / "station.toml").write_text(f'home = "{home}"\ndatabase_url = "{url}"\n')
    assert main(["backup", "--config", str(tmp_path / "station.toml"), "--out", str(tmp_path / "out")]) == 1
    assert "the verdict log is NOT in this backup" in capsys.readouterr().err
    found = check_backup(tmp_path / "out")  # a backup without its verdict log restores nothing whole
    assert not found.sound and found.problems[0].startswith("no verdict log: neither cupcheck.db nor cupcheck.pgdump")
    assert "NOT BACKED UP: pg_dump failed" in found.problems[0]
    assert main(["backup", "--check", str(tmp_path / "out")]) == 1


def test_a_backup_may_not_overlap_what_it_copies(home: Path, tmp_path: Path) -> None:
    for out in (home, home / "backup", tmp_path):
        with pytest.raises(BackupError, match="overlaps"):
            back_up(StationConfig(), home, out)


def test_a_backup_folder_of_another_home_is_refused(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "usb" / "backup"
    back_up(StationConfig(), home, out)
    other = tmp_path / "other"
    other.mkdir()
    _log(VerdictRepository.open(other), (7,))
    with pytest.raises(BackupError, match=f"holds the backup of another station home \\({home.resolve()}\\)"):
        back_up(StationConfig(), other, out)
    assert _verdicts(out) == 2 and not check_backup(out).missing  # the first station's backup is as it was
    back_up(StationConfig(), home, out)  # its own station backs up there again


def test_the_command(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "--home", str(home), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0].startswith("database: ")
        and out[1].startswith("images: ")
        and out[1].endswith(", 0 already in the backup")
    )
    assert out[-1] == f"backup: {tmp_path / 'out'} (restore: cupcheck restore {tmp_path / 'out'} --home {home})"
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
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == f"sound: it restores whole (cupcheck restore {out}, with the station's --config)"
    )

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


def _station_files(home: Path, bundle_dir: Path) -> None:
    """A real enrolled gallery, a registered real bundle, and the home's own files, in ``home``."""
    bundle, embedder = write_bundle(bundle_dir, embedder_file=write_tiny_checkpoint(bundle_dir / "embedder.pt"))
    enrolled_gallery(embedder).save(home / "gallery")
    register_version(home, bundle.parent, ModelEntry("verdict-1", "2026-01-01T02:00:00+00:00", SHIPPED))
    promote(home, "verdict-1")
    (home / "orders.csv").write_text("A-1,t0000,12\n")
    (home / "calibration.json").write_text('{"px_per_mm": 8}')
    (home / "setup_view.png").write_bytes(b"the calibration photo")
    tray = home / ENROLMENTS_DIR / "20260301-0900-t0042"  # a tray enrolment, as the station window keeps it
    (tray / "obverse").mkdir(parents=True)
    (tray / "obverse" / "tray.png").write_bytes(b"the obverse tray photo")
    (tray / "coin.toml").write_text('name = "t0042"\n')


@pytest.fixture
def whole_home(tmp_path: Path) -> Path:
    """A station home whose backup restores whole: verdicts, a real enrolled gallery, a registered real bundle."""
    home = tmp_path / "site" / "home"
    home.mkdir(parents=True)
    _log(VerdictRepository.open(home), (1, 2, 3))
    _station_files(home, tmp_path / "bundle")
    return home


def test_a_backup_restores_into_a_new_home_and_never_over_data(
    whole_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "usb" / "backup"
    back_up(StationConfig(), whole_home, out)
    assert check_backup(out).sound

    new = tmp_path / "new-disk" / "home"  # the disk was replaced: an empty home
    report = restore(StationConfig(), new, out)
    assert report.verdicts == 3 and report.database.startswith(f"{new / 'cupcheck.db'} written")
    assert _verdicts(new) == 3
    assert sorted(ContentStore(new).iter_refs()) == sorted(ContentStore(whole_home).iter_refs())
    assert load_registry(new).current == "verdict-1"
    assert (new / "orders.csv").read_text() == "A-1,t0000,12\n" and (new / "calibration.json").is_file()
    assert (new / "setup_view.png").read_bytes() == b"the calibration photo"  # a moved camera is told by it
    assert Gallery.load(new / "gallery").types() == Gallery.load(whole_home / "gallery").types()
    assert not (new / "backup.json").exists() and not (new / "last-backup.json").exists()

    with pytest.raises(BackupError, match="already hold data") as refused:  # a second restore, or the old home
        restore(StationConfig(), new, out)
    assert "holds 3 verdicts" in str(refused.value) and "a gallery at" in str(refused.value)
    assert _verdicts(new) == 3

    assert main(["restore", str(out), "--home", str(tmp_path / "third")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"database: {tmp_path / 'third' / 'cupcheck.db'} written (")
    assert printed[0].endswith(" MB) (3 verdicts)")
    assert printed[-1] == f"restored from {out}; is the station ready? cupcheck doctor --home {tmp_path / 'third'}"
    assert main(["restore", str(out), "--home", str(tmp_path / "third")]) == 2

    own = tmp_path / "own"  # a home that holds nothing but its own order book and calibration
    own.mkdir()
    (own / "orders.csv").write_text("MINE,t0001,9\n")
    (own / "calibration.json").write_bytes((out / "calibration.json").read_bytes())  # the same: no clash
    with pytest.raises(BackupError, match=f"orders.csv in {own}, other than the backup's"):
        restore(StationConfig(), own, out)
    assert (own / "orders.csv").read_text() == "MINE,t0001,9\n" and not (own / "cupcheck.db").exists()

    pg = config_from_dict({"database_url": "postgresql+psycopg://cupcheck@127.0.0.1:1/cupcheck"})
    with pytest.raises(BackupError, match="holds no PostgreSQL dump"):  # a station's backup for a site's server
        restore(pg, tmp_path / "fifth", out)
    ContentStore(out).path(sorted(ContentStore(out).iter_refs())[0][0]).unlink()  # an image lost on the backup disk
    with pytest.raises(BackupError, match="would not restore whole"):
        restore(StationConfig(), tmp_path / "fourth", out)
    assert not (tmp_path / "fourth" / "cupcheck.db").exists()


def _big_photo(seed: int) -> bytes:
    """A JPEG of noise, about 700 kB: larger than the verdict log and every other file of the ``home`` fixture."""
    noise = np.random.default_rng(seed).integers(0, 255, (900, 900, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def test_a_backup_that_runs_out_of_room_leaves_the_one_before_sound(home: Path, tmp_path: Path) -> None:
    shutil.rmtree(home / "gallery")  # the fixture's stand-ins would not load: the check is about the log and images
    shutil.rmtree(home / "models")
    out = tmp_path / "usb" / "backup"
    back_up(StationConfig(), home, out)
    assert check_backup(out).sound
    before = backup_record(home)
    assert before is not None and before.made_at is not None and not before.failed

    repo = VerdictRepository.open(home)  # the day's cups, with large photographs
    try:
        for seed in (10, 11):
            repo.log_verdict(dataclasses.replace(make_record(seed), image_jpeg=_big_photo(seed)))
    finally:
        repo.engine.dispose()
    assert (home / "cupcheck.db").stat().st_size < 400_000 < len(_big_photo(10))
    with files_limited_to(400_000), pytest.raises(OSError):  # the log fits, the first large photograph does not
        back_up(StationConfig(), home, out)

    found = check_backup(out)  # the earlier backup, as it was
    assert found.sound and found.verdicts == 2
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    after = backup_record(home)
    assert after is not None and after.made_at == before.made_at and after.folder == before.folder
    assert after.attempted_at is not None and after.failed.startswith("OSError: ")
    back_up(StationConfig(), home, out)  # the next night, with room again
    assert check_backup(out).verdicts == 4
    record = backup_record(home)
    assert record is not None and not record.failed and record.made_at is not None
    assert record.made_at >= after.attempted_at


def test_a_restore_into_a_home_a_station_already_opened_keeps_the_log(whole_home: Path, tmp_path: Path) -> None:
    """A station started on the new home meanwhile holds its empty log open: the restored log is written into that
    file, and the station's next verdict lands in it, beside the restored ones."""
    out = tmp_path / "backup"
    back_up(StationConfig(), whole_home, out)
    new = tmp_path / "new-home"
    new.mkdir()
    station = VerdictRepository.open(new)
    try:
        assert station.count_verdicts() == 0
        report = restore(StationConfig(), new, out)
        assert report.verdicts == 3
        station.log_verdict(make_record(9))
        assert station.count_verdicts() == 4
    finally:
        station.engine.dispose()
    assert _verdicts(new) == 4
    with sqlite3.connect(new / "cupcheck.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_tray_enrolments_are_backed_up_and_restored(whole_home: Path, tmp_path: Path) -> None:
    from station.controllers.enrol_tray import ENROLMENTS

    assert ENROLMENTS_DIR == ENROLMENTS
    out = tmp_path / "backup"
    back_up(StationConfig(), whole_home, out)
    photo = Path(ENROLMENTS_DIR) / "20260301-0900-t0042" / "obverse" / "tray.png"
    assert (out / photo).read_bytes() == b"the obverse tray photo"
    assert back_up(StationConfig(), whole_home, out).files == 0  # nothing changed: nothing copied again
    (whole_home / photo.parent / "tray-2.png").write_bytes(b"another")
    assert back_up(StationConfig(), whole_home, out).files == 1

    new = tmp_path / "new-home"
    restore(StationConfig(), new, out)
    assert (new / photo).read_bytes() == b"the obverse tray photo" and (new / photo.parent / "tray-2.png").is_file()
    other = tmp_path / "other-home"  # a home holding its own enrolment of that name is not overwritten
    (other / photo.parent).mkdir(parents=True)
    (other / photo).write_bytes(b"another tray")
    with pytest.raises(BackupError, match=f"{photo} in {other}, other than the backup's"):
        restore(StationConfig(), other, out)
    assert (other / photo).read_bytes() == b"another tray"


def test_a_failed_site_restore_leaves_nothing_behind_and_can_run_again(tmp_path: Path) -> None:
    """pg_restore refused (the station's role may not create tables in the new database): the images, gallery,
    registry and home files copied before are taken away again, so the restore runs once the cause is put right."""
    with running_server(tmp_path / "pg") as server:
        home = tmp_path / "home"
        home.mkdir()
        url = server.url(server.create_database())
        _log(VerdictRepository(init_db(url), home), (1, 2))
        _station_files(home, tmp_path / "bundle")
        out = tmp_path / "backup"
        assert back_up(config_from_dict({"database_url": url}), home, out).database_ok

        empty = server.create_database()
        server.admin("CREATE ROLE restorer LOGIN")  # not the database's owner: no CREATE on its schema
        site = config_from_dict(
            {
                "database_url": f"postgresql+psycopg://restorer@127.0.0.1:{server.port}/{empty}",
                "store": str(tmp_path / "share"),
                "models": str(tmp_path / "share"),
                "gallery": str(tmp_path / "share"),
            }
        )
        (tmp_path / "share" / "captures").mkdir(parents=True)
        new = tmp_path / "new-home"
        with pytest.raises(DumpError, match="pg_restore failed"):
            restore(site, new, out)
        assert sorted(p.name for p in (tmp_path / "share").rglob("*")) == ["captures"]
        assert not new.exists() or not list(new.iterdir())

        server.admin(f"ALTER DATABASE {empty} OWNER TO restorer")  # the cause put right
        report = restore(site, new, out)
        assert report.images_new > 0 and (new / ENROLMENTS_DIR).is_dir()
        assert load_registry(tmp_path / "share").current == "verdict-1"
        with psycopg.connect(server.dsn(empty)) as conn:
            row = conn.execute(b"SELECT COUNT(*) FROM verdicts").fetchone()
            assert row is not None and row[0] == 2


@pytest.fixture
def read_only_medium(tmp_path: Path) -> Iterator[Path]:
    """A folder for a read-only medium (:func:`_make_read_only` fills it), put back as it was afterwards."""
    medium = tmp_path / "medium"
    medium.mkdir()
    yield medium
    if os.path.ismount(medium):
        subprocess.run(["umount", str(medium)], check=False)
    else:
        for path in (medium, *medium.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)


def _make_read_only(backup: Path, medium: Path) -> Path:
    """Copy ``backup`` onto ``medium`` and make it read-only; the copy."""
    if os.geteuid() != 0:
        copy = Path(shutil.copytree(backup, medium / "backup"))
        for path in (*copy.rglob("*"), copy, medium):
            path.chmod(0o555 if path.is_dir() else 0o444)
        return copy
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", str(medium)], check=False).returncode:
        pytest.skip("a read-only medium needs mount (as root) or a user without root's rights")
    copy = Path(shutil.copytree(backup, medium / "backup"))
    subprocess.run(["mount", "-o", "remount,ro", str(medium)], check=True)
    return copy


def test_a_backup_on_a_read_only_medium_is_checked_and_restored(
    whole_home: Path, tmp_path: Path, read_only_medium: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "backup"
    back_up(StationConfig(), whole_home, out)
    disc = _make_read_only(out, read_only_medium)
    with pytest.raises(OSError):
        (disc / "probe").write_text("")
    assert check_backup(disc).sound and check_backup(disc).verdicts == 3
    assert main(["backup", "--check", str(disc)]) == 0
    assert main(["restore", str(disc), "--home", str(tmp_path / "new-home")]) == 0
    assert "(3 verdicts)" in capsys.readouterr().out
    assert _verdicts(tmp_path / "new-home") == 3


def test_checking_a_backup_writes_nothing_into_it(whole_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "backup"
    back_up(StationConfig(), whole_home, out)
    before = {p: p.stat().st_mtime_ns for p in (out, *out.rglob("*"))}
    assert check_backup(out).sound
    assert {p: p.stat().st_mtime_ns for p in (out, *out.rglob("*"))} == before


def _suggested(line: str, after: str) -> list[str]:
    """The command a printed line suggests after ``after``, split as a shell splits it (``cupcheck`` dropped)."""
    command = shlex.split(line.split(after, 1)[1].removesuffix(")"))
    assert command[0] == "cupcheck"
    return command[1:]


def test_the_doctor_a_restore_suggests_checks_the_restored_home(
    whole_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "usb" / "back up"
    back_up(StationConfig(), whole_home, out)
    new = tmp_path / "new disk" / "home"
    url = f"sqlite:///{tmp_path / 'its log' / 'cupcheck.db'}"
    assert main(["restore", str(out), "--home", str(new), "--db", url]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        f"restored from {out}; is the station ready? cupcheck doctor --home {shlex.quote(str(new))} "
        f"--db {shlex.quote(url)}"
    )

    main([*_suggested(last, "is the station ready? "), "--no-camera"])  # as printed (this PC has no camera)
    printed = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert printed[0].startswith(f"ok home {new}: ")
    assert f"ok database {url} at schema" in " ".join(printed)  # the restored log, not $CUPCHECK_HOME's
    assert any(line.startswith("WARN operators 1 may sign in, no supervisor") for line in printed)


def test_the_restore_a_backup_suggests_puts_it_back_where_it_came_from(
    whole_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "station file.toml"
    config.write_text(f'name = "packing-1"\nhome = "{whole_home}"\n')
    out = tmp_path / "usb" / "back up"
    assert main(["backup", "--config", str(config), "--out", str(out)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    restore_command = f"cupcheck restore {shlex.quote(str(out))} --config {shlex.quote(str(config))}"
    assert last == f"backup: {out} (restore: {restore_command})"
    assert main(["backup", "--check", str(out), "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"sound: it restores whole ({restore_command})"

    shutil.rmtree(whole_home)  # the station's disk is lost
    assert main(_suggested(last, "(restore: ")) == 0
    assert _verdicts(whole_home) == 3 and load_registry(whole_home).current == "verdict-1"


def test_a_database_password_is_not_repeated_in_a_suggested_command() -> None:
    args = argparse.Namespace(
        config="st.toml", home=None, db="postgresql+psycopg://cupcheck:s3cret@dbhost/cupcheck", store="/mnt/images"
    )
    assert (
        site_flags(args)
        == " --config st.toml --db 'postgresql+psycopg://cupcheck:***@dbhost/cupcheck' --store /mnt/images"
    )
