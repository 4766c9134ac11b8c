"""The one-command demo: a station home whose gallery holds the simulator's coin types, and a demo operator.

``cupcheck demo`` (and ``cupcheck station --demo``) calls :func:`prepare_demo_home` and opens the operator window
on simulator cups, signed in as :data:`DEMO_OPERATOR`. The gallery is enrolled from a few coin photos per side cut
from simulator cups the demo never shows (:func:`enrolment_photos`), with the shipped embedder, exactly as
``cupcheck enroll`` would enrol a catalogue folder of crops, a few types at a time behind a progress bar; it is
rebuilt only when the mint or the embedder changes, so later starts skip it. In the window a :class:`DemoDriver`
orders each new simulator cup's type as it comes into view and the stillness gate checks it by itself;
:class:`StartupTimer` says on stderr how long the first frame and the first verdict took.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
from PySide6.QtCore import QObject, Slot
from tqdm import tqdm

from db.operators import OperatorExistsError
from db.repository import VerdictRepository
from db.schema import Role
from models.embedder import Embedder
from models.enroll import CATALOG_FILE, TypeInfo, enroll_catalog, save_catalog
from models.gallery import Gallery
from models.synth.mint import Mint, generate_mint, render_face
from models.types import Frame, Side
from station.camera import Clock, SimulatorSource

DEMO_OPERATOR = "demo"
DEMO_PIN = "0000"
DEMO_MARKER = "demo.json"
FACE_PX = 160
ENROL_CHUNK = 8
"""Types enrolled per embedder call (one progress-bar step each): batches of 16 faces run about twice as fast as
one type's two faces at a time."""


CATALOGUE_FORMAT = 2
"""Version of what :func:`write_mint_catalog` writes (2: shared designs declared); a demo home enrolled from an
older catalogue is enrolled again."""
PHOTO_FIRST_INDEX = 900_000
"""The demo's enrolment photos are simulator cups from this index on: other cups than the ones it shows."""
WHOLE_OCCLUSION = 0.02
"""An enrolment photo shows a coin with at most this share hidden (its picture is also the one the window shows)."""


def enrolment_photos(
    mint: Mint, seed: int, *, per_side: int, size: int = FACE_PX
) -> dict[tuple[str, Side], list[np.ndarray]]:
    """Coin photos for enrolment, cut from pure simulator cups the demo never shows (the station's own camera).

    References taken under the camera that checks the cups share its light, blur and noise; clean renders do not
    (on the calibration mint, reverse Recall@1 of cup crops was 0.75 against photo references and 0.54 against
    renders). Cups are drawn until every (type, side) has ``per_side`` whole, uncovered coins or
    ``20 × types`` cups were drawn; a (type, side) still missing is left out (the caller falls back to a render).

    Returns:
        ``(type_id, side)`` → ``(size, size, 3)`` uint8 BGR crops.
    """
    from models.synth.dataset import cup_crop
    from models.synth.scene import SceneAssets, SceneOptions, render_cup
    from models.types import CupKind

    assets = SceneAssets(mint)
    opts = SceneOptions(image_size=640, kind_weights={CupKind.PURE: 1.0}, max_coins=10)
    photos: dict[tuple[str, Side], list[np.ndarray]] = {}
    need = {(t.id, side) for t in mint.types for side in (Side.OBVERSE, Side.REVERSE)}
    for index in range(PHOTO_FIRST_INDEX, PHOTO_FIRST_INDEX + 20 * len(mint.types)):
        if not need:
            break
        scene = render_cup(assets, seed, index, opts)
        for inst in scene.instances:
            key = (inst.type_id, Side(inst.side)) if inst.side in ("obverse", "reverse") else None
            if key not in need or not inst.is_coin or inst.partial or inst.occlusion > WHOLE_OCCLUSION:
                continue
            got = photos.setdefault(key, [])
            got.append(cup_crop(scene, inst, size))
            if len(got) >= per_side:
                need.discard(key)
    return photos


