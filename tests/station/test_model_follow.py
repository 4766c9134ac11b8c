"""A running station follows what is put in force: a promotion, a damaged model, a rollback, a type enrolled and
a new orders file while the window runs."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import Verdict as VerdictRow
from db.spool import SpoolingRepository
from models.bundle import load_bundle
from models.embedder import Embedder
from models.gallery import Gallery, GalleryEntry
from models.pipeline import Pipeline
from models.registry import (
    SHIPPED,
    ModelEntry,
    RegistryError,
    RegistryMissing,
    promote,
    register_version,
    rollback,
)
from models.synth.mint import Mint
from models.types import Side
from station.config import StationConfig
from station.controllers.catalog import ORDERS_FILE
from station.controllers.model_follow import (
    RETRY_S,
    InForce,
    RegistryFeed,
    restamp,
    setup_stamp,
    start_in_force,
)
from station.controllers.overlay import FLAG_HEX, PASS_HEX
from station.main_window import MainWindow
from station.worker import VerdictSource, model_version
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import enrolled_gallery, write_bundle
from tests.station.conftest import Database, SteppingClock, shown_window
from tests.station.nearest_type_pipeline import NearestTypePipeline, face_bgr, tiny_embedder

TIMEOUT_MS = 30_000


def test_registry_feed_names_and_loads_what_is_in_force(tmp_path: Path) -> None:
    site, home = tmp_path / "site", tmp_path / "home"
    path, embedder = write_bundle(tmp_path / "bundle", embedder_file=write_tiny_checkpoint(tmp_path / "emb.pt"))
    enrolled_gallery(embedder).save(home / "gallery")
    version = load_bundle(path).version
    feed = RegistryFeed(site, home, lambda bundle: Pipeline.load(home, bundle, with_detector=False))
    first = feed.in_force()
    assert first.model == SHIPPED and "gallery/manifest.json" in first.setup  # no registry yet: the shipped bundle
    register_version(site, path.parent, ModelEntry(version, "2026-01-01T00:00:00+00:00", SHIPPED))
    assert feed.in_force() == first  # registered is not in force
    promote(site, version)
    state = feed.in_force()
    assert state == InForce(version, first.setup)
    loaded = feed.load(state)
    assert isinstance(loaded.pipeline, Pipeline) and loaded.pipeline.model_version == version
    assert loaded.catalog is not None and len(loaded.catalog) == len(loaded.pipeline.gallery.types())
    assert loaded.orders is not None and loaded.orders.lookup("A-1") is None and loaded.camera_size is None
    (home / ORDERS_FILE).write_text("A-1,t0001\n")
    newer = feed.in_force()  # a new orders file is a change, of the orders alone
    assert newer.setup == first.setup and newer.orders != first.orders
    only_orders = feed.load(newer, since=state)
    assert only_orders.pipeline is None and only_orders.catalog is None
    assert only_orders.orders is not None and only_orders.orders.lookup("A-1") == "t0001"
    (home / ORDERS_FILE).write_text("A-1\n")  # a broken orders file stops neither a start nor a model load
    for since in (None, state):
        unread = feed.load(feed.in_force(), since=since)
        assert unread.orders is None and "expected 'order,type[,count]'" in unread.orders_error
        assert (unread.pipeline is None) == (since is not None)
    started = start_in_force(feed)
    assert isinstance(started.loaded.pipeline, Pipeline) and started.problem == ""
    assert started.loaded.orders is None and "A-1" in started.loaded.orders_error
    (home / ORDERS_FILE).write_text("A-1,t0001\n")
    with pytest.raises(RegistryError, match="has no bundle"):
        feed.load(InForce("verdict-00000000"))
    fixed = RegistryFeed(site, home, feed.load_bundle, bundle=path)  # a station given a bundle keeps it
    assert fixed.in_force().model == str(path)
    assert model_version(fixed.load(fixed.in_force()).pipeline) == version
    (site / "models" / "registry.json").write_text("{")
    with pytest.raises(RegistryError, match="damaged"):
        feed.in_force()


def test_setup_stamp_changes_with_the_files_and_skips_missing_ones(tmp_path: Path) -> None:
    assert setup_stamp(tmp_path) == ""
    (tmp_path / "calibration.json").write_text("{}")
    one = setup_stamp(tmp_path)
    assert one.startswith("calibration.json:2:")
    (tmp_path / "calibration.json").write_text('{"a": 1}')
    assert setup_stamp(tmp_path) != one


def _gallery(mint: Mint, embedder: Embedder, type_ids: set[str]) -> Gallery:
    """Both faces of each of ``type_ids``, embedded by ``embedder``."""
    gallery = Gallery(embedder.embed_dim, embedder.version)
    coins = [c for c in mint.types if c.id in type_ids]
    images = [face_bgr(c, side) for c in coins for side in (Side.OBVERSE, Side.REVERSE)]
    entries = [
        GalleryEntry(c.id, side, f"{c.id}/{side.value}", f"mint:{c.id}")
        for c in coins
        for side in (Side.OBVERSE, Side.REVERSE)
    ]
    gallery.add(embedder.embed(images), entries)
    return gallery


class SeededLoader:
    """Builds the window's test pipeline for the types enrolled in the home's saved gallery, with the embedder a
    registered folder's ``verdict.json`` names (``{"seed": N}``; the shipped bundle is seed 0); keeps its calls.
    With a ``gate``, each load waits for it (a promoted model's first load, which makes its ONNX graphs, is slow)."""

    def __init__(self, mint: Mint, home: Path) -> None:
        self.mint = mint
        self.home = home
        self.calls: list[Path | None] = []
        self.gate: threading.Event | None = None

    def __call__(self, bundle: Path | None) -> VerdictSource:
        if self.gate is not None:
            assert self.gate.wait(timeout=20), "the test never opened the gate"
        self.calls.append(bundle)
        seed = 0 if bundle is None else int(json.loads(bundle.read_text())["seed"])
        embedder = tiny_embedder(seed)
        enrolled = set(Gallery.load(self.home / "gallery").types())
        return NearestTypePipeline(embedder, _gallery(self.mint, embedder, enrolled))


def _register(site: Path, name: str, text: str) -> None:
    folder = site.parent / f"bundle-{name}"
    folder.mkdir()
    (folder / "verdict.json").write_text(text)
    register_version(site, folder, ModelEntry(name, "2026-01-01T00:00:00+00:00", SHIPPED))


@dataclass
class Followed:
    """The followed window, its registry folder, its home, its loader."""

    win: MainWindow
    site: Path
    home: Path
    loader: SeededLoader


@pytest.fixture
def followed(
    qtbot: QtBot,
    spooling: SpoolingRepository,
    station_config: StationConfig,
    replay_dir: Path,
    clock: SteppingClock,
    mint: Mint,
    tmp_path: Path,
) -> Iterator[Followed]:
    """A window on a home whose gallery holds every mint type but the first (the replayed cups' type)."""
    site, home = tmp_path / "site", tmp_path / "home"
    _gallery(mint, tiny_embedder(0), {c.id for c in mint.types[1:]}).save(home / "gallery")
    loader = SeededLoader(mint, home)
    feed = RegistryFeed(site, home, loader)
    state = feed.in_force()
    loaded = feed.load(state)
    assert loaded.catalog is not None and loaded.orders is not None
    with shown_window(
        qtbot,
        loaded.pipeline,  # type: ignore[arg-type]
        spooling,
        loaded.catalog,
        station_config,
        replay_dir,
        clock,
        orders=loaded.orders,
        follow=(feed, state),
    ) as win:
        loader.calls.clear()
        yield Followed(win, site, home, loader)


def _poll(qtbot: QtBot, win: MainWindow) -> None:
    follower = win.follower
    assert follower is not None
    follower.poll()
    qtbot.waitUntil(lambda: not follower.busy, timeout=TIMEOUT_MS)


def _choose_and_check(qtbot: QtBot, win: MainWindow, type_id: str) -> tuple[str, str]:
    """Choose ``type_id``, press Space; the verdict's banner and model version once it is stored."""
    win.controller.choose_type(type_id)
    win.activateWindow()
    with (
        qtbot.waitSignal(win.controller.verdict_shown, timeout=TIMEOUT_MS) as shown,
        qtbot.waitSignal(win.controller.store_shown, timeout=TIMEOUT_MS),
    ):
        qtbot.keyClick(win.view.preview, Qt.Key.Key_Space)
    return win.view.banner.text(), str(shown.args[0].verdict.model_version)


def _next_cup(qtbot: QtBot, win: MainWindow, clock: SteppingClock) -> None:
    """Put the next replayed cup under the camera (Space on the cup just checked, unchanged, checks nothing)."""
    frame = win.controller.frame
    before = None if frame is None else frame.source
    clock.advance(60.0)  # the replay's hold: the next picture
    qtbot.waitUntil(lambda: win.controller.frame is not None and win.controller.frame.source != before)


def _listed(win: MainWindow) -> list[str]:
    lst = win.view.type_list
    return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())]


