"""Stations of one site sharing their image folder: any PC's review or retrain sees every station's photographs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from db.repository import VerdictRepository
from db.spool import SpoolingRepository
from db.store import StoreUnreachable
from station.cli import main
from tests.db.factories import make_record

JPEG_START = bytes([0xFF, 0xD8])


def test_stations_sharing_a_store_see_each_others_photographs(db_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "share"
    assert main(["init-site", "--home", str(tmp_path / "admin"), "--db", db_url, "--store", str(shared)]) == 0
    engine = create_engine(db_url)
    try:
        station_1 = VerdictRepository(engine, tmp_path / "station-1", store=shared)
        station_2 = VerdictRepository(engine, tmp_path / "station-2", store=shared)
        review = VerdictRepository(engine, tmp_path / "office", store=shared)
        alone = VerdictRepository(engine, tmp_path / "office-alone")  # its own home's store: nothing in it
        logged = [
            station_1.log_verdict(make_record(1, station="station-1")),
            station_2.log_verdict(make_record(2, station="station-2")),
        ]
        assert len(set(logged)) == 2
        items = {item.station: item for item in review.review_queue(limit=10, margin=1.0)}
        assert set(items) == {"station-1", "station-2"}
        for item in items.values():
            assert item.capture_ref is not None and review.read_blob(item.capture_ref)[:2] == JPEG_START
            with pytest.raises(FileNotFoundError):
                alone.read_blob(item.capture_ref)
        # each station's journal stays in its own home, never in the shared folder
        assert SpoolingRepository(station_1).spool.path.parent == tmp_path / "station-1"
        assert not list(shared.glob("*.jsonl"))
        # station 1 prunes its own old PASSes; station 2's photograph stays
        report = station_1.prune_images(datetime(2027, 1, 1, tzinfo=UTC), station="station-1", min_age_s=0)
        assert report.cups == 1 and report.files == 7
        assert review.read_blob(items["station-2"].capture_ref or "")[:2] == JPEG_START
    finally:
        engine.dispose()


def test_a_share_that_is_not_mounted_is_never_written_into(db_url: str, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()  # a mount point with nothing mounted on it: an empty local folder
    engine = create_engine(db_url)
    try:
        station = SpoolingRepository(VerdictRepository(engine, tmp_path / "station-1", store=share))
        with pytest.raises(StoreUnreachable, match="is the share mounted"):
            station.repository.log_verdict(make_record(1))
        assert station.log_verdict(make_record(1)) is None  # the verdict and its images wait in the journal
        assert station.pending_count() == 1 and not any(share.iterdir()) and station.waiting_on == "image share"
        assert station.repository.review_queue(limit=10, margin=1.0) == []
        station.repository.store.create()  # mounted again (as `cupcheck init-site` made it)
        (verdict_id,) = station.replay()
        item = next(i for i in station.repository.review_queue(limit=10, margin=1.0) if i.verdict_id == verdict_id)
        assert item.capture_ref is not None and station.repository.read_blob(item.capture_ref)[:2] == JPEG_START
        assert station.pending_count() == 0
    finally:
        engine.dispose()


def test_init_site_sets_up_what_the_stations_share(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    share = tmp_path / "share"
    config = tmp_path / "site.toml"
    config.write_text(
        f'home = "{tmp_path / "home"}"\ndatabase_url = "{db_url}"\nstore = "{share}"\nmodels = "{share}"\n'
    )
    assert main(["init-site", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "at this software's schema" in out and f"images: {share / 'captures'}" in out
    assert "(started; shipped in force)" in out and (share / "models" / "registry.json").is_file()
    assert main(["init-site", "--config", str(config)]) == 0  # again: nothing changes
    assert "(already there; shipped in force)" in capsys.readouterr().out
    assert main(["init-site", "--home", str(tmp_path / "alone")]) == 2
    assert "nothing shared to set up" in capsys.readouterr().err
    unmounted = tmp_path / "mnt" / "share" / "cupcheck"  # a share whose mount point is not there
    assert main(["init-site", "--home", str(tmp_path / "alone"), "--db", db_url, "--store", str(unmounted)]) == 2
    assert f"{unmounted.parent} does not exist: is the share mounted?" in capsys.readouterr().err
    assert not (tmp_path / "mnt").exists()
    nowhere = ["--db", "postgresql+psycopg://cupcheck@127.0.0.1:1/none", "--store", str(share)]
    assert main(["init-site", "--home", str(tmp_path / "alone"), *nowhere]) == 2
    assert "the database cannot be reached" in capsys.readouterr().err


def _can_mount_privately() -> bool:
    """Whether ``unshare -rm`` gives this user a mount namespace of its own (where a bind mount can be made read-only
    without touching the machine's mounts)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False).returncode == 0


_LOG_ONE = """
import json, sys
from pathlib import Path
from db.repository import VerdictRepository
from db.spool import SpoolingRepository
from tests.db.factories import make_record
share, url, home = sys.argv[1:4]
station = SpoolingRepository(VerdictRepository.open(Path(home), url, migrate=False, store=Path(share)))
logged = station.log_verdict(make_record(1))
print(json.dumps({"logged": logged, "pending": station.pending_count(), "waiting_on": station.waiting_on,
                  "rejected": len(station.spool.rejected())}))
"""


@pytest.mark.skipif(not _can_mount_privately(), reason="needs `unshare -rm` (a private mount namespace)")
def test_a_read_only_share_makes_the_verdict_wait_in_the_journal(db_url: str, tmp_path: Path) -> None:
    """The share turned read-only (a NAS in trouble, its export changed): the verdict is not refused but waits, with
    its images, and is replayed once the share takes writes again. The share is really mounted read-only, in a mount
    namespace of the station's process alone."""
    share, home = tmp_path / "share", tmp_path / "station-1"
    assert main(["init-site", "--home", str(tmp_path / "admin"), "--db", db_url, "--store", str(share)]) == 0
    read_only = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && exec "$2" -c "$3" "$1" "$4" "$5"'
    run = subprocess.run(
        ["unshare", "-rm", "sh", "-c", read_only, "sh", str(share), sys.executable, _LOG_ONE, db_url, str(home)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout.splitlines()[-1])
    assert outcome == {"logged": None, "pending": 1, "waiting_on": "image share", "rejected": 0}
    assert "Read-only file system" in run.stderr and "is the share mounted, and writable" in run.stderr
    engine = create_engine(db_url)
    try:
        station = SpoolingRepository(VerdictRepository(engine, home, store=share))
        (verdict_id,) = station.replay()  # the share takes writes again
        item = next(i for i in station.repository.review_queue(limit=10, margin=1.0) if i.verdict_id == verdict_id)
        assert item.capture_ref is not None and station.repository.read_blob(item.capture_ref)[:2] == JPEG_START
    finally:
        engine.dispose()


def test_init_site_again_with_the_share_unmounted_makes_nothing(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the database holds a cup, a shared folder that lacks what the cups imply is a share that is not mounted
    (its mount point an empty local folder): init-site refuses rather than make a second share on this disk."""
    share, nas = tmp_path / "mnt" / "share", tmp_path / "nas"
    share.mkdir(parents=True)
    config = tmp_path / "site.toml"
    config.write_text(
        f'home = "{tmp_path / "home"}"\ndatabase_url = "{db_url}"\nstore = "{share}"\nmodels = "{share}"\n'
    )
    assert main(["init-site", "--config", str(config)]) == 0
    engine = create_engine(db_url)
    try:
        VerdictRepository(engine, tmp_path / "station-1", store=share).log_verdict(make_record(1))
    finally:
        engine.dispose()
    capsys.readouterr()
    share.rename(nas)  # unmounted: the mount point is left, empty
    share.mkdir()
    assert main(["init-site", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{share / 'captures'} is not there, yet the database holds 1 cup: is the share mounted?" in err
    assert not any(share.iterdir())
    (share / "captures").mkdir()  # left by an earlier run while unmounted: the folder, not the photographs
    assert main(["init-site", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{share} lacks 1 of 1 photographs the database names" in err and "is the share mounted?" in err
    assert not (share / "models").exists()
    (share / "captures").rmdir()
    nas.replace(share)  # mounted again
    assert main(["init-site", "--config", str(config)]) == 0
    assert "(already there; shipped in force)" in capsys.readouterr().out
    models = ["--home", str(tmp_path / "alone"), "--db", db_url, "--models", str(tmp_path / "models-share")]
    assert main(["init-site", *models]) == 2  # a registry shared from now on: said so with --new-share
    assert "--new-share" in capsys.readouterr().err and not (tmp_path / "models-share").exists()
    assert main(["init-site", *models, "--new-share"]) == 0
    assert "(started; shipped in force)" in capsys.readouterr().out