def write_mint_catalog(
    mint: Mint,
    folder: Path,
    size: int = FACE_PX,
    only: Iterable[int] | None = None,
    photos: dict[tuple[str, Side], list[np.ndarray]] | None = None,
) -> Path:
    """Write a catalogue folder (``TYPE/coin.toml``, ``TYPE/obverse/face.png``, ``TYPE/reverse/face.png``).

    Each face is a ``(size, size, 3)`` crop on black, the way the detector's crops look. Types of one family share
    their obverse design; each type's picture of it is a different specimen (its own ``seed``), as photos of
    different coins would be, so enrolment keeps it for every type instead of dropping it as a duplicate file.
    ``coin.toml`` names each shared design (``obverse_design``), as a catalogue of such coins would.

    Args:
        mint: the mint.
        folder: the catalogue folder (created).
        size: face side in pixels.
        only: the indices (into ``mint.types``) of the types to write; all by default.
        photos: enrolment photos (:func:`enrolment_photos`) to write instead of the rendered face, where given.
    """
    numbers = range(len(mint.types)) if only is None else only
    shared = mint.shared_designs()  # a family's obverse, declared as the catalogue would
    for number in numbers:
        coin = mint.types[number]
        base = folder / coin.id
        for side in (Side.OBVERSE, Side.REVERSE):
            out = base / side.value
            out.mkdir(parents=True, exist_ok=True)
            shots = (photos or {}).get((coin.id, side), [])
            for k, shot in enumerate(shots):
                cv2.imwrite(str(out / f"photo{k}.png"), shot)
            if shots:
                continue
            bgra = render_face(coin, side, size, wear=0.1, seed=number + 1).astype(np.float32)
            bgr = (bgra[..., :3] * (bgra[..., 3:4] / 255.0)).astype(np.uint8)
            cv2.imwrite(str(out / "face.png"), bgr)
        toml = f"name = {json.dumps(coin.name)}\ndiameter_mm = {coin.diameter_mm:.2f}\n"
        for side, key in ((Side.OBVERSE, "obverse_design"), (Side.REVERSE, "reverse_design")):
            if coin.design(side).id in shared:
                toml += f"{key} = {json.dumps(coin.design(side).id)}\n"
        if coin.twin_of:
            toml += f"lookalikes = [{json.dumps(coin.twin_of)}]\n"
        (base / "coin.toml").write_text(toml)
    return folder


