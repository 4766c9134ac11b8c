"""The stillness gate and the view watch on real rendered cups: a view that settles a pixel or two off after a jolt,
or a little darker, is the view it was; a coin put down, taken away, swapped or turned over makes another."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from db.spool import SpoolingRepository
from models.synth.mint import Mint, generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import Side, UInt8Array
from station.controllers.catalog import TypeCatalog
from station.controllers.operator import ALREADY_TEXT
from station.controllers.stillness import WATCH_PX, StillnessGate, ViewWatch, thumbnail, view_differs
from tests.station.conftest import Database, SteppingClock
from tests.station.nearest_type_pipeline import NearestTypePipeline, compose_cup, four_coins
from tests.station.test_operator import feed
from tests.station.test_operator_runtime import wired


@dataclass(frozen=True)
class RenderedCup:
    """A simulator cup as the demo shows it (640 px, up to 14 coins), and the same cup with its smallest whole coin
    turned over where it lay, or taken away (the empty tray's photograph where it was).

    Attributes:
        image: ``(640, 640, 3)`` uint8 BGR.
        turned: the same, one coin turned over.
        removed: the same, one coin taken away.
    """

    image: UInt8Array
    turned: UInt8Array
    removed: UInt8Array


@pytest.fixture(scope="module")
def cup() -> RenderedCup:
    assets = SceneAssets(generate_mint(12, 0))
    options = SceneOptions(image_size=640, max_coins=14, reverse_share=0.9, empty_reference=True)
    scene = render_cup(assets, 0, 0, options)
    assert scene.empty is not None
    whole = [c for c in scene.instances if c.is_coin and not c.partial and c.occlusion == 0.0]
    coin = min(whole, key=lambda c: c.diameter_px)
    turned = render_cup(assets, 0, 0, replace(options, turn=frozenset({coin.label}))).image
    where = cv2.dilate(scene.mask(coin).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    removed = scene.image.copy()
    removed[where] = scene.empty[where]
    assert len(scene.instances) > 5 and not np.array_equal(turned, scene.image)
    return RenderedCup(scene.image, turned, removed)


def shifted(image: UInt8Array, dx: float, dy: float) -> UInt8Array:
    """The view of a camera that settled ``dx`` px right and ``dy`` px down of where it was."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    moved = cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(moved, np.uint8)


def exposed(image: UInt8Array, gain: float) -> UInt8Array:
    """The view with the exposure (or the lamp) ``gain`` times as bright."""
    return np.asarray(np.clip(image.astype(np.float32) * gain, 0, 255), np.uint8)


def exposed_again(image: UInt8Array) -> UInt8Array:
    """Another photograph of the same view: the sensor's own noise and JPEG."""
    noisy = np.clip(image.astype(np.float32) + np.random.default_rng(7).normal(0, 3, image.shape), 0, 255)
    ok, data = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)


SAME_VIEW: dict[str, Callable[[UInt8Array], UInt8Array]] = {
    "1 px right": lambda im: shifted(im, 1, 0),
    "2 px right": lambda im: shifted(im, 2, 0),
    "1 px left and down": lambda im: shifted(im, -1, 1),
    "3 px down": lambda im: shifted(im, 0, 3),
    "8 % darker": lambda im: exposed(im, 0.92),
    "15 % darker": lambda im: exposed(im, 0.85),
    "6 % brighter": lambda im: exposed(im, 1.06),
    "1 px off, 8 % darker, another exposure": lambda im: exposed_again(exposed(shifted(im, 1, 1), 0.92)),
}


@pytest.mark.parametrize("how", list(SAME_VIEW))
def test_a_view_a_pixel_or_two_off_or_a_little_darker_is_the_view_it_was(cup: RenderedCup, how: str) -> None:
    after = SAME_VIEW[how](cup.image)
    assert not view_differs(thumbnail(cup.image, WATCH_PX), thumbnail(after, WATCH_PX))
    watch = ViewWatch()
    watch.mark(cup.image)
    assert not watch.differs_now(after)
    assert not watch.update(after) and not watch.update(after)  # the live view, settled so: nothing changed


