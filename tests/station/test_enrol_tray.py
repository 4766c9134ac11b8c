"""Enrolling a new type from the station's tray: a supervisor photographs each side, the type enters the gallery."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from db.records import OperatorInfo
from db.spool import SpoolingRepository
from models.enroll import TypeInfo, load_catalog
from models.enroll_tray import TrayType, look_at_tray, write_tray_catalog
from models.gallery import Gallery
from models.pipeline import Pipeline
from models.types import Decision, Frame, Side
from station.config import StationConfig, config_from_dict
from station.controllers.catalog import TypeCatalog
from station.controllers.enrol import Enrolment, enrol_folder
from station.controllers.enrol_tray import ENROLMENTS, TrayEnrolment
from station.controllers.overlay import FLAG_BGR, PASS_BGR, draw_tray
from station.main_window import MainWindow
from tests.models.tray_world import HELD_OUT, TrayWorld
from tests.station.conftest import OpenWindow, SteppingClock, shown_window

SUPERVISOR = OperatorInfo(id=1, name="sam", role="supervisor", active=True)


@pytest.fixture
def tray_folder(tray_world: TrayWorld, tmp_path: Path) -> Path:
    """The camera's view: the tray obverse up, and after 60 s of the clock the same coins turned over."""
    folder = tmp_path / "camera"
    folder.mkdir()
    cv2.imwrite(str(folder / "a-obverse.png"), tray_world.obverse.image)
    cv2.imwrite(str(folder / "b-reverse.png"), tray_world.reverse.image)
    return folder


@pytest.fixture
def gallery_dir(tray_world: TrayWorld, tmp_path: Path) -> Path:
    copy = tmp_path / "site" / "gallery"
    shutil.copytree(tray_world.gallery_dir, copy)
    return copy


@pytest.fixture
def signing_in() -> list[OperatorInfo | None]:
    """Who the supervisor sign-in returns (``None``: cancelled)."""
    return [SUPERVISOR]


