"""``cupcheck doctor``: a fresh home fails where a station could not work, with the fix; a set-up station is ready,
and a camera at another size than the calibration, a broken orders file or an unmounted share are named."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from calibration.camera import CameraCalibration, save_calibration, save_empty_tray, save_setup_view
from db.activity import read_bench_waiting
from db.embedded_pg import running_server
from db.records import BenchWaiting
from db.repository import VerdictRepository
from db.schema import LabelKind, Role
from db.session import init_db
from models.enroll import CATALOG_FILE, TypeInfo, save_catalog
from models.types import Decision, Side
from station.backup import BackupError, back_up
from station.cli import main
from station.config import StationConfig, config_from_dict
from station.doctor import Status, examine, worst
from tests.calibration.views import camera as camera_moved
from tests.calibration.views import exposure, table, with_coins
from tests.db.factories import make_record
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import PIPE_TYPES, enrolled_gallery, reference_image, write_bundle


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]


def test_a_fresh_home_is_not_ready_and_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    assert main(["doctor", "--home", str(home), "--no-camera"]) == 1
    lines = _lines(capsys)
    assert lines[0].startswith(f"ok home {home}: ") and lines[0].endswith("GB free")
    assert f"WARN database sqlite:///{home}/cupcheck.db is empty" in lines
    assert "ok orders no orders.csv: types are chosen from the list" in lines
    model = next(line for line in lines if line.startswith("FAIL model"))
    assert "no gallery in" in model and "enrol coin types first (cupcheck enroll)" in model
    # nobody can sign in, so the station would refuse to start: a problem, and looking made no database
    assert "FAIL operators nobody may sign in" in lines
    assert "→ cupcheck operators add NAME --role supervisor (with this --config)" in lines
    assert not (home / "cupcheck.db").exists()
    assert lines[-1] == "NOT READY: 3 ok, 3 warnings, 2 problems"  # the retrain and the backup never ran either

    VerdictRepository.open(home).engine.dispose()  # as a first start leaves it
    (home / "orders.csv").write_text("A-1\n")
    (home / "verdict-spool.rejected.jsonl").write_text('{"error": "OrderMismatchError: ..."}\n')  # set aside
    shared = tmp_path / "share"  # named in the station file, not mounted
    (tmp_path / "station.toml").write_text(f'home = "{home}"\nstore = "{shared}"\n')
    assert main(["doctor", "--config", str(tmp_path / "station.toml"), "--no-camera"]) == 1
    lines = _lines(capsys)
    assert "FAIL operators nobody may sign in" in lines
    assert "→ cupcheck operators add NAME --role supervisor (with this --config)" in lines
    assert any(line.startswith("FAIL images the shared image folder has no captures/") for line in lines)
    assert any(line.startswith("FAIL orders") and "expected 'order,type[,count]'" in line for line in lines)
    rejected = home / "verdict-spool.rejected.jsonl"
    assert f"WARN journal 1 verdicts the database refused are kept in {rejected}" in lines


@pytest.fixture
def station_home(tmp_path: Path) -> tuple[Path, Path]:
    """``(home, bundle)``: an enrolled home with people, a calibration at 640×480, orders, and a bundle."""
    root = tmp_path
    emb_file = write_tiny_checkpoint(root / "bundle" / "embedder.pt")
    bundle, embedder = write_bundle(root / "bundle", embedder_file=emb_file)
    home = root / "home"
    enrolled_gallery(embedder).save(home / "gallery")
    save_catalog(home / "gallery" / CATALOG_FILE, [TypeInfo(t, t, 25.0) for t in PIPE_TYPES])
    repo = VerdictRepository.open(home)
    repo.add_operator("olga", Role.OPERATOR, "1357")
    repo.add_operator("sam", Role.SUPERVISOR, "2468")
    repo.engine.dispose()
    save_calibration(CameraCalibration(px_per_mm=8.0, image_width=640, image_height=480, method="manual"), home)
    (home / "orders.csv").write_text(f"order,type,count\nA-1,{PIPE_TYPES[0]},10\nA-2,t9999\n")
    return home, bundle


def _camera_folder(folder: Path, size: tuple[int, int]) -> Path:
    folder.mkdir()
    image = cv2.resize(reference_image(PIPE_TYPES[0], Side.REVERSE), (size[1] // 2, size[1] // 2))
    frame = cv2.copyMakeBorder(image, 0, size[1] - image.shape[0], 0, size[0] - image.shape[1], cv2.BORDER_CONSTANT)
    cv2.imwrite(str(folder / "cup.png"), frame)
    return folder


def test_a_set_up_station_is_ready_and_checks_a_frame(station_home: tuple[Path, Path], tmp_path: Path) -> None:
    home, bundle = station_home
    camera = _camera_folder(tmp_path / "camera", (640, 480))
    config = config_from_dict({"bundle": str(bundle), "camera": {"kind": "folder", "folder": str(camera)}})
    said: list[str] = []
    findings = examine(config, home, say=lambda f: said.append(f.part))
    by = {(f.part, f.status): f for f in findings}
    assert said == [f.part for f in findings]  # each one as it was made
    assert worst(findings) is Status.WARN
    assert by["operators", Status.OK].message == "2 may sign in, 1 of them supervisors"
    assert by["model", Status.OK].message.startswith("verdict-")
    assert by["threshold", Status.OK].message.startswith("PASS at p ≥ ")
    assert by["orders", Status.WARN].message == "1 ordered types are not enrolled: t9999"
    assert by["orders", Status.OK].message == f"2 orders in {home / 'orders.csv'}, 1 of them with a count of coins"
    # the model running says how many photos a side it was calibrated with (5; the gallery holds 2)
    gallery_warnings = [f.message for f in findings if f.part == "gallery" and f.status is Status.WARN]
    assert gallery_warnings[0].startswith("4 types have fewer than the 5 photos a side")
    # the toy embedder cannot tell these reverses apart, and no coin.toml says whether they are one design
    assert any("look like one design to the camera, and nothing declares them" in w for w in gallery_warnings)
    assert by["calibration", Status.OK].message == "8.00 px/mm (manual), whole frame, at 640×480"
    assert by["empty tray", Status.WARN].fix.startswith("press 'Photograph the empty tray'")
    assert by["bench", Status.OK].message == "0 cups flagged here wait for a ruling"
    assert by["retrain", Status.WARN].message == "the nightly retrain has never run on this registry"
    assert by["backup", Status.WARN].message == "this station's data has never been backed up"
    assert by["camera", Status.OK].message == f"folder {camera}: 640×480"
    assert by["check", Status.OK].message.startswith("one check of the camera's frame: ")

    wrong = _camera_folder(tmp_path / "wrong", (800, 600))
    config = config.model_copy(update={"camera": config.camera.model_copy(update={"folder": wrong})})
    findings = examine(config, home)
    (camera_fail,) = [f for f in findings if f.status is Status.FAIL]
    assert camera_fail.part == "camera" and "delivers 800×600, the station was set up at 640×480" in camera_fail.message


def test_a_camera_moved_since_it_was_set_up_fails(station_home: tuple[Path, Path], tmp_path: Path) -> None:
    home, bundle = station_home
    camera = tmp_path / "camera"
    camera.mkdir()
    cv2.imwrite(str(camera / "cup.png"), exposure(with_coins(table(), 1), 2))
    config = config_from_dict({"bundle": str(bundle), "camera": {"kind": "folder", "folder": str(camera)}})
    # calibrated before the calibration photo was kept, and no empty tray: nothing to tell a move by
    by = {(f.part, f.status): f for f in examine(config, home)}
    assert by["camera aim", Status.WARN].message.startswith("no photo of the camera's view as set up")
    save_setup_view(table(), home)  # what calibrate keeps now: a speckled table around the cup
    by = {(f.part, f.status): f for f in examine(config, home)}
    assert by["camera aim", Status.OK].message.startswith("where it was set up (")
    save_empty_tray(exposure(table(), 5), home)  # the empty-tray photo, when there is one, is the view compared with
    by = {(f.part, f.status): f for f in examine(config, home)}
    assert by["empty tray", Status.OK].message == "photo kept: every cup is compared with it"
    assert by["camera aim", Status.OK].message.startswith("where it was set up (")
    # knocked 12 px to the right
    cv2.imwrite(str(camera / "cup.png"), exposure(camera_moved(with_coins(table(), 1), dx=12.0), 2))
    findings = examine(config, home)
    (moved,) = [f for f in findings if f.status is Status.FAIL]
    assert moved.part == "camera aim"
    assert moved.message.startswith("the camera has moved since it was set up (the view: 12 px right)")
    assert moved.fix.startswith("put it back, or calibrate again")
    # the surroundings covered: nothing can be told, and it says so
    cv2.imwrite(str(camera / "cup.png"), np.full((480, 640, 3), 90, np.uint8))
    by = {(f.part, f.status): f for f in examine(config, home)}
    assert by["camera aim", Status.WARN].message.startswith("cannot tell whether the camera has moved")
    # a plain table offers nothing to tell a move by: the set-up photo is named for it
    save_empty_tray(np.full((480, 640, 3), 128, np.uint8), home)
    by = {(f.part, f.status): f for f in examine(config, home)}
    assert "only 0 features around the cup in the set-up photo" in by["camera aim", Status.WARN].message
    assert by["camera aim", Status.WARN].fix.startswith("print cupcheck mat --out mat.png, lay it under and around")


def test_json_output(station_home: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    home, bundle = station_home
    (home.parent / "station.toml").write_text(f'home = "{home}"\nbundle = "{bundle}"\n')
    assert main(["doctor", "--config", str(home.parent / "station.toml"), "--no-camera", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ready"] is True
    assert {"part": "operators", "status": "ok", "message": "2 may sign in, 1 of them supervisors", "fix": ""} in doc[
        "findings"
    ]


def test_the_retrain_log_says_when_it_last_ran(station_home: tuple[Path, Path]) -> None:
    home, bundle = station_home
    log = home / "models" / "retrain.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text("2026-12-01 02:00:01,000 INFO nothing to do: no new labels since verdict-1\n\n")
    config = config_from_dict({"bundle": str(bundle)})
    (retrain,) = [f for f in examine(config, home, camera=False) if f.part == "retrain"]
    assert retrain.status is Status.OK and retrain.message.endswith("INFO nothing to do: no new labels since verdict-1")
    old = time.time() - 3 * 86400
    os.utime(log, (old, old))
    (retrain,) = [f for f in examine(config, home, camera=False) if f.part == "retrain"]
    assert retrain.status is Status.WARN and retrain.message.startswith("the retrain last ran 3 days ago: ")
    # a night that stopped on an error is no night that ran
    log.write_text("2026-12-02 02:00:01,000 ERROR retrain stopped (exit status 2): OperationalError: no such file\n")
    (retrain,) = [f for f in examine(config, home, camera=False) if f.part == "retrain"]
    assert retrain.status is Status.WARN and retrain.message.startswith("the retrain 0 hours ago did not finish: ")


def test_the_last_backup_is_named(station_home: tuple[Path, Path], tmp_path: Path) -> None:
    home, bundle = station_home
    back_up(StationConfig(), home, tmp_path / "usb")
    config = config_from_dict({"bundle": str(bundle)})
    (found,) = [f for f in examine(config, home, camera=False) if f.part == "backup"]
    assert found.status is Status.OK and found.message == f"backed up 0 hours ago, to {(tmp_path / 'usb').resolve()}"


def test_a_failed_backup_is_named_until_one_finishes_whole(station_home: tuple[Path, Path], tmp_path: Path) -> None:
    home, bundle = station_home
    back_up(StationConfig(), home, tmp_path / "usb")
    config = config_from_dict({"bundle": str(bundle)})
    with pytest.raises(BackupError):  # a backup folder that now holds another home's backup: this night's fails
        (tmp_path / "usb" / "backup.json").write_text('{"home": "/elsewhere"}')
        back_up(StationConfig(), home, tmp_path / "usb")
    (found,) = [f for f in examine(config, home, camera=False) if f.part == "backup"]
    assert found.status is Status.OK  # refused before it began: nothing was attempted
    full = tmp_path / "full"
    full.write_text("a file where the backup disk should be mounted")  # this night's copy fails
    with pytest.raises(OSError):
        back_up(StationConfig(), home, full / "backup")
    (found,) = [f for f in examine(config, home, camera=False) if f.part == "backup"]
    assert found.status is Status.WARN
    assert found.message.startswith(f"the last backup, 0 hours ago to {(full / 'backup').resolve()}, failed: ")
    assert "did not finish" not in found.message and "Error" in found.message  # the cause, not a guess
    assert found.message.endswith(f"; the last whole one: 0 hours ago, to {(tmp_path / 'usb').resolve()}")
    assert found.fix.startswith("put its cause right")


def test_a_site_database_is_checked_for_a_pg_dump_that_can_dump_it(
    station_home: tuple[Path, Path], tmp_path: Path
) -> None:
    home, bundle = station_home
    with running_server(tmp_path / "pg") as server:
        url = server.url(server.create_database())
        init_db(url).dispose()
        config = config_from_dict({"bundle": str(bundle), "database_url": url})
        findings = [f for f in examine(config, home, camera=False) if f.part == "backup"]
    dump = next(f for f in findings if "pg_dump" in f.message)
    assert dump.status is Status.OK and dump.message.startswith("the site's database can be dumped with ")
    assert "pg_dump (18." in dump.message  # the newest installed (the system's may be older than the server)


def test_cups_left_waiting_for_a_ruling_are_named(station_home: tuple[Path, Path]) -> None:
    home, bundle = station_home
    config = config_from_dict({"name": "packing-1", "bundle": str(bundle)})
    now = datetime.now(UTC)
    repo = VerdictRepository.open(home)
    try:
        for seed, hours in ((1, 30), (2, 2), (3, 50)):
            flagged = make_record(seed, decision=Decision.FLAG, p_correct=0.2, station="packing-1", operator="olga")
            repo.log_verdict(replace(flagged, created_at=now - timedelta(hours=hours)))
        elsewhere = make_record(4, decision=Decision.FLAG, p_correct=0.2, station="packing-2", operator="olga")
        repo.log_verdict(replace(elsewhere, created_at=now - timedelta(hours=40)))
    finally:
        repo.engine.dispose()
    (bench,) = [f for f in examine(config, home, camera=False) if f.part == "bench"]
    oldest = (now - timedelta(hours=50)).astimezone()
    assert bench.status is Status.WARN
    assert bench.message == (
        "2 cups flagged here have waited more than 24 hours for a ruling (the oldest has waited 2 days, since "
        f"{oldest:%Y-%m-%d %H:%M})"
    )


TURN = "coins 1, 3 show the shared obverse — turn them over"
COUNT = "19 coins seen, the order is for 20: 1 short, or hidden under others — spread them out"


def _bench_of_a_year(repo: VerdictRepository, now: datetime) -> datetime:
    """Log a station's year of flagged cups, two of them left waiting for more than a day (30 and 120 days), beside
    ones that do not wait (ruled, for the count alone, answered by a re-check, another station's, the cup in hand);
    return when the oldest waiting one was flagged."""

    def log(
        seed: int, ago: timedelta, reasons: tuple[str, ...] = ("coin 2 looks like t0005 (0.61)",), **kw: Any
    ) -> int:
        decision = Decision.FLAG if reasons else Decision.PASS
        record = make_record(seed, decision=decision, p_correct=0.2, operator="olga", **{"station": "packing-1", **kw})
        record = replace(record, created_at=now - ago, reasons=reasons)
        return repo.cup_of_verdict(repo.log_verdict(record))

    for seed, hours in ((1, 1), (2, 3)):
        log(seed, timedelta(hours=hours))  # waiting, not yet for a day
    log(3, timedelta(days=30))
    log(4, timedelta(days=120))
    repo.relabel("sam", log(5, timedelta(days=200)), LabelKind.CONFIRMED)
    log(6, timedelta(days=250), (COUNT,))  # put right at once, as a new cup
    turned = make_record(7, decision=Decision.FLAG, station="packing-1", operator="olga")
    repo.log_verdict(replace(turned, created_at=now - timedelta(days=300), reasons=(TURN,)))
    log(8, timedelta(days=300, minutes=-2), (), recheck_of=turned.idempotency_key)  # turned over: it passed
    log(9, timedelta(days=400), station="packing-2")
    log(10, timedelta(minutes=20), (TURN,))  # in hand: its coins are being turned
    return now - timedelta(days=120)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_cup_left_months_without_a_ruling_is_named_with_how_long(
    station_home: tuple[Path, Path], tmp_path: Path, backend: str
) -> None:
    home, bundle = station_home
    now = datetime.now(UTC)
    with ExitStack() as stack:
        url = None
        if backend == "postgresql":
            server = stack.enter_context(running_server(tmp_path / "pg"))
            url = server.url(server.create_database())
        repo = VerdictRepository.open(home, url)
        try:
            if url is not None:  # the site's database: its people (the home's SQLite log has them)
                repo.add_operator("olga", Role.OPERATOR, "1357")
                repo.add_operator("sam", Role.SUPERVISOR, "2468")
            oldest = _bench_of_a_year(repo, now)
            assert read_bench_waiting(repo.engine, "packing-1", now - timedelta(hours=24)) == BenchWaiting(4, 2, oldest)
        finally:
            repo.engine.dispose()
        config = config_from_dict({"name": "packing-1", "bundle": str(bundle), "database_url": url})
        (bench,) = [f for f in examine(config, home, camera=False) if f.part == "bench"]
    assert bench.status is Status.WARN
    assert bench.message == (
        "2 cups flagged here have waited more than 24 hours for a ruling (the oldest has waited 120 days, since "
        f"{oldest.astimezone():%Y-%m-%d %H:%M})"
    )
    assert bench.fix == "a supervisor rules on them in the review window (cupcheck review --config FILE)"


def _nothing_listening() -> int:
    """A local TCP port nothing listens on (a database server that is down)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_verdicts_journalled_while_the_database_is_down_are_counted(station_home: tuple[Path, Path]) -> None:
    from db.spool import SPOOL_FILENAME, VerdictSpool

    home, bundle = station_home
    spool = VerdictSpool(home / SPOOL_FILENAME)
    for seed in range(3):
        spool.append(make_record(seed, station="packing-1", operator="olga"))
    spool.reject(make_record(9, station="packing-1", operator="olga"), ValueError("refused"))
    spool.damaged_path.write_bytes(b"{torn\n")
    url = f"postgresql+psycopg://cupcheck:S3cretPw@127.0.0.1:{_nothing_listening()}/site"
    config = config_from_dict({"name": "packing-1", "bundle": str(bundle), "database_url": url})
    findings = examine(config, home, camera=False)
    by = {(f.part, f.status): f for f in findings}
    assert "cannot be reached" in by["database", Status.FAIL].message
    journal = [f.message for f in findings if f.part == "journal"]
    assert journal == [
        f"3 verdicts wait in {spool.path} for the database",
        f"1 verdicts the database refused are kept in {spool.rejected_path}",
        f"1 unreadable lines are kept in {spool.damaged_path}",
    ]
    (dump,) = [f for f in findings if f.part == "backup" and "pg_dump" in f.message]
    assert dump.status is Status.WARN  # no server answered: whether pg_dump is new enough for it is not known
    assert dump.message.startswith("cannot check whether ") and dump.message.endswith("its server was not reached")
    assert not any("can be dumped" in f.message for f in findings)
    assert not any("S3cretPw" in f.message or "S3cretPw" in f.fix for f in findings)


def test_a_database_url_whose_port_is_not_a_number_is_a_problem_not_a_crash(
    station_home: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, bundle = station_home
    url = "postgresql+psycopg://cupcheck:S3cretPw@dbhost:543l/site"
    findings = examine(config_from_dict({"bundle": str(bundle), "database_url": url}), home, camera=False)
    (database,) = [f for f in findings if f.part == "database"]
    assert database.status is Status.FAIL and "port '543l' is not a number" in database.message
    assert "S3cretPw" not in database.message + database.fix
    station = home.parent / "station.toml"
    station.write_text(f'home = "{home}"\nbundle = "{bundle}"\ndatabase_url = "{url}"\n')
    assert main(["doctor", "--config", str(station), "--no-camera"]) == 1
    out = capsys.readouterr()
    lines = [" ".join(line.split()) for line in out.out.splitlines()]
    assert any(line.startswith("FAIL database") and "543l" in line for line in lines)
    assert "Traceback" not in out.err and "S3cretPw" not in out.out + out.err


def test_the_threshold_shown_is_the_one_the_station_applies(station_home: tuple[Path, Path]) -> None:
    home, bundle = station_home
    config = config_from_dict({"bundle": str(bundle), "target_precision": 0.6})  # certifies a threshold under 0.5
    (threshold,) = [f for f in examine(config, home, camera=False) if f.part == "threshold"]
    assert threshold.message.startswith("PASS at p ≥ 0.500, the floor no cup under which passes (the threshold ")
    assert "certified for precision ≥ 60.0% with" in threshold.message