def test_a_running_station_follows_promotions_and_keeps_its_model_through_a_damaged_one(
    qtbot: QtBot, followed: Followed, database: Database, clock: SteppingClock, mint: Mint
) -> None:
    win, site = followed.win, followed.site
    calls, label = followed.loader.calls, win.view.model_label
    other = mint.types[1].id
    first_version = win.controller.model_version_shown
    _register(site, "v1", '{"seed": 1}')
    _register(site, "v2", "{damaged")
    _poll(qtbot, win)  # registered, but nothing new in force: nothing is loaded
    assert calls == [] and label.text() == f"Model {first_version}"
    assert _choose_and_check(qtbot, win, other) == ("FLAG", first_version)

    promote(site, "v1")  # the nightly retrain promotes a model
    with qtbot.waitSignal(win.worker.worker.model_changed, timeout=TIMEOUT_MS) as changed:
        _poll(qtbot, win)
    new_version = str(changed.args[0])
    assert new_version != first_version and calls == [site / "models" / "v1" / "verdict.json"]
    qtbot.waitUntil(lambda: label.text() == f"Model {new_version} · now in force")  # queued to the GUI thread
    _next_cup(qtbot, win, clock)
    assert _choose_and_check(qtbot, win, other)[1] == new_version  # the next cup is judged, and logged, by it
    with Session(database.repository.engine) as session:
        logged = session.scalars(select(VerdictRow.model_version).order_by(VerdictRow.id)).all()
    assert logged == [first_version, new_version]

    promote(site, "v2")  # a model that cannot be loaded: v1 goes on judging, and the label says why in red
    with qtbot.waitSignal(win.follower.problem, timeout=TIMEOUT_MS) as problem:  # type: ignore[union-attr]
        _poll(qtbot, win)
    assert problem.args[0] == "model v2 could not be loaded; v1 stays in force"
    assert problem.args[1].startswith("JSONDecodeError: ")  # the error itself: in the label's tooltip
    assert label.text() == "model v2 could not be loaded; v1 stays in force"
    assert FLAG_HEX in label.styleSheet() and label.toolTip().endswith(problem.args[1])
    _next_cup(qtbot, win, clock)
    assert _choose_and_check(qtbot, win, other)[1] == new_version
    assert "could not be loaded" in label.text()  # said until the registry is put right
    _poll(qtbot, win)
    assert len(calls) == 2  # not tried again at every poll ...
    clock.advance(RETRY_S + 1)
    _poll(qtbot, win)
    assert len(calls) == 3  # ... but after a while (a share that was briefly away)

    rollback(site)  # the supervisor puts v1 back: it is the one running, so the warning goes
    with qtbot.waitSignal(win.follower.problem, timeout=TIMEOUT_MS) as cleared:  # type: ignore[union-attr]
        _poll(qtbot, win)
    assert cleared.args[0] == "" and label.text() == f"Model {new_version}" and label.styleSheet() == ""
    assert label.toolTip() == label.text()

    promote(site, SHIPPED)  # back to the bundle shipped with cupcheck
    with qtbot.waitSignal(win.worker.worker.model_changed, timeout=TIMEOUT_MS) as changed:
        _poll(qtbot, win)
    assert calls[-1] is None and changed.args[0] == first_version