@pytest.fixture
def tray_window(
    qtbot: QtBot,
    signing_in: list[OperatorInfo | None],
    tray_world: TrayWorld,
    spooling: SpoolingRepository,
    tray_folder: Path,
    gallery_dir: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> Iterator[MainWindow]:
    config: StationConfig = config_from_dict(
        {"name": "bench-1", "sound": False, "camera": {"kind": "folder", "folder": str(tray_folder), "fps": 50}}
    )
    offer = TrayEnrolment(tmp_path / "home", gallery_dir, lambda: signing_in[0])
    catalog = TypeCatalog.from_gallery(gallery_dir)
    with shown_window(
        qtbot, tray_world.pipeline, spooling, catalog, config, tray_folder, clock, tray_enrolment=offer
    ) as win:
        yield win


def _shoot(qtbot: QtBot, win: MainWindow, side: Side) -> None:
    assert win.tray_dialog is not None
    view, controller = win.tray_dialog
    qtbot.mouseClick(view.sides[side].shoot_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: side in controller.looks and not controller.busy, timeout=60_000)


def test_a_supervisor_enrols_a_type_from_two_photographs(
    qtbot: QtBot,
    tray_window: MainWindow,
    tray_world: TrayWorld,
    gallery_dir: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> None:
    win = tray_window
    assert win.view.enrol_tray_button.isVisible()
    win.controller.choose_type(win.controller.catalog.types[0].type_id)
    qtbot.mouseClick(win.view.enrol_tray_button, Qt.MouseButton.LeftButton)
    assert win.tray_dialog is not None
    view, controller = win.tray_dialog
    assert view.isVisible() and win.view.banner.text() == "ENROLLING"
    assert not win.view.enrol_tray_button.isEnabled() and not win.view.empty_tray_button.isEnabled()
    assert not win.controller.check()  # no cup is checked while the tray holds the new coins

    _shoot(qtbot, win, Side.OBVERSE)
    obverse = controller.looks[Side.OBVERSE]
    assert np.array_equal(obverse.image, tray_world.obverse.image)
    panel = view.sides[Side.OBVERSE]
    assert panel.summary.text().startswith(f"{len(obverse.references)} of {len(obverse.coins)} coins kept")
    family = tray_world.mint.types[0].design(Side.OBVERSE).id
    assert panel.design_check.isVisible() and panel.design_check.isChecked()  # the family's obverse, ticked
    assert family in panel.design_check.text()
    assert "turn every coin over" in view.status.text()
    assert not view.enrol_button.isEnabled()  # no type id yet

    clock.advance(60.0)  # the coins are turned over
    qtbot.waitUntil(
        lambda: controller.frame is not None and np.array_equal(controller.frame.image, tray_world.reverse.image),
        timeout=10_000,
    )
    _shoot(qtbot, win, Side.REVERSE)
    assert not view.sides[Side.REVERSE].design_check.isChecked()  # its own design
    view.type_edit.setText(HELD_OUT)
    view.name_edit.setText("State twelve")
    assert view.enrol_button.isEnabled()
    with qtbot.waitSignal(controller.enrolled, timeout=60_000):
        qtbot.mouseClick(view.enrol_button, Qt.MouseButton.LeftButton)
    assert f"Enrolled 1 types ({HELD_OUT})" in view.status.text()

    gallery = Gallery.load(gallery_dir)
    entries = [e for e in gallery.entries.values() if e.type_id == HELD_OUT]
    sides = {s: sum(e.side == s for e in entries) for s in Side}
    assert sides == {s: len(controller.looks[s].references) for s in Side}
    assert {e.design for e in entries if e.side == Side.OBVERSE} == {family}
    assert load_catalog(gallery_dir / "catalog.json")[HELD_OUT].name == "State twelve"
    (kept,) = (tmp_path / "home" / ENROLMENTS).iterdir()
    assert kept.name.endswith(f"-{HELD_OUT}") and (kept / "tray-reverse.jpg").is_file()

    view.close_button.click()
    qtbot.waitUntil(lambda: win.tray_dialog is None, timeout=5_000)
    assert win.view.banner.text() == "READY" and win.view.check_button.isEnabled()
    assert win.view.enrol_tray_button.isEnabled() and win.view.empty_tray_button.isEnabled()
    assert win.controller.check()  # cups are checked again


def test_enrolling_a_type_again_asks_first(qtbot: QtBot, tray_window: MainWindow) -> None:
    win = tray_window
    qtbot.mouseClick(win.view.enrol_tray_button, Qt.MouseButton.LeftButton)
    assert win.tray_dialog is not None
    view, controller = win.tray_dialog
    _shoot(qtbot, win, Side.OBVERSE)
    win.pump.stop()  # the camera goes: nothing to photograph until it is back
    win.pump.pump.camera_lost.emit("tray-cam")
    assert controller.frame is None
    assert "tray-cam stopped delivering" in view.status.text()
    assert not controller.shoot(Side.REVERSE) and Side.REVERSE not in controller.looks
    existing = win.controller.catalog.types[0].type_id
    view.type_edit.setText(existing)
    assert not controller.enrol()
    assert f"{existing} is enrolled already" in view.status.text()
    view.diameter_edit.setText("twenty")
    assert not controller.enrol() and "number of millimetres" in view.status.text()
    view.diameter_edit.setText("")
    view.type_edit.setText("no/slash")
    assert not controller.enrol() and "type id must be" in view.status.text()
    view.reject()
    qtbot.waitUntil(lambda: win.tray_dialog is None, timeout=5_000)
    # the camera is still away: the window says so first, not READY
    assert win.view.banner.text() == "NO CAM" and win.view.detail.text() == "Enrolment closed."


def test_nothing_opens_when_the_supervisor_cancels(
    tray_window: MainWindow, signing_in: list[OperatorInfo | None]
) -> None:
    signing_in[0] = None
    assert tray_window.enrol_from_tray() is None and tray_window.tray_dialog is None
    assert tray_window.view.banner.text() != "ENROLLING"


def test_a_model_that_finds_no_coins_cannot_enrol(window_with: OpenWindow, gallery_dir: Path, tmp_path: Path) -> None:
    offer = TrayEnrolment(tmp_path, gallery_dir, lambda: SUPERVISOR)
    with window_with(tray_enrolment=offer) as win:  # the stand-in model has no detector
        assert win.enrol_from_tray() is None and win.tray_dialog is None
        assert "cannot enrol from the tray" in win.view.reason.text()
    with window_with() as win:
        assert not win.view.enrol_tray_button.isVisible()


def test_time_spent_enrolling_is_not_idle_time(qtbot: QtBot, tray_window: MainWindow, clock: SteppingClock) -> None:
    win = tray_window
    win.controller.sign_out_after_s = 300.0
    qtbot.mouseClick(win.view.enrol_tray_button, Qt.MouseButton.LeftButton)
    assert win.tray_dialog is not None
    clock.advance(600.0)  # ten minutes with the dialog open
    assert not win.controller.idle_tick()
    win.tray_dialog[0].reject()
    qtbot.waitUntil(lambda: win.tray_dialog is None, timeout=5_000)
    assert not win.controller.idle_tick() and win.controller.signed_in
    clock.advance(301.0)
    assert win.controller.idle_tick() and win.view.banner.text() == "SIGN IN"


def test_the_photograph_shows_references_green_and_coins_left_out_orange(tray_world: TrayWorld) -> None:
    look = look_at_tray(tray_world.pipeline, Frame(tray_world.stray.image), Side.REVERSE)
    assert look.references and look.left_out
    drawn = draw_tray(look)
    assert drawn.shape == look.image.shape and np.array_equal(look.image, tray_world.stray.image)  # a copy

    def patches(colour: tuple[int, int, int]) -> int:  # pixels of exactly that colour: the number patches
        return int(np.all(drawn == np.array(colour, np.uint8), axis=2).sum())

    assert patches(PASS_BGR) > 0 and patches(FLAG_BGR) > 0
    everyone_kept = dataclasses.replace(look, references=tuple(range(len(look.coins))), left_out={})
    assert not np.all(draw_tray(everyone_kept) == np.array(FLAG_BGR, np.uint8), axis=2).any()  # no orange at all


def test_a_type_enrolled_again_from_the_tray_keeps_its_lookalike_name_and_diameter(
    tray_world: TrayWorld, gallery_dir: Path, tmp_path: Path
) -> None:
    """The dialog asks for no lookalikes: enrolled again from the tray, a type declared a lookalike of another stays
    one (its fresh cup is still flagged for it, not passed), and keeps the name and diameter left blank."""
    family = tray_world.mint.types[0].design(Side.OBVERSE).id
    looks = {side: look_at_tray(tray_world.pipeline, frame, side) for side, frame in _tray_frames(tray_world)}
    embedder = tray_world.pipeline.embedder.without_adapter
    first = write_tray_catalog(
        tmp_path / "first", TrayType(HELD_OUT, "State twelve", 24.26, {Side.OBVERSE: family}), looks
    )
    with (first / HELD_OUT / "coin.toml").open("a") as toml:
        toml.write('lookalikes = ["t0005"]\n')  # declared in its catalogue folder, as `cupcheck enroll` reads it
    enrol_folder(first, Enrolment(gallery_dir, embedder))
    declared = TypeInfo(HELD_OUT, "State twelve", 24.26, ("t0005",), family)
    assert load_catalog(gallery_dir / "catalog.json")[HELD_OUT] == declared

    again = TrayType(HELD_OUT, designs={Side.OBVERSE: family})  # name and diameter left blank
    TrayEnrolment(tmp_path / "home", gallery_dir).enrol(embedder)(again, looks)
    assert load_catalog(gallery_dir / "catalog.json")[HELD_OUT] == declared
    (kept,) = (tmp_path / "home" / ENROLMENTS).iterdir()  # the folder kept to enrol again after a new embedder
    assert 'lookalikes = ["t0005"]' in (kept / "catalog" / HELD_OUT / "coin.toml").read_text()
    station = Pipeline.load(tmp_path / "home", gallery_home=gallery_dir.parent)
    verdict = station.run(Frame(tray_world.fresh.image), HELD_OUT)
    assert verdict.decision is Decision.FLAG and any("lookalike (t0005)" in r for r in verdict.reasons)


def _tray_frames(world: TrayWorld) -> tuple[tuple[Side, Frame], ...]:
    return ((Side.OBVERSE, world.obverse), (Side.REVERSE, world.reverse))
