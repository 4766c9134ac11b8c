"""A station whose gallery lacks one type of its mint, and two photographs of a tray of that type (each side up).

What "Enrol a coin type from the tray…" is shown and tested with: the screenshots (:mod:`station.screenshots`) and
the tests of the tray enrolment. The gallery is enrolled from photographs under the camera's light
(:func:`station.demo.enrolment_photos`), as a station enrols, with the shipped embedder, detector and verdict
bundle: judging whether a side looks like a gallery design needs an embedder that tells designs apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from models.bundle import load_bundle
from models.detector import Detector
from models.embedder import Embedder
from models.enroll import enroll_catalog, save_enrolment
from models.gallery import Gallery
from models.pipeline import Pipeline
from models.synth.mint import Mint, generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from models.types import CupKind, Frame
from station.demo import enrolment_photos, write_mint_catalog

MINT_TYPES, MINT_SEED, CUP_SEED, PHOTO_SEED = 14, 7, 5, 11
HELD_OUT = "t0012"
"""A type of the mint's one family (its obverse is the family's design), not a near-twin, whose reverse the
embedder tells from the others' (some of the mint's reverses it cannot: t0009's comes out as t0006's)."""
TRAY_INDEX = 744
"""The pure cup of :data:`HELD_OUT` used as its tray: eleven coins, all whole, obverse up (turned over for the
reverse)."""


@dataclass(frozen=True)
class TrayDemo:
    """The station and its tray.

    Attributes:
        mint: the synthetic mint.
        assets: the mint's scene assets (for more cups of it).
        pipeline: the station's pipeline, its gallery lacking :data:`HELD_OUT`.
        gallery_dir: where that gallery is saved.
        obverse: the tray of :data:`HELD_OUT`, every coin obverse up.
        reverse: the same coins turned over.
    """

    mint: Mint
    assets: SceneAssets
    pipeline: Pipeline
    gallery_dir: Path
    obverse: Frame
    reverse: Frame


def tray_options(kind: CupKind, reverse_share: float) -> SceneOptions:
    """Cups of one kind at the station's 640 px, at most 12 coins, this share of them reverse up."""
    return SceneOptions(image_size=640, kind_weights={kind: 1.0}, max_coins=12, reverse_share=reverse_share)


def make_tray_demo(folder: Path) -> TrayDemo:
    """Enrol every type of the mint but :data:`HELD_OUT` into ``folder/home/gallery`` (its catalogue under
    ``folder/catalog``) and photograph the tray of :data:`HELD_OUT` both sides up (about 10 s on 2 CPU cores)."""
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
    if tray.expected_type != HELD_OUT:
        raise RuntimeError(f"the synthetic world changed: cup {TRAY_INDEX} is no longer a tray of {HELD_OUT}")
    turned = render_cup(assets, CUP_SEED, TRAY_INDEX, replace(opts, turn=frozenset(i.label for i in tray.instances)))
    return TrayDemo(mint, assets, pipeline, gallery_dir, Frame(tray.image), Frame(turned.image))
