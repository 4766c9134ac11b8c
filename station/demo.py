"""The one-command demo: a station home whose gallery holds the simulator's coin types, and a demo operator.

``cupcheck station --demo`` calls :func:`prepare_demo_home` and opens the operator window on simulator cups,
signed in as :data:`DEMO_OPERATOR`. The gallery is enrolled from the simulator mint's faces (drawn by
:func:`models.synth.mint.render_face`) with the shipped embedder, exactly as ``cupcheck enroll`` would enrol a
catalogue folder of crops; it is rebuilt only when the mint or the embedder changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from db.repository import VerdictRepository
from db.schema import Role
from models.embedder import Embedder
from models.enroll import CATALOG_FILE, enroll_catalog, save_catalog
from models.gallery import Gallery
from models.synth.mint import Mint, generate_mint, render_face
from models.types import Side
from station.camera import SimulatorSource

DEMO_ORDER = "DEMO"
"""In the demo, this order number asks for the type the simulator's current cup should hold."""
DEMO_OPERATOR = "demo"
DEMO_PIN = "0000"
DEMO_MARKER = "demo.json"
FACE_PX = 160


def write_mint_catalog(mint: Mint, folder: Path, size: int = FACE_PX) -> Path:
    """Write a catalogue folder (``TYPE/coin.toml``, ``TYPE/obverse/face.png``, ``TYPE/reverse/face.png``).

    Each face is a ``(size, size, 3)`` crop on black, the way the detector's crops look. Types of one family share
    their obverse design; each type's picture of it is a different specimen (its own ``seed``), as photos of
    different coins would be, so enrolment keeps it for every type instead of dropping it as a duplicate file.
    """
    for number, coin in enumerate(mint.types):
        base = folder / coin.id
        for side in (Side.OBVERSE, Side.REVERSE):
            out = base / side.value
            out.mkdir(parents=True, exist_ok=True)
            bgra = render_face(coin, side, size, wear=0.1, seed=number + 1).astype(np.float32)
            bgr = (bgra[..., :3] * (bgra[..., 3:4] / 255.0)).astype(np.uint8)
            cv2.imwrite(str(out / "face.png"), bgr)
        (base / "coin.toml").write_text(f"name = {json.dumps(coin.name)}\ndiameter_mm = {coin.diameter_mm:.2f}\n")
    return folder


def prepare_demo_home(
    home: Path,
    *,
    n_types: int,
    seed: int,
    bundle_path: Path | None = None,
    embedder_path: Path | None = None,
    progress: bool = True,
) -> Path:
    """Make ``home`` a demo station home: gallery of the simulator's mint, a database with the demo operator.

    Args:
        home: the demo home (created).
        n_types: the simulator mint's number of types.
        seed: the simulator mint's seed.
        bundle_path: the verdict bundle whose embedder enrols the gallery (default: the shipped bundle).
        embedder_path: an embedder checkpoint to use instead of the bundle's.
        progress: tqdm bar while enrolling.

    Returns:
        ``home``.

    Raises:
        FileNotFoundError, ValueError: the bundle or the embedder weights are missing or unreadable.
    """
    home.mkdir(parents=True, exist_ok=True)
    if embedder_path is None:
        from models.bundle import load_bundle

        bundle = load_bundle(bundle_path)
        embedder_path = bundle.path(bundle.embedder_file)
    embedder = Embedder.load(embedder_path, threads=2)
    marker = home / DEMO_MARKER
    wanted = {"n_types": n_types, "seed": seed, "embedder": embedder.version}
    gallery_dir = home / "gallery"
    current = json.loads(marker.read_text()) if marker.is_file() else None
    if current != wanted or not Gallery.exists(gallery_dir):
        mint = generate_mint(n_types, seed)
        catalog = write_mint_catalog(mint, home / "demo-catalog")
        gallery = Gallery(embedder.embed_dim, embedder.version)
        _report, infos = enroll_catalog(catalog, gallery, embedder, crops=True, progress=progress)
        gallery.save(gallery_dir)
        save_catalog(gallery_dir / CATALOG_FILE, infos.values())
        marker.write_text(json.dumps(wanted))
    repository = VerdictRepository.open(home)
    try:
        if repository.verify_operator(DEMO_OPERATOR, DEMO_PIN) is None:
            repository.add_operator(DEMO_OPERATOR, Role.OPERATOR, DEMO_PIN)
    finally:
        repository.engine.dispose()
    return home


class SimulatorOrders:
    """Demo orders: :data:`DEMO_ORDER` asks for whatever type the cup on show should hold.

    Args:
        source: the simulator camera.
    """

    def __init__(self, source: SimulatorSource) -> None:
        self._source = source

    def lookup(self, order: str) -> str | None:
        """The current cup's expected type for :data:`DEMO_ORDER`, else ``None``."""
        return self._source.expected_type if order.strip().upper() == DEMO_ORDER else None
