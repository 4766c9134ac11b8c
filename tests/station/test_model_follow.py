"""A running station follows its registry's model in force: a promotion, a damaged model, a rollback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import Verdict as VerdictRow
from db.spool import SpoolingRepository
from models.bundle import load_bundle
from models.pipeline import Pipeline
from models.registry import SHIPPED, ModelEntry, RegistryError, promote, register_version, rollback
from models.synth.mint import Mint
from station.app import MainWindow
from station.config import StationConfig
from station.controllers.catalog import OrderBook, TypeCatalog
from station.controllers.model_follow import RETRY_S, RegistryFeed
from station.controllers.overlay import FLAG_HEX
from station.worker import VerdictSource
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import enrolled_gallery, write_bundle
from tests.station.conftest import Database, SteppingClock, shown_window
from tests.station.nearest_type_pipeline import NearestTypePipeline, build_gallery, tiny_embedder

ORDER = "A-1001"
TIMEOUT_MS = 30_000


def test_registry_feed_names_and_loads_the_model_in_force(tmp_path: Path) -> None:
    site, home = tmp_path / "site", tmp_path / "home"
    path, embedder = write_bundle(tmp_path / "bundle", embedder_file=write_tiny_checkpoint(tmp_path / "emb.pt"))
    enrolled_gallery(embedder).save(home / "gallery")
    version = load_bundle(path).version
    feed = RegistryFeed(site, lambda bundle: Pipeline.load(home, bundle, with_detector=False))
    assert feed.in_force() == SHIPPED  # no registry yet: the shipped bundle
    register_version(site, path.parent, ModelEntry(version, "2026-01-01T00:00:00+00:00", SHIPPED))
    assert feed.in_force() == SHIPPED  # registered is not in force
    promote(site, version)
    assert feed.in_force() == version
    pipeline = feed.load(version)
    assert isinstance(pipeline, Pipeline) and pipeline.model_version == version
    with pytest.raises(RegistryError, match="has no bundle"):
        feed.load("verdict-00000000")
    (site / "models" / "registry.json").write_text("{")
    with pytest.raises(RegistryError, match="damaged"):
        feed.in_force()


class SeededLoader:
    """Builds the window's test pipeline from a registered folder's ``verdict.json`` (``{"seed": N}``; the shipped
    bundle is seed 0); counts its calls."""

    def __init__(self, mint: Mint) -> None:
        self.mint = mint
        self.calls: list[Path | None] = []

    def __call__(self, bundle: Path | None) -> VerdictSource:
        self.calls.append(bundle)
        seed = 0 if bundle is None else int(json.loads(bundle.read_text())["seed"])
        embedder = tiny_embedder(seed)
        return NearestTypePipeline(embedder, build_gallery(self.mint, embedder))


def _register(site: Path, tmp: Path, name: str, text: str) -> None:
    folder = tmp / f"bundle-{name}"
    folder.mkdir()
    (folder / "verdict.json").write_text(text)
    register_version(site, folder, ModelEntry(name, "2026-01-01T00:00:00+00:00", SHIPPED))


@pytest.fixture
def followed(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    station_config: StationConfig,
    replay_dir: Path,
    clock: SteppingClock,
    mint: Mint,
    tmp_path: Path,
) -> Iterator[tuple[MainWindow, Path, SeededLoader]]:
    site = tmp_path / "site"
    loader = SeededLoader(mint)
    orders = OrderBook({ORDER: catalog.types[0].type_id})
    feed = RegistryFeed(site, loader)
    with shown_window(
        qtbot, pipeline, spooling, catalog, station_config, replay_dir, clock, orders=orders, follow=(feed, SHIPPED)
    ) as win:
        yield win, site, loader


def _poll(qtbot: QtBot, win: MainWindow) -> None:
    follower = win.follower
    assert follower is not None
    follower.poll()
    qtbot.waitUntil(lambda: not follower.busy, timeout=TIMEOUT_MS)


def _check(qtbot: QtBot, win: MainWindow) -> str:
    """Scan the order, press Space; the verdict's model version once it is stored."""
    qtbot.keyClicks(win.view.order_edit, ORDER)
    qtbot.keyClick(win.view.order_edit, Qt.Key.Key_Return)
    win.activateWindow()
    with (
        qtbot.waitSignal(win.controller.verdict_shown, timeout=TIMEOUT_MS) as shown,
        qtbot.waitSignal(win.controller.store_shown, timeout=TIMEOUT_MS),
    ):
        qtbot.keyClick(win.view.preview, Qt.Key.Key_Space)
    return str(shown.args[0].verdict.model_version)


def test_a_running_station_follows_promotions_and_keeps_its_model_through_a_damaged_one(
    qtbot: QtBot,
    followed: tuple[MainWindow, Path, SeededLoader],
    pipeline: NearestTypePipeline,
    database: Database,
    clock: SteppingClock,
) -> None:
    win, site, loader = followed
    label = win.view.model_label
    _register(site, site.parent, "v1", '{"seed": 1}')
    _register(site, site.parent, "v2", "{damaged")
    _poll(qtbot, win)  # registered, but nothing new in force: nothing is loaded
    assert loader.calls == [] and pipeline.version in label.text()
    assert _check(qtbot, win) == pipeline.version

    promote(site, "v1")  # the nightly retrain promotes a model
    with qtbot.waitSignal(win.worker.worker.model_changed, timeout=TIMEOUT_MS) as changed:
        _poll(qtbot, win)
    new_version = str(changed.args[0])
    assert new_version != pipeline.version and loader.calls == [site / "models" / "v1" / "verdict.json"]
    qtbot.waitUntil(lambda: label.text() == f"Model {new_version} · now in force")  # queued to the GUI thread
    assert _check(qtbot, win) == new_version  # the next cup is judged, and logged, by the promoted model
    with Session(database.repository.engine) as session:
        logged = session.scalars(select(VerdictRow.model_version).order_by(VerdictRow.id)).all()
    assert logged == [pipeline.version, new_version]

    promote(site, "v2")  # a model that cannot be loaded: v1 goes on judging, and the label says why in red
    with qtbot.waitSignal(win.follower.problem, timeout=TIMEOUT_MS) as problem:  # type: ignore[union-attr]
        _poll(qtbot, win)
    assert "model v2 could not be loaded" in problem.args[0] and "v1 stays in force" in problem.args[0]
    assert "could not be loaded" in label.text() and FLAG_HEX in label.styleSheet()
    assert _check(qtbot, win) == new_version
    assert "could not be loaded" in label.text()  # said until the registry is put right
    _poll(qtbot, win)
    assert len(loader.calls) == 2  # not tried again at every poll ...
    clock.advance(RETRY_S + 1)
    _poll(qtbot, win)
    assert len(loader.calls) == 3  # ... but after a while (a share that was briefly away)

    rollback(site)  # the supervisor puts v1 back: it is the one running, so the warning goes
    with qtbot.waitSignal(win.follower.problem, timeout=TIMEOUT_MS) as cleared:  # type: ignore[union-attr]
        _poll(qtbot, win)
    assert cleared.args[0] == "" and label.text() == f"Model {new_version}" and label.styleSheet() == ""

    promote(site, SHIPPED)  # back to the bundle shipped with cupcheck
    with qtbot.waitSignal(win.worker.worker.model_changed, timeout=TIMEOUT_MS) as changed:
        _poll(qtbot, win)
    assert loader.calls[-1] is None and changed.args[0] == pipeline.version
