"""The demo: its home (the simulator's types enrolled with a real embedder, the demo operator registered), the
driver that orders each simulator cup, and ``cupcheck demo`` end to end with the shipped model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from db.repository import VerdictRepository
from models.bundle import load_bundle
from models.embedder import checkpoint_dict, save_checkpoint
from models.gallery import Gallery
from models.synth.mint import generate_mint
from models.types import Side
from station.camera import SimulatorSource
from station.cli import main
from station.controllers.catalog import TypeCatalog
from station.demo import DEMO_OPERATOR, DEMO_PIN, DemoDriver, prepare_demo_home
from tests.station.conftest import SteppingClock
from tests.station.nearest_type_pipeline import tiny_embedder


def test_demo_home_enrols_the_simulator_mint_once(tmp_path: Path) -> None:
    emb = tiny_embedder()
    weights = save_checkpoint(
        checkpoint_dict(emb.network, emb.arch, emb.embed_dim, emb.prep, half=False), tmp_path / "emb.pt"
    )
    home = prepare_demo_home(tmp_path / "demo", n_types=9, seed=5, embedder_path=weights, progress=False)

    gallery = Gallery.load(home / "gallery", embedder_version=emb.version)
    mint = generate_mint(9, 5)
    assert list(gallery.types()) == [t.id for t in mint.types]  # enrolled in chunks, every type once, in order
    # a few photos per side cut from simulator cups (a render where the cups showed none)
    assert all(set(sides) == {"obverse", "reverse"} for sides in gallery.types().values())
    per_side = load_bundle().enrol_per_side  # as many as the verdict model's calibration galleries held
    assert all(1 <= n <= per_side for sides in gallery.types().values() for n in sides.values())
    assert sum(n for sides in gallery.types().values() for n in sides.values()) > 2 * len(mint.types)
    # the catalogue names each family's shared obverse, as the verdict model's calibration galleries did; every
    # reverse is a design of its own
    by_type = {t.id: t for t in mint.types}
    members = {t.family: sum(u.family == t.family for u in mint.types) for t in mint.types}
    for e in gallery.entries.values():
        coin = by_type[e.type_id]
        shared = e.side == Side.OBVERSE and members[coin.family] > 1
        assert e.design == (coin.obverse.id if shared else f"{coin.id}/{e.side.value}")
    assert any(n > 1 for n in members.values())
    catalog = TypeCatalog.from_gallery(home / "gallery")
    assert [t.name for t in catalog.types] == [t.name for t in mint.types]
    picture = catalog.picture(mint.types[0].id)
    assert picture is not None and picture.shape == (96, 96, 3)

    repository = VerdictRepository.open(home)
    assert repository.verify_operator(DEMO_OPERATOR, DEMO_PIN) is not None
    repository.engine.dispose()

    manifest = home / "gallery" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    prepare_demo_home(home, n_types=9, seed=5, embedder_path=weights, progress=False)  # nothing to redo
    assert manifest.stat().st_mtime_ns == before

    # types enrolled from a few photos: the home is enrolled again, with at most that many a side
    prepare_demo_home(home, n_types=9, seed=5, embedder_path=weights, progress=False, photos_per_side=2)
    few = Gallery.load(home / "gallery", embedder_version=emb.version)
    assert list(few.types()) == list(gallery.types())
    assert all(1 <= n <= 2 for sides in few.types().values() for n in sides.values())
    assert max(n for sides in gallery.types().values() for n in sides.values()) > 2
    with pytest.raises(ValueError, match="photos_per_side must be at least 1"):
        prepare_demo_home(home, n_types=9, seed=5, embedder_path=weights, progress=False, photos_per_side=0)

    repository = VerdictRepository.open(home)  # someone deactivated the demo operator in the People dialog
    repository.operators.set_pin(DEMO_OPERATOR, "9999")
    repository.operators.set_active(DEMO_OPERATOR, False)
    repository.engine.dispose()
    prepare_demo_home(home, n_types=9, seed=5, embedder_path=weights, progress=False)
    repository = VerdictRepository.open(home)
    assert repository.verify_operator(DEMO_OPERATOR, DEMO_PIN) is not None  # the demo signs in again
    repository.engine.dispose()


def test_demo_driver_orders_each_new_cup_once(clock: SteppingClock) -> None:
    source = SimulatorSource(n_types=4, seed=5, size=160, clock=clock, hold_s=5.0, max_coins=3)
    chosen: list[tuple[str, str]] = []
    driver = DemoDriver(source, lambda type_id, cup: chosen.append((type_id, cup)))
    expected = []
    for _ in range(4):
        frame = source.read()
        driver.frame_shown(frame)
        driver.frame_shown(source.read())  # the same cup again: nothing new to order
        expected.append((source.expected_for(frame), frame.source))
        clock.advance(5.0)
    assert chosen == expected
    assert [cup for _, cup in chosen] == [f"simulator cup {i}" for i in range(4)]
    assert {t for t, _ in chosen} <= {t.id for t in source.mint.types}


def test_expected_for_answers_for_recent_frames_only(clock: SteppingClock) -> None:
    source = SimulatorSource(n_types=4, seed=5, size=160, clock=clock, hold_s=1.0, max_coins=2)
    first = source.read()
    assert source.expected_for(first) == source.expected_type
    for _ in range(9):
        clock.advance(1.0)
        source.read()
    assert source.expected_for(first) is None


def test_demo_command_opens_the_window_and_logs_a_verdict(
    qapp: QApplication, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cupcheck demo`` with the shipped model: first start enrols, the first cup is ordered and checked; an
    ``orders.csv`` that cannot be read is said, and stops nothing."""
    home = tmp_path / "demo"
    home.mkdir()
    (home / "orders.csv").write_text("A-1\n")
    guard = QTimer()  # a hung window fails the test instead of hanging it
    guard.setSingleShot(True)
    guard.timeout.connect(qapp.quit)
    guard.start(120_000)
    try:
        code = main(["demo", "--home", str(home), "--types", "4", "--no-sound", "--quit-after", "1"])
    finally:
        guard.stop()
    assert code == 0
    err = capsys.readouterr().err
    assert "first frame shown after" in err and "first verdict shown after" in err
    assert "expected 'order,type[,count]'" in err and "orders cannot be scanned until it is put right" in err
    with sqlite3.connect(home / "cupcheck.db") as db:
        rows = db.execute(
            "SELECT v.decision, c.expected_type, o.name FROM verdicts v JOIN cups c ON c.id = v.cup_id "
            "JOIN operators o ON o.id = c.operator_id"
        ).fetchall()
        # each coin is logged as the pipeline judged it: the crop it embedded, its mask and its embedding, which the
        # nightly retrain learns from (not a box cut from the photograph, embedded again another way)
        coins = db.execute(
            "SELECT crop_ref, mask_ref, embedding FROM coins WHERE top_type IS NOT NULL AND top_type != ''"
        ).fetchall()
    assert coins and all(crop and mask and emb is not None and len(emb) > 0 for crop, mask, emb in coins)
    mint_ids = {t.id for t in generate_mint(4, 0).types}
    assert len(rows) == 1
    decision, expected, operator = rows[0]
    assert decision.lower() in ("pass", "flag") and expected in mint_ids and operator == DEMO_OPERATOR