def test_a_type_enrolled_and_an_order_added_while_the_station_runs_are_used_at_once(
    qtbot: QtBot, followed: Followed, mint: Mint
) -> None:
    win, home = followed.win, followed.home
    new_type = mint.types[0].id  # the replayed pure cup's type, not enrolled when the window opened
    assert new_type not in _listed(win)
    qtbot.keyClicks(win.view.order_edit, "B-7")
    qtbot.keyClick(win.view.order_edit, Qt.Key.Key_Return)
    assert "B-7" in win.view.order_status.text() and win.controller.expected_type is None  # unknown order

    _gallery(mint, tiny_embedder(0), {c.id for c in mint.types}).save(home / "gallery")  # a supervisor enrols it
    (home / ORDERS_FILE).write_text(f"order,type\nB-7,{new_type}\n")  # and the day's orders arrive
    version = win.controller.model_version_shown
    with qtbot.waitSignal(win.follower.setup_loaded, timeout=TIMEOUT_MS):  # type: ignore[union-attr]
        _poll(qtbot, win)
    assert followed.loader.calls == [None]  # the same (shipped) model, loaded again with the new gallery
    assert new_type in _listed(win) and win.view.model_label.text() == f"Model {version}"
    win.view.order_edit.clear()
    qtbot.keyClicks(win.view.order_edit, "B-7")
    qtbot.keyClick(win.view.order_edit, Qt.Key.Key_Return)
    assert win.controller.expected_type == new_type and win.controller.order == "B-7"
    banner, _ = _choose_and_check(qtbot, win, new_type)
    assert banner == "PASS" and win.view.banner.colour == PASS_HEX  # judged with the type it now knows
    _poll(qtbot, win)
    assert followed.loader.calls == [None]  # nothing changed since: nothing loaded again


