"""A station whose gallery lacks one type of its mint, and two photographs of a tray of that type (each side up).

The shipped embedder, detector and verdict bundle: judging whether a side looks like a gallery design needs an
embedder that tells designs apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.bundle import load_bundle
from models.detector import Detector
from models.embedder import Embedder
from models.enroll import enroll_catalog, save_enrolment
from models.gallery import Gallery
from models.pipeline import Pipeline
from models.synth.mint import Mint, generate_mint
from models.synth.scene import CupScene, SceneAssets, SceneOptions, render_cup
from models.types import CupKind, Frame
from station.demo import enrolment_photos, write_mint_catalog

MINT_TYPES, MINT_SEED, CUP_SEED, PHOTO_SEED = 14, 7, 5, 11
HELD_OUT = "t0012"
"""A type of the mint's one family (its obverse is the family's design), not a near-twin, whose reverse the
embedder tells from the others' (some of the mint's reverses it cannot: t0009's comes out as t0006's)."""
TRAY_INDEX = 744
"""The pure cup of :data:`HELD_OUT` used as its tray: eleven coins, all whole, obverse up (turned over for the
reverse)."""
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


def tray_options(kind: CupKind, reverse_share: float) -> SceneOptions:
    return SceneOptions(image_size=640, kind_weights={kind: 1.0}, max_coins=12, reverse_share=reverse_share)


def make_tray_world(folder: Path) -> TrayWorld:
    mint = generate_mint(MINT_TYPES, MINT_SEED)
    bundle = load_bundle(None)
    embedder = Embedder.load(bundle.path(bundle.embedder_file), threads=2)
    held = [t.id for t in mint.types].index(HELD_OUT)
    photos = enrolment_photos(mint, PHOTO_SEED, per_side=3)  # under the camera's light, as a station enrols
    others = [i for i in range(len(mint.types)) if i != held]
    catalog = write_mint_catalog(mint, folder / "catalog", only=others, photos=photos)
    gallery = Gallery(embedder.embed_dim, embedder.version)
    report, infos = enroll_catalog(catalog, gallery, embedder, progress=False)
    gallery_dir = folder / "home" / "gallery"
    save_enrolment(gallery_dir, gallery, infos, report.enrolled, None)
    pipeline = Pipeline.from_parts(bundle, gallery, embedder=embedder, catalogue=infos, detector=Detector.load())
    assets = SceneAssets(mint)
    opts = tray_options(CupKind.PURE, 0.0)
    tray = render_cup(assets, CUP_SEED, TRAY_INDEX, opts)
    assert tray.expected_type == HELD_OUT
    turned = render_cup(assets, CUP_SEED, TRAY_INDEX, replace(opts, turn=frozenset(i.label for i in tray.instances)))
    stray = render_cup(assets, CUP_SEED, STRAY_INDEX, tray_options(CupKind.CONTAMINATED, 1.0))
    fresh = render_cup(assets, CUP_SEED, FRESH_INDEX, tray_options(CupKind.PURE, 1.0))
    assert fresh.expected_type == HELD_OUT
    return TrayWorld(mint, pipeline, gallery_dir, Frame(tray.image), Frame(turned.image), stray, fresh)


def true_type(scene: CupScene, center: tuple[float, float]) -> str:
    """The type of the scene's coin nearest ``center``."""
    nearest = min(scene.instances, key=lambda g: float(np.hypot(g.center[0] - center[0], g.center[1] - center[1])))
    return nearest.type_id
