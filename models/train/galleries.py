"""Galleries for training the voter: each synthetic data set's mint enrolled from rendered reference faces, or from
the data set's own enrolment photos, as a station would enrol it."""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from models.bundle import ENROL_PER_SIDE
from models.embedder import Embedder
from models.enroll import read_image
from models.files import sha256_file
from models.gallery import Gallery, GalleryEntry
from models.synth.mint import CoinType, Mint, generate_mint, render_face
from models.template import signatures
from models.types import Side, UInt8Array

if TYPE_CHECKING:
    pass


def reference_crops(coin: CoinType, side: Side, n: int, size: int = 128, seed: int = 0) -> list[np.ndarray]:
    """``n`` rendered ``(size, size, 3)`` uint8 BGR faces of one side under varied light, toning and wear."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{coin.id}/{Side(side).value}".encode())])
    out = []
    for k in range(n):
        light = 225.0 if k == 0 else float(rng.uniform(0, 360))
        bgra = render_face(
            coin,
            side,
            size,
            wear=0.0 if k == 0 else float(rng.uniform(0, 0.3)),
            toning=0.0 if k == 0 else float(rng.uniform(0, 0.4)),
            light_deg=light,
            seed=seed * 1000 + k,
        )
        alpha = bgra[:, :, 3:4].astype(np.float32) / 255.0
        out.append((bgra[:, :, :3].astype(np.float32) * alpha).astype(np.uint8))
    return out


def reference_gallery(
    mint: Mint, embedder: Embedder, per_side: int = 5, size: int = 128, seed: int = 0, progress: bool = True
) -> Gallery:
    """A gallery of every mint type from rendered references, with the mint's design ids.

    Args:
        mint: the catalogue.
        embedder: the embedder (its version is recorded).
        per_side: references per side and type.
        size: render side (the crop size).
        seed: render variation seed.
        progress: tqdm bar.
    """
    gallery = Gallery(embedder.embed_dim, embedder.version)
    for coin in tqdm(mint.types, desc="references", unit="type", disable=not progress):
        for side in (Side.OBVERSE, Side.REVERSE):
            crops = reference_crops(coin, side, per_side, size, seed)
            entries = [
                GalleryEntry(coin.id, side, coin.design(side).id, f"render:{coin.id}/{side.value}/{k}")
                for k in range(per_side)
            ]
            gallery.add(embedder.embed(crops), entries, signatures(crops))
    return gallery


def mint_of(data_dir: Path) -> Mint:
    """The mint of a synthetic data set (rebuilt from ``mint.json``'s ``n_types`` and ``seed``)."""
    doc = json.loads((data_dir / "mint.json").read_text())
    return generate_mint(int(doc["n_types"]), int(doc["seed"]))


def mint_lookalikes(mint: Mint) -> dict[str, tuple[str, ...]]:
    """The catalogue's lookalikes of a synthetic mint: each near-twin names its pair (as a station's ``coin.toml``
    would)."""
    return {t.id: (t.twin_of,) for t in mint.types if t.twin_of}


ENROL_DIR = "enrol"
"""A data set's ``enrol/`` subfolder, when present: other cups of the same mint, the station's enrolment photos."""
ENROL_MAX_OCCLUSION = 0.15


def enrolment_gallery(
    enrol_dir: Path, mint: Mint, embedder: Embedder, per_side: int = ENROL_PER_SIDE, progress: bool = True
) -> Gallery:
    """A gallery from the crops of an enrolment data set: ``per_side`` whole, barely covered coins per side.

    This is how a station enrols a type: a few photos taken under its own camera, so references and cups share
    light, blur and noise. A (type, side) without such crops falls back to rendered references.

    Raises:
        ValueError: the enrolment set was drawn from another mint.
    """
    emint = mint_of(enrol_dir)
    if [t.id for t in emint.types] != [t.id for t in mint.types] or emint.types != mint.types:
        raise ValueError(f"{enrol_dir} was drawn from another mint than its data set")
    picked: dict[tuple[str, str], list[dict[str, str]]] = {}
    with (enrol_dir / "crops" / "index.csv").open(newline="") as f:
        for row in sorted(csv.DictReader(f), key=lambda r: r["path"]):
            if row["source"] != "synthetic" or row["partial"] != "0":
                continue
            if float(row["occlusion"]) > ENROL_MAX_OCCLUSION:
                continue
            got = picked.setdefault((row["type_id"], row["side"]), [])
            if len(got) < per_side:
                got.append(row)
    gallery = Gallery(embedder.embed_dim, embedder.version)
    for coin in tqdm(mint.types, desc="enrol", unit="type", disable=not progress):
        for side in (Side.OBVERSE, Side.REVERSE):
            crops: list[UInt8Array] = []
            sources: list[str] = []
            for r in picked.get((coin.id, side.value), []):
                img = read_image(enrol_dir / r["path"])
                if img is not None:
                    crops.append(img)
                    sources.append(f"photo:{r['path']}")
            if not crops:
                crops = reference_crops(coin, side, per_side)
                sources = [f"render:{coin.id}/{side.value}/{k}" for k in range(per_side)]
            entries = [GalleryEntry(coin.id, side, coin.design(side).id, src) for src in sources]
            gallery.add(embedder.embed(crops), entries, signatures(crops))
    return gallery


def dataset_gallery(
    data_dir: Path, embedder: Embedder, cache_root: Path, per_side: int = ENROL_PER_SIDE, progress: bool = True
) -> tuple[Gallery, dict[str, float | None]]:
    """Load or build (and save) the reference gallery of a data set's mint, plus the catalogue diameters.

    The references are the data set's enrolment photos (:data:`ENROL_DIR`, see :func:`enrolment_gallery`) when
    it has them, else rendered faces (:func:`reference_gallery`). The cached gallery is keyed by the mint
    (``mint.json``'s hash, checked again on load: two data sets' folders often share a name), the embedder,
    ``per_side`` and the enrolment set's crop index, so another mint or a re-drawn enrolment set is never served a
    stale gallery.
    """
    if per_side < 1:
        raise ValueError(f"per_side must be >= 1, got {per_side}")
    mint = mint_of(data_dir)
    enrol = data_dir / ENROL_DIR
    index = enrol / "crops" / "index.csv"
    has_enrol = index.is_file()
    source = f"enrol{per_side}-{sha256_file(index)[:8]}" if has_enrol else f"render{per_side}"
    mint_sha = sha256_file(data_dir / "mint.json")
    folder = cache_root / f"gallery-{data_dir.name}-{source}-{mint_sha[:12]}-{embedder.version}"
    diameters: dict[str, float | None] = {t.id: float(t.diameter_mm) for t in mint.types}
    if Gallery.exists(folder) and _cached_mint(folder) == mint_sha:
        cached = Gallery.load(folder, embedder_version=embedder.version)
        if cached.has_signatures:
            return cached, diameters
    if has_enrol:
        gallery = enrolment_gallery(enrol, mint, embedder, per_side, progress=progress)
    else:
        gallery = reference_gallery(mint, embedder, per_side, progress=progress)
    gallery.save(folder)
    catalog = {
        "mint_sha256": mint_sha,
        "types": {t.id: {"name": t.name, "diameter_mm": t.diameter_mm} for t in mint.types},
    }
    (folder / "catalog.json").write_text(json.dumps(catalog, indent=1))
    return gallery, diameters


def _cached_mint(folder: Path) -> str:
    """The ``mint.json`` hash a cached gallery was enrolled from (``""`` when its catalogue does not say)."""
    try:
        doc = json.loads((folder / "catalog.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(doc.get("mint_sha256", "")) if isinstance(doc, dict) else ""