def test_a_station_whose_model_in_force_is_damaged_starts_on_the_one_before_it(tmp_path: Path, mint: Mint) -> None:
    site, home = tmp_path / "site", tmp_path / "home"
    _gallery(mint, tiny_embedder(0), {c.id for c in mint.types}).save(home / "gallery")
    feed = RegistryFeed(site, home, SeededLoader(mint, home))
    _register(site, "v1", '{"seed": 1}')
    _register(site, "v2", "{damaged")
    promote(site, "v1")
    promote(site, "v2")  # a bad promotion on the share must not keep every station from starting
    started = start_in_force(feed)
    assert started.state == InForce("v1", feed.in_force().setup) and started.detail.startswith("JSONDecodeError")
    assert started.problem == "model v2 could not be loaded; v1 runs instead"
    (site / "models" / "v1" / "verdict.json").unlink()  # v1 gone too: the shipped bundle
    started = start_in_force(feed)
    assert started.state.model == SHIPPED and started.problem == f"model v2 could not be loaded; {SHIPPED} runs instead"
    promote(site, SHIPPED)
    assert start_in_force(feed).problem == ""
    shutil.rmtree(home / "gallery")  # what no model can do without: the first error, as before
    with pytest.raises(FileNotFoundError):
        start_in_force(feed)
    given = RegistryFeed(site, home, feed.load_bundle, bundle=tmp_path / "bundle-v2" / "verdict.json")
    _gallery(mint, tiny_embedder(0), {c.id for c in mint.types}).save(home / "gallery")
    with pytest.raises(ValueError):  # a bundle the station was given is never swapped for another
        start_in_force(given)


def test_registry_feed_follows_a_shared_gallery(tmp_path: Path) -> None:
    site, home = tmp_path / "site", tmp_path / "home"
    path, embedder = write_bundle(tmp_path / "bundle", embedder_file=write_tiny_checkpoint(tmp_path / "emb.pt"))
    gallery = enrolled_gallery(embedder)
    gallery.save(site / "gallery")  # enrolled once for the site; the home holds none
    feed = RegistryFeed(
        site, home, lambda b: Pipeline.load(home, b, with_detector=False, gallery_home=site), bundle=path, gallery=site
    )
    first = feed.in_force()
    loaded = feed.load(first)
    assert isinstance(loaded.pipeline, Pipeline) and loaded.catalog is not None
    assert set(loaded.pipeline.gallery.types()) == {t.type_id for t in loaded.catalog.types} == set(gallery.types())
    time.sleep(0.01)
    gallery.save(site / "gallery")  # enrolled again on another PC
    (site / "gallery" / "manifest.json").touch()
    assert feed.in_force().setup != first.setup
    with pytest.raises(FileNotFoundError):
        Pipeline.load(home, path, with_detector=False)  # the home's own gallery: none
    (site / "gallery").rename(tmp_path / "away")  # the share drops out
    with pytest.raises(FileNotFoundError, match="is the share mounted"):
        feed.load(feed.in_force())


