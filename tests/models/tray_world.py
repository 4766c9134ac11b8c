"""The tray enrolment's test world: the station of :mod:`station.tray_demo` (a gallery lacking one type of its
mint, and the tray of that type photographed both sides up), with two more cups: one of another type's coins with
a stray, and a fresh cup of the held-out type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.pipeline import Pipeline
from models.synth.mint import Mint
from models.synth.scene import CupScene, render_cup
from models.types import CupKind, Frame
from station.tray_demo import CUP_SEED, HELD_OUT, make_tray_demo, tray_options

__all__ = ["HELD_OUT", "TrayWorld", "make_tray_world", "true_type"]

FRESH_INDEX = 863
"""Another pure cup of :data:`HELD_OUT` (twelve coins), laid reverse up: a cup checked after the enrolment."""
STRAY_INDEX = 10
"""A cup of nine coins reverse up, one of them another type (:data:`STRAY_INDEX` of the contaminated draw)."""


@dataclass(frozen=True)
class TrayWorld:
    mint: Mint
    pipeline: Pipeline
    gallery_dir: Path
    obverse: Frame
    reverse: Frame
    stray: CupScene
    fresh: CupScene


def make_tray_world(folder: Path) -> TrayWorld:
    demo = make_tray_demo(folder)
    stray = render_cup(demo.assets, CUP_SEED, STRAY_INDEX, tray_options(CupKind.CONTAMINATED, 1.0))
    fresh = render_cup(demo.assets, CUP_SEED, FRESH_INDEX, tray_options(CupKind.PURE, 1.0))
    assert fresh.expected_type == HELD_OUT
    return TrayWorld(demo.mint, demo.pipeline, demo.gallery_dir, demo.obverse, demo.reverse, stray, fresh)


def true_type(scene: CupScene, center: tuple[float, float]) -> str:
    """The type of the scene's coin nearest ``center``."""
    nearest = min(scene.instances, key=lambda g: float(np.hypot(g.center[0] - center[0], g.center[1] - center[1])))
    return nearest.type_id