CHANGED: dict[str, Callable[[RenderedCup], UInt8Array]] = {
    "a coin turned over": lambda c: c.turned,
    "a coin taken away": lambda c: c.removed,
    "a coin turned over, the camera 1 px off, 5 % darker": lambda c: exposed(shifted(c.turned, 1, 0), 0.95),
    "a coin taken away, the camera 1 px off and down": lambda c: shifted(c.removed, 1, 1),
    "a coin turned over, the camera 2 px off": lambda c: shifted(c.turned, -2, 0),
}


@pytest.mark.parametrize("how", list(CHANGED))
def test_a_coin_turned_over_or_taken_away_still_changes_the_view_whatever_the_jolt(cup: RenderedCup, how: str) -> None:
    after = CHANGED[how](cup)
    assert view_differs(thumbnail(cup.image, WATCH_PX), thumbnail(after, WATCH_PX))
    watch = ViewWatch()
    watch.mark(cup.image)
    assert watch.differs_now(after) and watch.update(after)


def test_a_coin_swapped_or_added_still_changes_the_view(mint: Mint) -> None:
    a, b = mint.types[0], mint.types[1]
    laid = [(a, Side.OBVERSE), (a, Side.REVERSE), (a, Side.OBVERSE)]
    before = thumbnail(compose_cup(laid), WATCH_PX)
    swapped = compose_cup([laid[0], (b, Side.REVERSE), laid[2]])  # one coin of another type where it lay
    added = compose_cup([*laid, (a, Side.REVERSE)])
    for after in (swapped, added, shifted(swapped, 1, 0), exposed(shifted(added, 0, 1), 0.93)):
        assert view_differs(before, thumbnail(after, WATCH_PX))


def test_the_gate_checks_a_cup_once_though_a_jolt_leaves_the_camera_a_pixel_off(
    cup: RenderedCup, clock: SteppingClock
) -> None:
    gate = StillnessGate(0.8, clock=clock)

    def settle(image: UInt8Array) -> tuple[int, int]:
        """A jolt (the picture shakes), then ``image`` at rest for two seconds: how many frames fired, and how many
        found the view as it was used."""
        for _ in range(3):
            clock.advance(1 / 15)
            gate.update(shifted(cup.image, 6, 3))
        fired = declined = 0
        for _ in range(30):
            clock.advance(1 / 15)
            fired += gate.update(image)
            declined += gate.declined
        return fired, declined

    assert settle(cup.image) == (1, 0)  # the cup at rest: checked once
    assert settle(shifted(cup.image, 1, 0)) == (0, 1)  # back a pixel off: the cup just checked, not checked again
    assert settle(exposed(shifted(cup.image, 1, 0), 0.92)) == (0, 1)  # and a little darker: the same
    assert settle(shifted(cup.turned, 1, 0)) == (1, 0)  # a coin turned over meanwhile: a new view, checked


def test_a_jolt_that_leaves_the_camera_a_pixel_off_logs_the_cup_once(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    database: Database,
    catalog: TypeCatalog,
    mint: Mint,
    clock: SteppingClock,
) -> None:
    a = mint.types[0]
    laid = four_coins(a)
    view, controller, asked, stored = wired(qtbot, pipeline, spooling, catalog, clock)
    controller.choose_type(a.id, order="A-1")
    feed(controller, laid, 1.0, clock)
    assert len(asked) == 1 and view.banner.text() == "PASS"
    feed(controller, shifted(laid, 6, 3), 0.3, clock)  # the bench is knocked: the picture shakes ...
    feed(controller, shifted(laid, 1, 0), 2.0, clock)  # ... and settles a pixel off
    assert len(asked) == 1 and len(stored) == 1  # not checked, nor logged, a second time
    assert view.banner.text() == "PASS" and view.reason.text().startswith(ALREADY_TEXT)
    feed(controller, shifted(laid, 1, 0), 2.0, clock)  # the live view a pixel off the photograph: nothing changed
    assert view.banner.text() == "PASS" and len(asked) == 1
    assert len(database.repository.review_queue(limit=50, margin=1.0)) == 1
