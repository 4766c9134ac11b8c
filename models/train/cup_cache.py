"""Every cup of a data set, its coins cut and embedded once, cached per data set and embedder version.

Coins come either from the data set's ground-truth crops (``instances="gt"``) or from the real detector run on the
cup image (``instances="detector"``); :func:`cache_cups_parallel` cuts a large set in worker processes, and
:func:`virtual_cups` draws more training cups from the cached coins without rendering.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from calibration.camera import CupRoi
from models.embedder import Embedder
from models.enroll import read_image
from models.features import CupCoins, focus_measure, visible_share
from models.files import sha256_file, write_bytes_atomic
from models.foreground import unexplained_regions
from models.synth.mint import Mint
from models.template import SIG_SHAPE, signatures
from models.types import BoolArray, CoinCrop, Frame, UInt8Array

if TYPE_CHECKING:
    from models.detector import Detector

CACHE_FORMAT = "cupcheck-voter-cache/1"
DIAMETER_BLANK_SHARE = 0.3
"""Share of cups whose diameters are hidden, so the voter also works for a camera without scale calibration."""
DIAMETER_NOISE = 0.02
"""Relative noise added to the true diameters (a calibrated camera's measurement error)."""


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
        data_sha256: the data set the cups were cut from (:func:`dataset_sha256`; ``""`` for cups drawn from no
            synthetic data set, or a cache written before it was kept).
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
    data_sha256: str = ""

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
        meta = np.array(
            json.dumps(
                {
                    "format": CACHE_FORMAT,
                    "embedder": self.embedder_version,
                    "source": self.source,
                    "data": self.data_sha256,
                }
            )
        )
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
            data_sha256=parts[0].data_sha256,
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
        return cls(
            **data, embedder_version=meta["embedder"], source=meta.get("source", "gt"), data_sha256=meta.get("data", "")
        )


def dataset_sha256(data_dir: Path) -> str:
    """The SHA-256 of a data set's ``manifest.json``: what tells two data sets apart, whatever their folders are
    called (two seeds' sets are both often named ``train``), so a cache made from one is never served for the other.

    Raises:
        FileNotFoundError: the data set has no manifest.
    """
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{data_dir} is not a synthetic data set (no manifest.json); run 'cupcheck synth'")
    return sha256_file(manifest)


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

    A cache is reused only when it was made from this very data set (:func:`dataset_sha256`), with this embedder,
    cutting and these cups; anything else is embedded again. A cache written before template signatures were kept
    is completed in place: the cups are cut again (the detector is deterministic) and only the signatures are
    computed.

    Args:
        data_dir: the data set (``manifest.json``, ``crops/``, ``yolo/images``).
        embedder: the embedder.
        out: the ``.npz`` to write (reused when it exists and matches the data set, embedder and cups).
        instances: ``"gt"`` (the data set's crops, cut from the true masks) or ``"detector"``.
        detector: the detector for ``instances="detector"``.
        max_cups: only the first cups (for quick runs).
        seed: seed of the diameter measurement noise.
        progress: tqdm bar.
        part: only cups ``[start, stop)`` (to embed a data set in parallel parts; see :meth:`CupCache.concat`).

    Raises:
        ValueError: no detector for ``instances="detector"``, or a completed cache's coins do not match.
    """
    data_sha = dataset_sha256(data_dir)
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
        same_data = cached.data_sha256 == data_sha
        if same_data and cached.embedder_version == embedder.version and cached.source == instances and same_cups:
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
        data_sha256=data_sha,
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
        data_sha256=cache.data_sha256,
    )


def pure_train_cups(cache: CupCache) -> int:
    """Pure cups of a cache's train split (what :func:`virtual_cups` draws its coins from)."""
    return int(np.count_nonzero((cache.kind == "pure") & (cache.split == "train")))
