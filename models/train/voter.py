"""Train the set pooler and the voter on synthetic cups, then choose the threshold on separate calibration cups.

Steps (``cupcheck train voter --data SYNTH --data-cal SYNTH2 --out DIR``):

1. For each synthetic data set, enrol its mint into a gallery from rendered reference faces
   (:func:`reference_gallery`: a few renders per side and type under varied light, toning and wear) and record
   each type's diameter. Types sharing an obverse share its design id, as in the mint.
2. Embed every cup's coins once and cache them (:func:`cache_cups`, an ``.npz`` per data set and embedder
   version). Coins come either from the data set's ground-truth crops (``instances="gt"``) or from the real
   detector run on the cup image (``instances="detector"``).
3. Build (cup, candidate) pairs (:func:`make_pairs`): a pure cup with its own type is correct; the same cup with
   its near-twin, a family member sharing its obverse, or a random type is wrong; contaminated, obverse-only,
   foreign-object and empty cups are wrong for their expected type.
4. Train the gated-attention MIL pooler and then LightGBM on the training pairs (the data set's ``val`` split
   for early stopping); score the calibration pairs and choose the threshold with :mod:`calibration.risk`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from calibration.camera import CupRoi
from calibration.risk import DEFAULT_DELTA, DEFAULT_TARGET, ThresholdChoice, choose_threshold
from models.bundle import ENROL_PER_SIDE, MIN_COINS, REAL_CUPS, REAL_WEIGHT, Bundle, Preprocess
from models.embedder import DEFAULT_WEIGHTS as EMBEDDER_DEFAULT
from models.embedder import Embedder
from models.enroll import read_image
from models.features import (
    BASE_FEATURES,
    COIN_FEATURES,
    EMBEDDING_FEATURES,
    FEATURES,
    TEMPLATE_FEATURES,
    CupCoins,
    GalleryView,
    TemplateScorer,
    feature_vector,
    focus_measure,
    pair_evidence,
    visible_share,
)
from models.files import sha256_file, write_bytes_atomic
from models.foreground import unexplained_regions
from models.gallery import Gallery, GalleryEntry
from models.pooling import SetPooler, train_pooler
from models.synth.mint import CoinType, Mint, generate_mint, render_face
from models.template import SIG_SHAPE, signatures
from models.types import BoolArray, CoinCrop, Frame, Side, UInt8Array
from models.voter import train_voter

if TYPE_CHECKING:
    from models.detector import Detector

CACHE_FORMAT = "cupcheck-voter-cache/1"
DETECTOR_DEFAULT = Path(__file__).resolve().parents[1] / "weights" / "detector"
"""The shipped detector folder (``models.detector.DEFAULT_DIR``; not imported here to keep ultralytics out)."""
DIAMETER_BLANK_SHARE = 0.3
"""Share of cups whose diameters are hidden, so the voter also works for a camera without scale calibration."""
DIAMETER_NOISE = 0.02
"""Relative noise added to the true diameters (a calibrated camera's measurement error)."""


# ----------------------------------------------------------------------------------------------- references


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
    it has them, else rendered faces (:func:`reference_gallery`). The cached gallery is keyed by the embedder,
    ``per_side`` and the enrolment set's crop index, so a re-drawn enrolment set is never served a stale gallery.
    """
    if per_side < 1:
        raise ValueError(f"per_side must be >= 1, got {per_side}")
    mint = mint_of(data_dir)
    enrol = data_dir / ENROL_DIR
    index = enrol / "crops" / "index.csv"
    has_enrol = index.is_file()
    source = f"enrol{per_side}-{sha256_file(index)[:8]}" if has_enrol else f"render{per_side}"
    folder = cache_root / f"gallery-{data_dir.name}-{source}-{embedder.version}"
    diameters: dict[str, float | None] = {t.id: float(t.diameter_mm) for t in mint.types}
    if Gallery.exists(folder):
        cached = Gallery.load(folder, embedder_version=embedder.version)
        if cached.has_signatures:
            return cached, diameters
    if has_enrol:
        gallery = enrolment_gallery(enrol, mint, embedder, per_side, progress=progress)
    else:
        gallery = reference_gallery(mint, embedder, per_side, progress=progress)
    gallery.save(folder)
    (folder / "catalog.json").write_text(
        json.dumps({"types": {t.id: {"name": t.name, "diameter_mm": t.diameter_mm} for t in mint.types}}, indent=1)
    )
    return gallery, diameters


# ----------------------------------------------------------------------------------------------- cups cache


@dataclass
class CupCache:
    """Per-coin observations of many cups, concatenated (``N`` coins over ``C`` cups).

    Attributes:
        offsets: ``(C + 1,)`` coin ranges per cup.
        embeddings: ``(N, d)`` float32.
        confidence, partial, visible, diameter_mm, focus: ``(N,)`` per-coin observations.
        true_type: ``(N,)`` str, each coin's true type ("" when unknown).
        cup_id, kind, expected, contaminant, split: ``(C,)`` str per cup.
        n_objects: ``(C,)`` int foreign objects per cup.
        embedder_version: the embedder used.
        n_unexplained: ``(C,)`` int parts of each cup that differ from its empty-tray photo where the detector
            found nothing (:mod:`models.foreground`; counted as foreign objects), or ``None`` (no such photos).
        signatures: ``(N, *models.template.SIG_SHAPE)`` float16 template signatures, or ``None`` (a cache
            written before they were kept; :func:`cache_cups` adds them).
    """

    offsets: np.ndarray
    embeddings: np.ndarray
    confidence: np.ndarray
    partial: np.ndarray
    visible: np.ndarray
    diameter_mm: np.ndarray
    focus: np.ndarray
    true_type: np.ndarray
    cup_id: np.ndarray
    kind: np.ndarray
    expected: np.ndarray
    contaminant: np.ndarray
    split: np.ndarray
    n_objects: np.ndarray
    embedder_version: str = ""
    source: str = "gt"
    signatures: np.ndarray | None = None
    n_unexplained: np.ndarray | None = None

    @property
    def n_cups(self) -> int:
        """Number of cups."""
        return int(self.offsets.size - 1)

    def coins(self, i: int, *, hide_diameter: bool = False) -> CupCoins:
        """The coins of cup ``i``."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        d = self.diameter_mm[a:b].astype(np.float32)
        return CupCoins(
            embeddings=self.embeddings[a:b].astype(np.float32),
            confidence=self.confidence[a:b].astype(np.float32),
            partial=self.partial[a:b].astype(bool),
            visible=self.visible[a:b].astype(np.float32),
            diameter_mm=np.full_like(d, np.nan) if hide_diameter else d,
            focus=self.focus[a:b].astype(np.float32),
            n_objects=int(self.n_objects[i]) + (0 if self.n_unexplained is None else int(self.n_unexplained[i])),
            signatures=None if self.signatures is None else self.signatures[a:b].astype(np.float32),
        )

    def save(self, path: Path) -> None:
        """Write as ``.npz``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        arrays["embeddings"] = self.embeddings.astype(np.float16)
        if self.signatures is not None:
            arrays["signatures"] = self.signatures.astype(np.float16)
        meta = np.array(json.dumps({"format": CACHE_FORMAT, "embedder": self.embedder_version, "source": self.source}))
        buf = io.BytesIO()
        np.savez_compressed(buf, meta=meta, **arrays)  # type: ignore[arg-type]
        write_bytes_atomic(path, buf.getvalue())

    @classmethod
    def concat(cls, parts: Sequence[CupCache]) -> CupCache:
        """Join caches of consecutive parts of one data set (same embedder and source)."""
        if not parts:
            raise ValueError("nothing to join")
        offsets = [np.zeros(1, np.int64)]
        base = 0
        for p in parts:
            offsets.append(p.offsets[1:] + base)
            base += int(p.offsets[-1])
        arrays = {
            k: np.concatenate([getattr(p, k) for p in parts])
            for k, v in parts[0].__dict__.items()
            if isinstance(v, np.ndarray) and k not in ("offsets", "signatures", "n_unexplained")
        }
        if all(p.signatures is not None for p in parts):
            arrays["signatures"] = np.concatenate([p.signatures for p in parts])
        if all(p.n_unexplained is not None for p in parts):
            arrays["n_unexplained"] = np.concatenate([p.n_unexplained for p in parts])
        return cls(
            offsets=np.concatenate(offsets),
            **arrays,
            embedder_version=parts[0].embedder_version,
            source=parts[0].source,
        )

    @classmethod
    def load(cls, path: Path) -> CupCache:
        """Read a cache written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != CACHE_FORMAT:
                raise ValueError(f"{path} is not a voter cache")
            data = {k: z[k] for k in z.files if k != "meta"}
        data["embeddings"] = data["embeddings"].astype(np.float32)
        return cls(**data, embedder_version=meta["embedder"], source=meta.get("source", "gt"))


def _crop_rows(data_dir: Path) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {}
    with (data_dir / "crops" / "index.csv").open() as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["cup_id"], []).append(row)
    return rows