def test_a_shared_registry_that_goes_away_never_downgrades_the_model(
    qtbot: QtBot, followed: Followed, tmp_path: Path
) -> None:
    win, site, home = followed.win, followed.site, followed.home
    follower = win.follower
    assert follower is not None
    feed = RegistryFeed(site, home, followed.loader, shared=True)
    follower.feed = feed
    with pytest.raises(RegistryMissing, match="is the share mounted"):
        feed.in_force()  # a site whose registry was never started, or a share not mounted: no registry file
    started = start_in_force(feed)  # a station starting then runs the shipped bundle and says why
    assert started.state.model == SHIPPED and started.problem.startswith("no model registry")

    _register(site, "v1", '{"seed": 1}')
    promote(site, "v1")
    with qtbot.waitSignal(win.worker.worker.model_changed, timeout=TIMEOUT_MS) as changed:
        _poll(qtbot, win)
    v1 = str(changed.args[0])
    away = tmp_path / "unmounted"
    site.rename(away)  # the share drops out: its mount point is empty
    site.mkdir()
    with qtbot.waitSignal(follower.problem, timeout=TIMEOUT_MS) as problem:
        _poll(qtbot, win)
    assert problem.args[0] == "the model registry cannot be read; v1 stays in force"
    assert "RegistryMissing" in problem.args[1] and follower.state.model == "v1"
    assert _choose_and_check(qtbot, win, followed_type(win))[1] == v1  # still judged by v1, not the shipped bundle
    site.rmdir()
    away.rename(site)  # mounted again
    with qtbot.waitSignal(follower.problem, timeout=TIMEOUT_MS) as cleared:
        _poll(qtbot, win)
    assert cleared.args[0] == "" and followed.loader.calls[-1] == site / "models" / "v1" / "verdict.json"


def followed_type(win: MainWindow) -> str:
    """A type the window lists."""
    return _listed(win)[0]


def test_a_warning_goes_once_what_runs_is_in_force_again(qtbot: QtBot, followed: Followed) -> None:
    win, home = followed.win, followed.home
    follower, label = win.follower, win.view.model_label
    assert follower is not None
    version = win.controller.model_version_shown
    # a start on a fallback model: the warning stays until the registry names the model that runs
    follower.say("model v9 could not be loaded; shipped runs instead", "JSONDecodeError: ...")
    assert label.text() == "model v9 could not be loaded; shipped runs instead" and FLAG_HEX in label.styleSheet()
    with qtbot.waitSignal(follower.problem, timeout=TIMEOUT_MS) as cleared:
        _poll(qtbot, win)  # the registry names the shipped bundle, which runs: all is well
    assert cleared.args[0] == "" and label.text() == f"Model {version}"

    hint, status = win.view.order_edit.placeholderText(), win.view.order_status
    (home / ORDERS_FILE).write_text(f"B-7,{_listed(win)[0]}\n")  # the day's orders
    _poll(qtbot, win)
    assert win.controller.expected_type is None
    (home / ORDERS_FILE).write_text("B-7\n")  # then a broken orders file: the orders read before stay in use
    _poll(qtbot, win)
    assert "expected 'order,type[,count]'" in win.view.order_edit.toolTip()
    assert win.view.order_edit.placeholderText() == "orders.csv cannot be read: pick the type from the list"
    assert status.text().startswith("orders.csv cannot be read: ") and FLAG_HEX in status.styleSheet()
    assert label.text() == f"Model {version}"  # not the model's problem
    qtbot.keyClicks(win.view.order_edit, "C-9")
    qtbot.keyClick(win.view.order_edit, Qt.Key.Key_Return)
    assert status.text() == "Unknown order or type: C-9 (orders.csv cannot be read)"
    assert win.controller.orders.lookup("B-7") == _listed(win)[0]
    (home / ORDERS_FILE).write_text(f"B-7,{_listed(win)[0]}\n")  # put right
    _poll(qtbot, win)
    assert win.view.order_edit.placeholderText() == hint and label.styleSheet() == ""
    assert followed.loader.calls == []  # only the orders changed: no model was loaded again for them
    win.controller.choose_type(_listed(win)[1])
    qtbot.keyClicks(win.view.order_edit, "B-7")
    qtbot.keyClick(win.view.order_edit, Qt.Key.Key_Return)
    assert win.controller.expected_type == _listed(win)[0]  # the new orders are in use