def prepare_demo_home(
    home: Path,
    *,
    n_types: int,
    seed: int,
    bundle_path: Path | None = None,
    embedder_path: Path | None = None,
    progress: bool = True,
    photos_per_side: int | None = None,
) -> Path:
    """Make ``home`` a demo station home: gallery of the simulator's mint, a database with the demo operator.

    Args:
        home: the demo home (created).
        n_types: the simulator mint's number of types.
        seed: the simulator mint's seed.
        bundle_path: the verdict bundle whose embedder enrols the gallery, with as many photos a side as its
            calibration galleries held (default: the shipped bundle).
        embedder_path: an embedder checkpoint to use instead of the bundle's.
        progress: a tqdm bar on stderr while enrolling (one step per type).
        photos_per_side: enrol each side from this many photos instead of as many as the bundle's calibration
            galleries held (fewer: a type enrolled from a few photos, outside what the bundle was certified on).

    Returns:
        ``home``.

    Raises:
        FileNotFoundError, ValueError: the bundle or the embedder weights are missing or unreadable.
    """
    from models.bundle import load_bundle

    home.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(bundle_path)
    if embedder_path is None:
        embedder_path = bundle.path(bundle.embedder_file)
    embedder = Embedder.load(embedder_path, threads=2)
    marker = home / DEMO_MARKER
    # as many photos a side as the verdict model's calibration galleries held, so its guarantee holds here
    per_side = bundle.enrol_per_side if photos_per_side is None else photos_per_side
    if per_side < 1:
        raise ValueError(f"photos_per_side must be at least 1, got {per_side}")
    wanted = {
        "n_types": n_types,
        "seed": seed,
        "embedder": embedder.version,
        "photos_per_side": per_side,
        "catalogue": CATALOGUE_FORMAT,
    }
    gallery_dir = home / "gallery"
    current = json.loads(marker.read_text()) if marker.is_file() else None
    if current != wanted or not Gallery.exists(gallery_dir):
        mint = generate_mint(n_types, seed)
        catalog = home / "demo-catalog"
        shutil.rmtree(catalog, ignore_errors=True)
        gallery = Gallery(embedder.embed_dim, embedder.version)
        infos: dict[str, TypeInfo] = {}
        photos = enrolment_photos(mint, seed, per_side=per_side)
        bar = tqdm(total=n_types, desc="enrolling the demo's coin types", unit="type", disable=not progress)
        with bar:
            for start in range(0, n_types, ENROL_CHUNK):
                part = catalog / f"part-{start // ENROL_CHUNK:03d}"
                write_mint_catalog(mint, part, only=range(start, min(start + ENROL_CHUNK, n_types)), photos=photos)
                _report, got = enroll_catalog(part, gallery, embedder, crops=True, progress=False)
                infos.update(got)
                bar.update(len(got))
        gallery.save(gallery_dir)
        save_catalog(gallery_dir / CATALOG_FILE, infos.values())
        marker.write_text(json.dumps(wanted))
    repository = VerdictRepository.open(home)
    try:
        if repository.verify_operator(DEMO_OPERATOR, DEMO_PIN) is None:
            try:
                repository.add_operator(DEMO_OPERATOR, Role.OPERATOR, DEMO_PIN)
            except OperatorExistsError:  # deactivated, or given another PIN, in the demo's People dialog
                repository.operators.set_active(DEMO_OPERATOR, True)
                repository.operators.set_pin(DEMO_OPERATOR, DEMO_PIN)
    finally:
        repository.engine.dispose()
    return home


class DemoDriver(QObject):
    """Orders each new simulator cup's type as the cup comes into view, so the stillness gate checks it by itself.

    Connect :meth:`frame_shown` to the camera pump's ``frame_ready`` after the operator controller's own slot.
    There is no order number: the simulator's cup numbers repeat from one start to the next.

    Args:
        source: the simulator camera.
        choose: called with ``(type_id, cup)`` (the frame's ``source``, e.g. ``simulator cup 3``) for each new cup.
    """

    def __init__(self, source: SimulatorSource, choose: Callable[[str, str], None]) -> None:
        super().__init__()
        self._source = source
        self._choose = choose
        self._cup: str | None = None

    @Slot(object)
    def frame_shown(self, frame: Frame) -> None:
        """A new cup (a new ``frame.source``) in view: order its type."""
        if frame.source == self._cup:
            return
        expected = self._source.expected_for(frame)
        if expected is None:
            return
        self._cup = frame.source
        self._choose(expected, frame.source)


class StartupTimer(QObject):
    """Says once, on ``out``, how many seconds after ``started`` the first frame and the first verdict were shown.

    Args:
        started: the command's start on ``clock``.
        clock: seconds (``time.perf_counter`` by default).
        out: where the two lines go.
    """

    def __init__(self, started: float, *, clock: Clock = time.perf_counter, out: TextIO | None = None) -> None:
        super().__init__()
        self._started = started
        self._clock = clock
        self._out = out
        self.first_frame_s: float | None = None
        self.first_verdict_s: float | None = None

    def _say(self, what: str, seconds: float) -> None:
        print(f"{what} after {seconds:.1f} s", file=self._out or sys.stderr, flush=True)

    @Slot(object)
    def frame_shown(self, _frame: object) -> None:
        """The window showed a frame."""
        if self.first_frame_s is None:
            self.first_frame_s = self._clock() - self._started
            self._say("first frame shown", self.first_frame_s)

    @Slot(object)
    def verdict_shown(self, _result: object) -> None:
        """The window showed a verdict."""
        if self.first_verdict_s is None:
            self.first_verdict_s = self._clock() - self._started
            self._say("first verdict shown", self.first_verdict_s)