def _measured_diameters(true_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < DIAMETER_BLANK_SHARE:
        return np.full(true_mm.shape, np.nan, np.float32)
    return (true_mm * (1.0 + DIAMETER_NOISE * rng.standard_normal(true_mm.shape))).astype(np.float32)


@dataclass(frozen=True)
class _CupCut:
    """The coins cut from one cup, before embedding."""

    images: list[UInt8Array]
    masks: list[BoolArray]
    confidence: list[float]
    partial: list[bool]
    true_mm: list[float]
    true_type: list[str]
    n_objects: int
    n_unexplained: int = 0


def _cut_cup(
    data_dir: Path,
    cup: dict[str, Any],
    instances: str,
    crop_rows: dict[str, list[dict[str, str]]],
    detector: Detector | None,
    size: int,
) -> _CupCut:
    """Cut one cup's coins: its ground-truth crops (``instances="gt"``) or the detector's."""
    ppm = float(cup.get("px_per_mm") or 0.0)
    if instances == "gt":
        images: list[UInt8Array] = []
        conf: list[float] = []
        partial: list[bool] = []
        true_mm: list[float] = []
        true_type: list[str] = []
        for row in crop_rows.get(cup["id"], []):
            img = cv2.imread(str(data_dir / row["path"]), cv2.IMREAD_COLOR)
            if img is None:
                continue
            k = int(Path(row["path"]).stem.rsplit("_", 1)[1])
            inst = cup["instances"][k]
            images.append(np.asarray(img, np.uint8))
            conf.append(1.0)
            partial.append(bool(inst.get("partial", False)))
            true_mm.append(float(inst["diameter_px"]) / ppm if ppm > 0 else math.nan)
            true_type.append(inst["type_id"])
        masks = [im.max(axis=2) > 0 for im in images]
        n_obj = sum(1 for inst in cup["instances"] if not inst.get("is_coin", True))
        return _CupCut(images, masks, conf, partial, true_mm, true_type, n_obj)
    assert detector is not None
    from models.crops import cut_crops

    frame_img = read_image(data_dir / cup["image"])
    if frame_img is None:
        raise FileNotFoundError(f"cannot read {data_dir / cup['image']}")
    frame = Frame(image=frame_img, source=cup["image"])
    found = detector.detect(frame)
    coins_i = [x for x in found if x.is_coin]
    crops: list[CoinCrop] = cut_crops(frame, coins_i, size=size)
    n_unexplained = 0
    if cup.get("empty"):
        tray = cup.get("tray")
        empty = read_image(data_dir / cup["empty"])
        if empty is None:
            raise FileNotFoundError(f"cannot read {data_dir / cup['empty']}")
        roi = None if tray is None else CupRoi.from_dict(tray)
        n_unexplained = len(unexplained_regions(frame_img, empty, found, roi))
    return _CupCut(
        images=[c.image for c in crops],
        masks=[c.mask for c in crops],
        confidence=[float(x.confidence) for x in coins_i],
        partial=[bool(x.partial) for x in coins_i],
        true_mm=[x.diameter_px / ppm if ppm > 0 else math.nan for x in coins_i],
        true_type=[""] * len(coins_i),
        n_objects=len(found) - len(coins_i),
        n_unexplained=n_unexplained,
    )


def cache_cups(
    data_dir: Path,
    embedder: Embedder,
    out: Path,
    *,
    instances: str = "gt",
    detector: Detector | None = None,
    max_cups: int | None = None,
    seed: int = 0,
    progress: bool = True,
    part: tuple[int, int] | None = None,
) -> CupCache:
    """Embed every cup of a synthetic data set once and cache the per-coin observations.

    A cache written before template signatures were kept is completed in place: the cups are cut again (the
    detector is deterministic) and only the signatures are computed.

    Args:
        data_dir: the data set (``manifest.json``, ``crops/``, ``yolo/images``).
        embedder: the embedder.
        out: the ``.npz`` to write (reused when it exists and matches the embedder).
        instances: ``"gt"`` (the data set's crops, cut from the true masks) or ``"detector"``.
        detector: the detector for ``instances="detector"``.
        max_cups: only the first cups (for quick runs).
        seed: seed of the diameter measurement noise.
        progress: tqdm bar.
        part: only cups ``[start, stop)`` (to embed a data set in parallel parts; see :meth:`CupCache.concat`).

    Raises:
        ValueError: no detector for ``instances="detector"``, or a completed cache's coins do not match.
    """
    manifest = json.loads((data_dir / "manifest.json").read_text())
    cups = manifest["cups"][:max_cups] if max_cups else manifest["cups"]
    first = 0
    if part is not None:
        first, stop = part
        cups = cups[first:stop]
    if instances == "detector" and detector is None:
        raise ValueError("instances='detector' needs a detector")
    crop_rows = _crop_rows(data_dir) if instances == "gt" else {}
    size = embedder.prep.input_size
    any_empty = instances == "detector" and any(c.get("empty") for c in cups)
    if out.is_file():
        cached = CupCache.load(out)
        same_cups = cached.cup_id.tolist() == [c["id"] for c in cups]
        if cached.embedder_version == embedder.version and cached.source == instances and same_cups:
            if cached.signatures is None:
                sigs: list[np.ndarray] = []
                for i, cup in enumerate(tqdm(cups, desc=f"templates {data_dir.name}", disable=not progress)):
                    cut = _cut_cup(data_dir, cup, instances, crop_rows, detector, size)
                    if len(cut.images) != int(cached.offsets[i + 1] - cached.offsets[i]):
                        raise ValueError(f"{out}: cup {cup['id']} now cuts {len(cut.images)} coins; re-cache it")
                    sigs.append(signatures(cut.images).astype(np.float16))
                cached.signatures = np.concatenate(sigs) if sigs else np.zeros((0, *SIG_SHAPE), np.float16)
                cached.save(out)
            return cached
    offsets = [0]
    embs: list[np.ndarray] = []
    sig_parts: list[np.ndarray] = []
    per: dict[str, list[Any]] = {k: [] for k in ("confidence", "partial", "visible", "diameter_mm", "focus", "true")}
    cup_meta: dict[str, list[Any]] = {
        k: [] for k in ("cup_id", "kind", "expected", "contaminant", "split", "n_obj", "n_unexplained")
    }
    for ci, cup in enumerate(tqdm(cups, desc=f"embed {data_dir.name}", unit="cup", disable=not progress), start=first):
        rng = np.random.default_rng([seed, ci])
        cut = _cut_cup(data_dir, cup, instances, crop_rows, detector, size)
        images, masks = cut.images, cut.masks
        emb = embedder.embed(images) if images else np.zeros((0, embedder.embed_dim), np.float32)
        embs.append(emb)
        sig_parts.append(signatures(images).astype(np.float16))
        offsets.append(offsets[-1] + len(images))
        per["confidence"].extend(cut.confidence)
        per["partial"].extend(cut.partial)
        per["visible"].extend(visible_share(m) for m in masks)
        per["diameter_mm"].extend(_measured_diameters(np.asarray(cut.true_mm, np.float64), rng).tolist())
        per["focus"].extend(focus_measure(im, m) for im, m in zip(images, masks, strict=True))
        per["true"].extend(cut.true_type)
        cup_meta["cup_id"].append(cup["id"])
        cup_meta["kind"].append(cup["kind"])
        cup_meta["expected"].append(cup.get("expected_type") or "")
        cup_meta["contaminant"].append(cup.get("contaminant") or "")
        cup_meta["split"].append(cup.get("split", "train"))
        cup_meta["n_obj"].append(cut.n_objects)
        cup_meta["n_unexplained"].append(cut.n_unexplained)
    cache = CupCache(
        offsets=np.asarray(offsets, np.int64),
        embeddings=np.concatenate(embs) if embs else np.zeros((0, embedder.embed_dim), np.float32),
        confidence=np.asarray(per["confidence"], np.float32),
        partial=np.asarray(per["partial"], bool),
        visible=np.asarray(per["visible"], np.float32),
        diameter_mm=np.asarray(per["diameter_mm"], np.float32),
        focus=np.asarray(per["focus"], np.float32),
        true_type=np.asarray(per["true"], dtype=str),
        cup_id=np.asarray(cup_meta["cup_id"], dtype=str),
        kind=np.asarray(cup_meta["kind"], dtype=str),
        expected=np.asarray(cup_meta["expected"], dtype=str),
        contaminant=np.asarray(cup_meta["contaminant"], dtype=str),
        split=np.asarray(cup_meta["split"], dtype=str),
        n_objects=np.asarray(cup_meta["n_obj"], np.int64),
        embedder_version=embedder.version,
        source=instances,
        signatures=np.concatenate(sig_parts) if sig_parts else np.zeros((0, *SIG_SHAPE), np.float16),
        n_unexplained=np.asarray(cup_meta["n_unexplained"], np.int64) if any_empty else None,
    )
    cache.save(out)
    return cache


CUT_PART_CUPS = 250
"""Cups per part file when :func:`cache_cups_parallel` cuts a data set."""

_cut_models: tuple[Embedder, Detector | None] | None = None


def _cut_worker_init(embedder_file: Path | None, detector_dir: Path | None, instances: str) -> None:
    global _cut_models
    cv2.setNumThreads(1)  # the processes share the cores
    embedder = Embedder.load(embedder_file, threads=1)
    detector = None
    if instances == "detector":
        from models.detector import Detector

        detector = Detector.load(detector_dir)
    _cut_models = (embedder, detector)


def _cut_part(data_dir: Path, out: Path, instances: str, seed: int, part: tuple[int, int]) -> int:
    assert _cut_models is not None, "the worker was not initialised"
    embedder, detector = _cut_models
    cache_cups(data_dir, embedder, out, instances=instances, detector=detector, seed=seed, progress=False, part=part)
    return part[1] - part[0]


def cache_cups_parallel(
    data_dir: Path,
    out: Path,
    *,
    workers: int,
    embedder_file: Path | None = None,
    detector_dir: Path | None = None,
    instances: str = "gt",
    max_cups: int | None = None,
    seed: int = 0,
    progress: bool = True,
    part_cups: int = CUT_PART_CUPS,
) -> None:
    """Cut and embed a data set in ``workers`` processes, into the same cache :func:`cache_cups` writes.

    The cups are cut in parts of ``part_cups`` consecutive cups, each written to ``<out stem>.parts/`` as it is
    done, so an interrupted run resumes at the first missing part; the parts are joined into ``out`` and removed.
    Every observation is the one a single process makes (the diameter noise is seeded by the cup's index).
    Nothing is done when ``out`` exists: :func:`cache_cups` then checks and reuses it.

    Args:
        data_dir: the data set.
        out: the joined ``.npz``.
        workers: processes (each runs one torch thread).
        embedder_file: embedder checkpoint (``None``: the shipped one).
        detector_dir: detector folder for ``instances="detector"`` (``None``: the shipped one).
        instances: ``"gt"`` or ``"detector"``.
        max_cups: only the first cups.
        seed: seed of the diameter measurement noise.
        progress: tqdm bar over cups.
        part_cups: cups per part.

    Raises:
        ValueError: ``workers`` or ``part_cups`` below 1.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if workers < 1 or part_cups < 1:
        raise ValueError(f"workers and part_cups must be >= 1, got {workers} and {part_cups}")
    if out.is_file():
        return
    n = len(json.loads((data_dir / "manifest.json").read_text())["cups"])
    n = min(n, max_cups) if max_cups else n
    if n == 0:
        return
    parts_dir = out.parent / f"{out.stem}.parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    bounds = [(a, min(a + part_cups, n)) for a in range(0, n, part_cups)]
    files = [parts_dir / f"cups-{a:06d}-{b:06d}.npz" for a, b in bounds]
    todo = [(b, f) for b, f in zip(bounds, files, strict=True) if not f.is_file()]
    bar = tqdm(
        total=n,
        initial=n - sum(b - a for (a, b), _ in todo),
        desc=f"cut {data_dir.name}",
        unit="cup",
        disable=not progress,
    )
    if todo:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=context,
            initializer=_cut_worker_init,
            initargs=(embedder_file, detector_dir, instances),
        ) as pool:
            futures = [pool.submit(_cut_part, data_dir, f, instances, seed, b) for b, f in todo]
            for future in as_completed(futures):
                bar.update(future.result())
    bar.close()
    CupCache.concat([CupCache.load(f) for f in files]).save(out)
    for f in files:
        f.unlink()
    parts_dir.rmdir()


# ----------------------------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class Pair:
    """One (cup, candidate) pair.

    Attributes:
        cup: cup index in the cache.
        candidate: candidate type id.
        correct: the cup is pure and of the candidate type.
        kind: the cup's kind.
        relation: ``"true"`` (the cup's expected type), ``"twin"``, ``"family"`` or ``"random"`` (a wrong
            candidate for a pure cup); for contaminated cups the contaminant relation is in ``contaminant``.
        contaminant: the manifest's contaminant relation (contaminated cups), else ``""``.
    """

    cup: int
    candidate: str
    correct: bool
    kind: str
    relation: str
    contaminant: str = ""


def make_pairs(
    cache: CupCache,
    mint: Mint,
    *,
    seed: int = 0,
    wrong_candidates: bool = True,
    splits: Sequence[str] | None = None,
    extra_negatives: int = 0,
) -> list[Pair]:
    """Every cup with its expected type, plus wrong candidates (twin, family member, random) for pure cups.

    Args:
        cache: the cups.
        mint: their catalogue.
        seed: seed of the random choices.
        wrong_candidates: add the wrong candidates of pure cups.
        splits: only cups of these splits (``None``: all).
        extra_negatives: for training: this many more family members and random types per pure cup.
    """
    rng = np.random.default_rng(seed)
    ids = [t.id for t in mint.types]
    fam = mint.families()
    pairs: list[Pair] = []
    for i in range(cache.n_cups):
        if splits is not None and str(cache.split[i]) not in splits:
            continue
        kind = str(cache.kind[i])
        exp = str(cache.expected[i]) or ids[int(rng.integers(len(ids)))]
        pairs.append(Pair(i, exp, kind == "pure", kind, "true", str(cache.contaminant[i])))
        if not wrong_candidates or kind != "pure":
            continue
        coin = mint.by_id(exp)
        if coin.twin_of:
            pairs.append(Pair(i, coin.twin_of, False, kind, "twin"))
        members = [t for t in fam.get(coin.family, ()) if t not in (exp, coin.twin_of)]
        if members:
            picks = rng.permutation(len(members))[: 1 + extra_negatives]
            pairs.extend(Pair(i, members[int(k)], False, kind, "family") for k in picks)
        for _ in range(1 + extra_negatives):
            other = ids[int(rng.integers(len(ids)))]
            if other != exp:
                pairs.append(Pair(i, other, False, kind, "random"))
    return pairs


@dataclass
class PairTable:
    """Features of many pairs.

    Attributes:
        pairs: the pairs.
        x: ``(n, len(FEATURES))`` float64.
        bags: per-pair ``(n_i, len(COIN_FEATURES))`` per-coin features (the pooler's input).
        extra: per-pair per-coin arrays for the baselines: ``type_best`` rows are not kept; instead
            ``vote_share``, ``softmax``, ``mean_nn`` scores (see :func:`baseline_scores`).
    """

    pairs: list[Pair]
    x: np.ndarray
    bags: list[np.ndarray]
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        """``(n,)`` bool truth."""
        return np.array([p.correct for p in self.pairs], bool)

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """``(n, len(names))`` the named feature columns of :attr:`x` (whose columns are :data:`FEATURES`)."""
        return self.x[:, [FEATURES.index(f) for f in names]]

    @property
    def has_templates(self) -> bool:
        """Whether the template features were measured (some pair has a finite one)."""
        t = self.columns(TEMPLATE_FEATURES)
        return bool(t.size) and bool(np.isfinite(t).any())

    @classmethod
    def concat(cls, parts: Sequence[PairTable]) -> PairTable:
        """One table of every part's pairs, in order (baseline scores kept where every part has them).

        Raises:
            ValueError: no part.
        """
        if not parts:
            raise ValueError("no pair table to join")
        keys = set.intersection(*(set(p.extra) for p in parts))
        return cls(
            pairs=[q for p in parts for q in p.pairs],
            x=np.concatenate([p.x for p in parts]),
            bags=[b for p in parts for b in p.bags],
            extra={k: np.concatenate([p.extra[k] for p in parts]) for k in sorted(keys)},
        )


SOFTMAX_TEMPERATURE = 0.05


def baseline_scores(type_best: np.ndarray, view: GalleryView, cand: int, embeddings: np.ndarray) -> dict[str, float]:
    """Scores of the simple baselines for one pair (higher = more surely the candidate).

    * ``vote``: share of coins whose top type is the candidate (per-crop majority vote);
    * ``softmax``: mean over coins of a softmax over the gallery's per-type similarities (temperature 0.05),
      the candidate's share of the summed softmax;
    * ``mean_nn``: margin of the candidate over the best other type for the mean cup embedding.
    """
    n = type_best.shape[0]
    if n == 0:
        return {"vote": 0.0, "softmax": 0.0, "mean_nn": -2.0}
    top = type_best.argmax(axis=1)
    z = (type_best - type_best.max(axis=1, keepdims=True)) / SOFTMAX_TEMPERATURE
    sm = np.exp(z)
    sm /= sm.sum(axis=1, keepdims=True)
    mean = embeddings.mean(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    mb, _ = view.type_scores(mean.reshape(1, -1).astype(np.float32))
    other = mb[0].copy()
    other[cand] = -4.0
    return {
        "vote": float((top == cand).mean()),
        "softmax": float(sm[:, cand].mean()),
        "mean_nn": float(mb[0, cand] - other.max()) if view.n_types > 1 else float(mb[0, cand]),
    }


def pair_table(
    cache: CupCache,
    view: GalleryView,
    pairs: Sequence[Pair],
    pooler: SetPooler | None,
    *,
    gem_p: float = 3.0,
    progress: bool = True,
    desc: str = "features",
) -> PairTable:
    """Compute the features (and baseline scores) of every pair."""
    rows = []
    bags = []
    extra: dict[str, list[float]] = {"vote": [], "softmax": [], "mean_nn": []}
    by_cup: dict[int, list[int]] = {}
    for k, p in enumerate(pairs):
        by_cup.setdefault(p.cup, []).append(k)
    out_rows: list[np.ndarray | None] = [None] * len(pairs)
    out_bags: list[np.ndarray | None] = [None] * len(pairs)
    out_extra: list[dict[str, float] | None] = [None] * len(pairs)
    for cup, ks in tqdm(by_cup.items(), desc=desc, unit="cup", disable=not progress):
        coins = cache.coins(cup)
        tb, ta = view.type_scores(coins.embeddings)
        templates = TemplateScorer.for_cup(view, coins)
        for k in ks:
            cand = view.type_index.get(pairs[k].candidate)
            if cand is None:
                raise KeyError(f"candidate {pairs[k].candidate} is not in the gallery")
            ev = pair_evidence(view, coins, cand, pooler, gem_p=gem_p, type_best=tb, type_arg=ta, templates=templates)
            out_rows[k] = feature_vector(ev.features)
            out_bags[k] = ev.scores.features
            out_extra[k] = baseline_scores(tb, view, cand, coins.embeddings)
    for k in range(len(pairs)):
        r, b, e = out_rows[k], out_bags[k], out_extra[k]
        assert r is not None and b is not None and e is not None
        rows.append(r)
        bags.append(b)
        for name in extra:
            extra[name].append(e[name])
    x = np.stack(rows) if rows else np.zeros((0, len(FEATURES)))
    return PairTable(list(pairs), x, bags, {k: np.asarray(v) for k, v in extra.items()})


# ----------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """Arguments of :func:`train_verdict`.

    Attributes:
        data: training data set (its ``val`` split is used for early stopping).
        data_more: further training data sets (other mints), each with its own gallery: their train and val
            pairs join ``data``'s, and ``virtual`` is shared among the sets by their pure training cups.
        data_cal: calibration data set (a different seed); ``None`` uses ``data``'s val split (no guarantee
            beyond that split).
        out: output folder (``voter.txt``, ``pooler.pt``, ``verdict.json``).
        cache: cache folder for embeddings and galleries.
        embedder: embedder checkpoint (``None``: shipped default).
        detector: detector folder recorded in the bundle (``None``: shipped default).
        instances: ``"gt"`` or ``"detector"``.
        target: target precision.
        delta: allowed failure probability.
        max_cups: limit per data set (quick runs).
        seed: seed.
        rounds: most boosting rounds.
        extra_negatives: more family and random wrong candidates per pure training cup.
        virtual: training cups made from the coins of the rendered pure cups (:func:`virtual_cups`).
        negative_weight: weight of each wrong training pair against 1 for a correct one
            (:func:`models.voter.train_voter`).
        cut_workers: processes that cut and embed a data set not yet cached (:func:`cache_cups_parallel`).
        enrol_per_side: enrolment photo crops per (type, side) in each data set's gallery
            (:func:`dataset_gallery`); recorded in the bundle, whose recalibration and evaluation enrol the same way.
        min_coins: the voter's hard rule: a cup with fewer coins never passes (:func:`models.voter.passable`).
        monotone: train the voter under monotone constraints (:func:`models.voter.monotone_constraints`).
        real: the real data root: the voter also learns from cups drawn from its labelled real crops
            (:mod:`models.train.real_cups`), ``real_cups`` training cups per real set, each pair weighing
            ``real_weight`` beside a synthetic one; ``None``: synthetic cups only. The pooler and the calibration
            stay synthetic.
    """

    data: Path
    out: Path
    data_cal: Path | None = None
    data_more: tuple[Path, ...] = ()
    cache: Path = Path("/tmp/cupcheck-voter-cache")
    embedder: Path | None = None
    detector: Path | None = None
    instances: str = "gt"
    target: float = DEFAULT_TARGET
    delta: float = DEFAULT_DELTA
    max_cups: int | None = None
    seed: int = 0
    rounds: int = 400
    extra_negatives: int = 2
    virtual: int = 0
    negative_weight: float = 1.0
    cut_workers: int = 1
    enrol_per_side: int = ENROL_PER_SIDE
    min_coins: int = MIN_COINS
    monotone: bool = False
    real: Path | None = None
    real_cups: int = REAL_CUPS
    real_weight: float = REAL_WEIGHT


@dataclass
class TrainResult:
    """What :func:`train_verdict` produced."""

    bundle_path: Path
    choice: ThresholdChoice
    summary: dict[str, Any]


def load_split(
    data_dir: Path, embedder: Embedder, cfg: TrainConfig, detector: Detector | None, progress: bool
) -> tuple[CupCache, GalleryView, Mint]:
    """Cache a data set's cups and build its gallery view."""
    gallery, diameters = dataset_gallery(data_dir, embedder, cfg.cache, cfg.enrol_per_side, progress=progress)
    mint = mint_of(data_dir)
    view = GalleryView.from_gallery(gallery, diameters, mint_lookalikes(mint))
    cut = cfg.instances if detector is None else f"{cfg.instances}-{detector.version}"
    tag = f"{data_dir.name}-{cut}-{embedder.version}"
    path = cfg.cache / f"cups-{tag}.npz"
    if cfg.cut_workers > 1:
        cache_cups_parallel(
            data_dir,
            path,
            workers=cfg.cut_workers,
            embedder_file=cfg.embedder,
            detector_dir=cfg.detector,
            instances=cfg.instances,
            max_cups=cfg.max_cups,
            seed=cfg.seed,
            progress=progress,
        )
    cache = cache_cups(
        data_dir,
        embedder,
        path,
        instances=cfg.instances,
        detector=detector,
        max_cups=cfg.max_cups,
        seed=cfg.seed,
        progress=progress,
    )
    return cache, view, mint


VIRTUAL_RELATIONS: tuple[tuple[str, float], ...] = (("twin", 0.35), ("family", 0.35), ("other", 0.3))
"""How a virtual contaminated cup's intruder relates to the cup's type, with the chance of each."""


def virtual_cups(cache: CupCache, mint: Mint, n: int, *, seed: int = 0, max_coins: int = 16) -> CupCache:
    """``n`` more training cups made from the coins of the cache's pure training cups, without rendering.

    A virtual cup of type ``A`` draws its coins from the coins the detector found in pure cups of ``A``; half
    the virtual cups are contaminated with one or two coins of a near-twin, a family member or another type,
    drawn the same way. Every observation (embedding, confidence, visibility, diameter, focus) is a real one,
    so the voter sees many more cups of every kind than the rendered ones alone, at the cost of an index.

    Args:
        cache: cups with their coins (only ``pure`` cups of the ``train`` split are used).
        mint: their catalogue.
        n: virtual cups to make.
        seed: seed of the draws.
        max_coins: the most coins in one virtual cup.

    Returns:
        A cache of the virtual cups (split ``train``, kinds ``pure`` and ``contaminated``).

    Raises:
        ValueError: no pure training cup holds a coin.
    """
    rng = np.random.default_rng(seed)
    pools: dict[str, list[int]] = {}
    for i in range(cache.n_cups):
        if str(cache.kind[i]) == "pure" and str(cache.split[i]) == "train" and str(cache.expected[i]):
            pools.setdefault(str(cache.expected[i]), []).extend(range(int(cache.offsets[i]), int(cache.offsets[i + 1])))
    types = sorted(t for t, v in pools.items() if v)
    if not types:
        raise ValueError("no pure training cup holds a coin to make virtual cups from")
    fam = mint.families()
    rows: list[np.ndarray] = []
    meta: list[tuple[str, str, str, str]] = []  # cup id, kind, expected, contaminant
    for v in range(n):
        a = types[int(rng.integers(len(types)))]
        k = int(rng.integers(1, max_coins + 1))
        coins = [pools[a][int(rng.integers(len(pools[a])))] for _ in range(k)]
        kind, relation = "pure", ""
        if rng.random() < 0.5:
            coin = mint.by_id(a)
            choices = {
                "twin": [coin.twin_of] if coin.twin_of else [],
                "family": [t for t in fam.get(coin.family, ()) if t not in (a, coin.twin_of)],
                "other": [t for t in types if mint.by_id(t).family != coin.family],
            }
            names = [r for r, _ in VIRTUAL_RELATIONS]
            w = np.array([wt if any(t in pools for t in choices[r]) else 0.0 for r, wt in VIRTUAL_RELATIONS])
            if w.sum() > 0:
                relation = names[int(rng.choice(len(names), p=w / w.sum()))]
                pool = [t for t in choices[relation] if t in pools]
                for _ in range(1 if k < 4 or rng.random() < 0.65 else 2):
                    b = pool[int(rng.integers(len(pool)))]
                    coins[int(rng.integers(len(coins)))] = pools[b][int(rng.integers(len(pools[b])))]
                kind = "contaminated"
        rows.append(np.asarray(coins, np.int64))
        meta.append((f"virtual{v:06d}", kind, a, relation))
    idx = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64)
    return CupCache(
        offsets=offsets,
        embeddings=cache.embeddings[idx],
        signatures=None if cache.signatures is None else cache.signatures[idx],
        confidence=cache.confidence[idx],
        partial=cache.partial[idx],
        visible=cache.visible[idx],
        diameter_mm=cache.diameter_mm[idx],
        focus=cache.focus[idx],
        true_type=cache.true_type[idx],
        cup_id=np.array([m[0] for m in meta]),
        kind=np.array([m[1] for m in meta]),
        expected=np.array([m[2] for m in meta]),
        contaminant=np.array([m[3] for m in meta]),
        split=np.array(["train"] * len(meta)),
        n_objects=np.zeros(len(meta), np.int64),
        embedder_version=cache.embedder_version,
        source=cache.source,
    )


