"""Stations of one site sharing their image folder: any PC's review or retrain sees every station's photographs."""

from __future__ import annotations

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