def test_an_empty_tray_photo_taken_in_the_window_loads_nothing_again(qtbot: QtBot, followed: Followed) -> None:
    """The window hands the photo to the pipeline it runs; the follower takes the file's new stamp as what runs."""
    win, home = followed.win, followed.home
    cv2.imwrite(str(home / "empty_tray.png"), np.full((48, 64, 3), 90, np.uint8))  # as the worker stores it
    win.worker.worker.empty_tray_done.emit(True, "Kept as the empty tray.", (64, 48))  # what the worker says then
    _poll(qtbot, win)
    assert followed.loader.calls == []  # nothing loaded again for it
    cv2.imwrite(str(home / "empty_tray.png"), np.full((48, 64, 3), 120, np.uint8))  # another PC's calibrate
    with qtbot.waitSignal(win.follower.setup_loaded, timeout=TIMEOUT_MS):  # type: ignore[union-attr]
        _poll(qtbot, win)
    assert followed.loader.calls == [None]


@pytest.mark.parametrize(
    ("runs", "now", "taken"),
    [
        # the empty tray is new, and so is the gallery: only the empty tray's part is taken
        (
            "calibration.json:2:1;empty_tray.png:9:1|gallery/manifest.json:5:1",
            "calibration.json:2:1;empty_tray.png:9:2|gallery/manifest.json:6:3",
            "calibration.json:2:1;empty_tray.png:9:2|gallery/manifest.json:5:1",
        ),
        # a first empty-tray photo goes where the stamp lists it, whatever else was recalibrated
        (
            "calibration.json:2:1;setup_view.png:4:1|",
            "calibration.json:3:2;empty_tray.png:9:2;setup_view.png:4:2|",
            "calibration.json:2:1;empty_tray.png:9:2;setup_view.png:4:1|",
        ),
        # the photo gone from the disk: its part goes
        ("empty_tray.png:9:1|gallery/manifest.json:5:1", "|gallery/manifest.json:5:1", "|gallery/manifest.json:5:1"),
    ],
)
def test_restamp_takes_only_the_named_files_part(runs: str, now: str, taken: str) -> None:
    assert restamp(runs, now, "empty_tray.png") == taken


def _scan(qtbot: QtBot, win: MainWindow, order: str) -> None:
    """Scan ``order`` into the order box, as a barcode scanner types it."""
    win.view.order_edit.clear()
    qtbot.keyClicks(win.view.order_edit, order)
    qtbot.keyClick(win.view.order_edit, Qt.Key.Key_Return)


def _take_empty_tray(win: MainWindow, home: Path, grey: int) -> None:
    """What the worker does when the operator photographs the empty tray: the file, then its signal."""
    cv2.imwrite(str(home / "empty_tray.png"), np.full((48, 64, 3), grey, np.uint8))
    win.worker.worker.empty_tray_done.emit(True, "Kept as the empty tray.", (64, 48))


def test_a_type_enrolled_just_before_an_empty_tray_photo_is_still_loaded(
    qtbot: QtBot, followed: Followed, mint: Mint
) -> None:
    """The photo stamps only its own file as running: the gallery enrolled before it, unseen by any poll yet, is
    loaded at the next one."""
    win, home = followed.win, followed.home
    new_type = mint.types[0].id
    _gallery(mint, tiny_embedder(0), {c.id for c in mint.types}).save(home / "gallery")  # enrolled, not yet polled
    _take_empty_tray(win, home, 90)
    with qtbot.waitSignal(win.follower.setup_loaded, timeout=TIMEOUT_MS):  # type: ignore[union-attr]
        _poll(qtbot, win)
    assert followed.loader.calls == [None] and new_type in _listed(win)
    _take_empty_tray(win, home, 120)  # another photo, nothing else new: nothing loaded for it
    _poll(qtbot, win)
    assert followed.loader.calls == [None]