_SetPairs = tuple[CupCache, GalleryView, list[Pair]]
"""One training data set's cups (with its virtual cups), its gallery view and the pairs drawn from it."""


def _pure_train_cups(cache: CupCache) -> int:
    """Pure cups of a cache's train split (what :func:`virtual_cups` draws its coins from)."""
    return int(np.count_nonzero((cache.kind == "pure") & (cache.split == "train")))


def iter_pair_batches(pairs: Sequence[Pair], size: int) -> Iterator[Sequence[Pair]]:
    """Consecutive slices of ``pairs``."""
    for s in range(0, len(pairs), size):
        yield pairs[s : s + size]


def train_verdict(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Train pooler and voter, choose the threshold, and write the bundle into ``cfg.out``."""
    embedder = Embedder.load(cfg.embedder, threads=1)
    detector = None
    if cfg.instances == "detector":
        from models.detector import Detector

        detector = Detector.load(cfg.detector)
    sets = [load_split(d, embedder, cfg, detector, progress) for d in (cfg.data, *cfg.data_more)]
    pure_train = [_pure_train_cups(c) for c, _, _ in sets]
    train_parts: list[_SetPairs] = []
    val_parts: list[_SetPairs] = []
    n_train_pairs = n_virtual_pairs = 0
    for k, (cache, view, mint) in enumerate(sets):
        val_parts.append((cache, view, make_pairs(cache, mint, seed=cfg.seed + 1, splits=("val",))))
        n_real = cache.n_cups
        virtual = round(cfg.virtual * pure_train[k] / max(sum(pure_train), 1))
        if virtual > 0:
            cache = CupCache.concat([cache, virtual_cups(cache, mint, virtual, seed=cfg.seed + k)])
        pairs = make_pairs(cache, mint, seed=cfg.seed, splits=("train",), extra_negatives=cfg.extra_negatives)
        n_train_pairs += len(pairs)
        n_virtual_pairs += sum(1 for p in pairs if p.cup >= n_real)
        train_parts.append((cache, view, pairs))

    def table_of(parts: list[_SetPairs], pooler: SetPooler | None, desc: str) -> PairTable:
        return PairTable.concat(
            [pair_table(c, v, pairs, pooler, progress=progress, desc=desc) for c, v, pairs in parts if pairs]
        )

    # 1) the set pooler, on per-coin evidence only
    t0 = table_of(train_parts, None, "pairs (train)")
    pooler = train_pooler(t0.bags, t0.y, COIN_FEATURES, seed=cfg.seed)
    # 2) the voter with the pooler's features
    tr = table_of(train_parts, pooler, "features (train)")
    va = table_of(val_parts, pooler, "features (val)") if any(pairs for _, _, pairs in val_parts) else None
    names = FEATURES if tr.has_templates else EMBEDDING_FEATURES
    n_synthetic = len(tr.pairs)
    real_info: dict[str, Any] = {}
    real_va: PairTable | None = None
    fit, stop = tr, va  # what the voter learns from and stops early on (with the real cups' pairs, if any)
    if cfg.real is not None:
        real_tr, real_va, real_info = _real_tables(cfg, embedder, detector, pooler, progress)
        fit = PairTable.concat([tr, real_tr])
        stop = real_va if va is None else PairTable.concat([va, real_va])
        real_info["real_weight"] = cfg.real_weight
    weights = np.where(np.arange(len(fit.pairs)) < n_synthetic, 1.0, cfg.real_weight)
    valid = (stop.columns(names), stop.y) if stop is not None and len(set(stop.y)) == 2 else None
    voter = train_voter(
        fit.columns(names),
        fit.y,
        names,
        valid=valid,
        rounds=cfg.rounds,
        negative_weight=cfg.negative_weight,
        min_coins=cfg.min_coins,
        monotone=cfg.monotone,
        weights=weights,
    )
    if real_va is not None and len(set(real_va.y)) == 2:
        real_info["real_val_auc"] = round(_auc(voter.predict(real_va.columns(names)), real_va.y), 5)
    # 3) calibration
    if cfg.data_cal is not None:
        cal_cache, cal_view, cal_mint = load_split(cfg.data_cal, embedder, cfg, detector, progress)
        cal_pairs = make_pairs(cal_cache, cal_mint, seed=cfg.seed + 2)
        cal = pair_table(cal_cache, cal_view, cal_pairs, pooler, progress=progress, desc="features (cal)")
    else:
        if va is None:
            raise ValueError("no calibration data: give --data-cal or a data set with a val split")
        cal = va
    if names == FEATURES and not cal.has_templates:
        raise ValueError("the training cups carry template signatures but the calibration cups do not")
    cal_scores = voter.predict(cal.columns(names))
    choice = choose_threshold(cal_scores, cal.y, target=cfg.target, delta=cfg.delta)
    # 4) write
    cfg.out.mkdir(parents=True, exist_ok=True)
    voter_path = voter.save(cfg.out / "voter.txt")
    pooler_path = pooler.save(cfg.out / "pooler.pt")
    save_calibration_features(cfg.out / CALIBRATION_FEATURES, cal.columns(names), cal.y, names)
    focus = np.concatenate([c.focus for c, _, _ in train_parts])
    focus_all = focus[np.isfinite(focus)]
    focus_min = float(np.quantile(focus_all, 0.01)) * 0.8 if focus_all.size else 2.0
    val_auc = _auc(voter.predict(va.columns(names)), va.y) if va is not None and len(set(va.y)) == 2 else math.nan
    summary = {
        "data": str(cfg.data) if not cfg.data_more else [str(d) for d in (cfg.data, *cfg.data_more)],
        "data_cal": str(cfg.data_cal) if cfg.data_cal else None,
        "instances": cfg.instances,
        "train_pairs": n_train_pairs,
        "train_positive": int(tr.y.sum()),
        "val_pairs": len(va.pairs) if va is not None else 0,
        "val_auc": round(val_auc, 5),
        "cal_pairs": len(cal.pairs),
        "cal_positive": int(cal.y.sum()),
        "rounds": voter.info.get("rounds"),
        "pooler": pooler.train_info,
        "seed": cfg.seed,
        "extra_negatives": cfg.extra_negatives,
        "virtual_cups": cfg.virtual,
        "virtual_pairs": n_virtual_pairs,
        "negative_weight": cfg.negative_weight,
        "enrol_per_side": cfg.enrol_per_side,
        "monotone": voter.monotone,
        **({"real": str(cfg.real), **real_info} if cfg.real is not None else {}),
    }
    bundle = Bundle(
        root=cfg.out,
        embedder_file=_stored_path(cfg.embedder, EMBEDDER_DEFAULT, cfg.out),
        embedder_version=embedder.version,
        detector_dir=_stored_path(cfg.detector, DETECTOR_DEFAULT, cfg.out),
        detector_version=detector.version if detector is not None else "",
        voter_file=voter_path.name,
        voter_sha256=sha256_file(voter_path),
        pooler_file=pooler_path.name,
        pooler_sha256=sha256_file(pooler_path),
        features=names,
        preprocess=Preprocess(
            crop_size=embedder.prep.input_size, min_coins=cfg.min_coins, focus_min=round(focus_min, 3)
        ),
        threshold=choice,
        cal_scores=cal_scores,
        cal_correct=cal.y,
        train=summary,
        pass_min_coins=cfg.min_coins,
    )
    path = bundle.save(cfg.out / "verdict.json")
    return TrainResult(path, choice, summary)


def _real_tables(
    cfg: TrainConfig, embedder: Embedder, detector: Detector | None, pooler: SetPooler, progress: bool
) -> tuple[PairTable, PairTable, dict[str, Any]]:
    """The real cups' train and val pairs (:func:`models.train.real_cups.real_training_tables`), cut by the
    detector the bundle records (loaded here when the synthetic cups were cut from their true masks)."""
    from models.train.real_cups import RealParts, real_training_tables

    assert cfg.real is not None
    if detector is None:
        from models.detector import Detector

        detector = Detector.load(cfg.detector)
    parts = RealParts(embedder, detector, pooler, embedder.prep.input_size)
    return real_training_tables(cfg.real, parts, cfg.real_cups, seed=cfg.seed, progress=progress)


def recalibrate(
    bundle_path: Path | None,
    data_cal: Path | Sequence[Path],
    out: Path,
    cache: Path,
    *,
    max_cups: int | None = None,
    progress: bool = True,
    cut_workers: int = 1,
    min_coins: int | None = None,
    delta: float | None = None,
) -> TrainResult:
    """Certify a bundle's threshold again on calibration cups cut by the pipeline as it runs now.

    The guarantee holds for the pipeline that cut the calibration cups. When the detector or the cutting changes
    (weights, thresholds, the auto-scale pass) but the voter does not, the voter's scores on the stored pairs no
    longer describe the station: this re-cuts the calibration data set, re-scores it with the bundle's own pooler
    and voter (nothing is refit), chooses the threshold for the bundle's target and delta, and writes a new bundle
    (new version) with the new calibration pairs. The same holds for a change of the hard rules: ``min_coins``
    certifies the voter again under another fewest number of coins a passing cup shows, with no refit.

    Args:
        bundle_path: the bundle to recalibrate (``None``: the shipped one).
        data_cal: calibration data set (``cupcheck synth``; the cups the bundle was calibrated on, or others), or
            several (other mints: each with its own gallery; their pairs are pooled).
        out: folder of the new bundle; the voter and pooler files are copied there when it is another folder.
        cache: cache folder for embeddings and galleries.
        max_cups: only the first cups (quick runs).
        progress: tqdm bars.
        cut_workers: processes that cut the calibration cups when they are not cached yet.
        min_coins: the hard rule's fewest coins of a passing cup for the new bundle (``None``: the bundle's own).
        delta: the certificate's failure probability for the new bundle (``None``: the bundle's own); a smaller
            one is how a rule chosen by comparing rules on these same calibration cups stays certified (with two
            rules compared, half the delta each: Bonferroni).

    Raises:
        FileNotFoundError: the data set or a model file is missing.
        ValueError: the data set lacks the template signatures the voter needs, ``min_coins < 1``, or ``delta``
            outside ``(0, 1)``.
        BundleError: the bundle was trained on another feature set (train the voter again instead).
    """
    import shutil

    from models.bundle import load_bundle
    from models.voter import check_min_coins

    if min_coins is not None:
        check_min_coins(min_coins)
    if delta is not None and not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    bundle = load_bundle(bundle_path)
    bundle.check_feature_set()
    emb_file = bundle.path(bundle.embedder_file)
    embedder = Embedder.load(emb_file if emb_file is not None else EMBEDDER_DEFAULT, threads=1)
    instances = str(bundle.train.get("instances", "gt"))
    detector = None
    if instances == "detector":
        from models.detector import Detector

        detector = Detector.load(bundle.path(bundle.detector_dir))
    pooler_path, voter_path = bundle.path(bundle.pooler_file), bundle.path(bundle.voter_file)
    assert pooler_path is not None and voter_path is not None
    pooler = SetPooler.load(pooler_path)
    voter = bundle.load_voter()
    if min_coins is not None:
        voter = replace(voter, min_coins=min_coins)
    seed = int(bundle.train.get("seed", 0))
    sets = [Path(data_cal)] if isinstance(data_cal, (str, Path)) else [Path(d) for d in data_cal]
    if not sets:
        raise FileNotFoundError("no calibration data set given")
    cfg = TrainConfig(
        data=sets[0],
        out=out,
        cache=cache,
        embedder=emb_file,
        detector=bundle.path(bundle.detector_dir),
        instances=instances,
        max_cups=max_cups,
        seed=seed,
        cut_workers=cut_workers,
        enrol_per_side=bundle.enrol_per_side,
    )
    gem_p = bundle.preprocess.gem_p
    tables: list[PairTable] = []
    for data in sets:
        cal_cache, cal_view, cal_mint = load_split(data, embedder, cfg, detector, progress)
        cal_pairs = make_pairs(cal_cache, cal_mint, seed=seed + 2)
        part = pair_table(cal_cache, cal_view, cal_pairs, pooler, gem_p=gem_p, progress=progress, desc="features (cal)")
        if set(TEMPLATE_FEATURES) & set(bundle.features) and not part.has_templates:
            raise ValueError(f"the voter needs template signatures but the calibration cups of {data} carry none")
        tables.append(part)
    cal = PairTable.concat(tables)
    x, y = cal.columns(bundle.features), cal.y
    scores = voter.predict(x)
    delta = bundle.threshold.delta if delta is None else delta
    choice = choose_threshold(scores, y, target=bundle.threshold.target, delta=delta)
    out.mkdir(parents=True, exist_ok=True)
    for src in (voter_path, pooler_path):
        if src.resolve() != (out / src.name).resolve():
            shutil.copy2(src, out / src.name)
    save_calibration_features(out / CALIBRATION_FEATURES, x, y, bundle.features)
    previous = {
        "version": bundle.version,
        "threshold": bundle.threshold.threshold,
        "cal_pairs": int(bundle.cal_scores.size),
        "min_coins": bundle.pass_min_coins,
        "delta": bundle.threshold.delta,
    }
    summary = {
        **bundle.train,
        "data_cal": str(sets[0]) if len(sets) == 1 else [str(d) for d in sets],
        "cal_pairs": int(y.size),
        "cal_positive": int(y.sum()),
        "recalibrated_from": previous,
        "calibration_detector": detector.version if detector is not None else "",
    }
    new = replace(
        bundle,
        root=out,
        embedder_file=_stored_path(bundle.path(bundle.embedder_file), EMBEDDER_DEFAULT, out),
        detector_dir=_stored_path(bundle.path(bundle.detector_dir), DETECTOR_DEFAULT, out),
        voter_file=voter_path.name,
        pooler_file=pooler_path.name,
        threshold=choice,
        cal_scores=scores,
        cal_correct=y,
        train=summary,
        version="",
        pass_min_coins=voter.min_coins,
        # "too few coins visible" names the rule in force
        preprocess=bundle.preprocess if min_coins is None else replace(bundle.preprocess, min_coins=min_coins),
    )
    path = new.save(out / "verdict.json")
    return TrainResult(path, choice, summary)


CALIBRATION_FEATURES = "calibration.npz"
"""Beside a bundle: its calibration pairs' features, so a retrain can re-score them with a new voter."""


def save_calibration_features(path: Path, x: np.ndarray, y: np.ndarray, names: Sequence[str]) -> Path:
    """Write the calibration pairs' ``(n, F)`` features (float32), truth and column names as ``.npz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.asarray(x, np.float32), y=np.asarray(y, bool), names=np.array(list(names)))
    return write_bytes_atomic(path, buf.getvalue())


def load_calibration_features(path: Path, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The features and truth written by :func:`save_calibration_features`, columns ordered as ``names``.

    Returns ``None`` when the file is missing or lacks one of ``names``.
    """
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        have = [str(n) for n in z["names"]]
        if not set(names) <= set(have):
            return None
        cols = [have.index(n) for n in names]
        return np.asarray(z["x"], np.float64)[:, cols], np.asarray(z["y"], bool)


def _stored_path(path: Path | None, default: Path, root: Path) -> str | None:
    """How the bundle names a weights path: ``None`` for the shipped default, else relative to the bundle when
    it lies beside or below it, else absolute."""
    if path is None or path.resolve() == default.resolve():
        return None
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


auc = _auc
BASE_ONLY = BASE_FEATURES