def test_an_empty_tray_photo_does_not_clear_the_warning_of_a_gallery_that_cannot_be_loaded(
    qtbot: QtBot, followed: Followed
) -> None:
    win, home = followed.win, followed.home
    label = win.view.model_label
    manifest = home / "gallery" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])  # a write cut short
    _poll(qtbot, win)
    said = "the station's new gallery or camera set-up could not be loaded; the old ones stay"
    assert label.text() == said and FLAG_HEX in label.styleSheet()
    _take_empty_tray(win, home, 90)
    _poll(qtbot, win)
    assert label.text() == said and FLAG_HEX in label.styleSheet()  # the gallery on disk is still damaged


def test_a_new_orders_file_is_read_while_the_gallery_cannot_be_loaded(
    qtbot: QtBot, followed: Followed, clock: SteppingClock
) -> None:
    win, home = followed.win, followed.home
    label, known = win.view.model_label, _listed(win)[0]
    manifest = home / "gallery" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    _poll(qtbot, win)
    said = label.text()
    assert "could not be loaded" in said
    tries = len(followed.loader.calls)
    (home / ORDERS_FILE).write_text(f"order,type,count\nA-2000,{known},5\n")  # the day's orders arrive
    _poll(qtbot, win)
    _scan(qtbot, win, "A-2000")
    assert win.controller.expected_type == known and win.controller.order == "A-2000"
    assert label.text() == said and FLAG_HEX in label.styleSheet()  # the gallery's warning stays
    assert len(followed.loader.calls) == tries  # a new orders file is no reason to try the gallery again
    (home / ORDERS_FILE).write_text(f"order,type\nA-2001,{known}\n")
    clock.advance(RETRY_S + 1)  # tried again after a while: it fails again, and the orders are read all the same
    _poll(qtbot, win)
    assert len(followed.loader.calls) == tries + 1 and label.text() == said
    _scan(qtbot, win, "A-2001")
    assert win.controller.order == "A-2001"


def test_a_new_orders_file_is_read_while_the_shared_registry_is_away(qtbot: QtBot, followed: Followed) -> None:
    win, site, home = followed.win, followed.site, followed.home
    follower, label, known = win.follower, win.view.model_label, _listed(win)[0]
    assert follower is not None
    follower.feed = RegistryFeed(site, home, followed.loader, shared=True)  # the share holds no registry: away
    with qtbot.waitSignal(follower.problem, timeout=TIMEOUT_MS):
        _poll(qtbot, win)
    said = label.text()
    assert said.startswith("the model registry cannot be read")
    (home / ORDERS_FILE).write_text(f"order,type\nA-3000,{known}\n")  # the orders live in the home, not the share
    _poll(qtbot, win)
    _scan(qtbot, win, "A-3000")
    assert win.controller.expected_type == known and win.controller.order == "A-3000"
    assert label.text() == said and followed.loader.calls == []  # the warning stays; nothing else was loaded


def test_closing_while_a_new_model_loads_waits_for_the_load_then_closes(qtbot: QtBot, followed: Followed) -> None:
    win, site, loader = followed.win, followed.site, followed.loader
    follower = win.follower
    assert follower is not None
    release = loader.gate = threading.Event()
    _register(site, "v1", '{"seed": 1}')
    promote(site, "v1")
    follower.poll()
    qtbot.waitUntil(lambda: follower.loading is not None, timeout=TIMEOUT_MS)
    assert follower.loading == "model v1"
    assert not win.close() and win.isVisible()  # not yet: the load's thread cannot be stopped half-way
    assert win.view.status_bar.currentMessage() == "Loading model v1… the window closes once it is loaded."
    release.set()
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=TIMEOUT_MS)  # loaded, then closed by itself
    assert follower.loading is None and loader.calls == [site / "models" / "v1" / "verdict.json"]
