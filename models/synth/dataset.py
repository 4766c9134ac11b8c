"""Write a synthetic cup data set: images, manifest, a YOLO-seg data set and a crops data set for the embedder.

Layout under ``out``::

    mint.json                       the catalogue (n_types + seed rebuild it; readable list of types)
    manifest.json                   every cup with its ground truth (compact JSON)
    yolo/data.yaml                  ultralytics data set (names: 0 coin, 1 object; its folder is the set's root)
    yolo/images/{train,val}/*.jpg   the cup images
    yolo/labels/{train,val}/*.txt   ``class x1 y1 x2 y2 ...`` normalized polygon per visible instance
    crops/images/*.png              one square crop per coin (background outside the visible mask black)
    crops/index.csv                 path,type_id,design_id,side,family,cup_id,split,partial,occlusion,source
    empty/*.jpg                     with ``SceneOptions.empty_reference``: each cup's tray with nothing in it

Each cup is rendered from ``(seed, index)`` alone, so the bytes do not depend on the number of workers. Real data
comes in only when asked: real coin crops with ``SceneOptions.real_fraction`` (the ``crops/train`` folders), real
table patches with ``SynthConfig.real_backgrounds`` (cut from the real photos the evaluations judge). Without either,
the output does not depend on whether the real data folder exists. The manifest names every real file a cup drew
from (``real_crops``, ``real_backgrounds``) and, under ``real_photos``, every real photo the set drew from, so a
claim that a real photo was held out of a model's training can be checked against the sets it was trained on.

The set is written into a hidden folder beside its parts and moved into place at the end: a run that fails leaves
nothing that would block the next one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import multiprocessing as mp
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from calibration.camera import CupRoi
from models.synth.mint import generate_mint
from models.synth.real_coins import crop_source_photo, list_real_types
from models.synth.scene import (
    MIN_CONTAMINATED_COINS,
    CupScene,
    SceneAssets,
    SceneInstance,
    SceneOptions,
    drawable_kinds,
    render_cup,
    shares_an_obverse,
)
from models.synth.textures import load_patch_bank
from models.types import CupKind, UInt8Array

CROP_COLUMNS: tuple[str, ...] = (
    "path",
    "type_id",
    "design_id",
    "side",
    "family",
    "cup_id",
    "split",
    "partial",
    "occlusion",
    "source",
)
"""Columns of ``crops/index.csv``."""

MAX_CROP_OCCLUSION = 0.5
"""Coins hidden more than this are left out of the crops data set."""


MAX_CUPS = 1_000_000
"""Cup ids have six digits: a set's cups run from its first index to at most 999999."""

MAX_IMAGE_SIZE = 4096
"""The largest cup photo side rendered: a 4K webcam's frame (larger asks for more memory than a station has)."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic data set.

    Attributes:
        n_types: coin types in the generated mint (>= 2).
        n_cups: cup images to render.
        seed: the data set seed (mint and cups).
        scene: scene options (image size, kind mix, real fraction).
        crop_size: side of the embedder crops in pixels (8 to :data:`MAX_IMAGE_SIZE`).
        val_fraction: fraction of cups in the validation split.
        real_root: the real data folder (``None``: no real crops or textures).
        real_backgrounds: cut tables and cup floors from the real photos under ``real_root`` too (about half the
            tables, a third of the floors). Off by default: those are the photos the real-photo evaluations judge.
        cache_dir: where the real surface patches are cached (``None``: the default cache directory).
        first_index: index of the first cup; cups ``first_index ..`` of one seed are other cups of the same mint
            (e.g. a station's enrolment photos beside a test set).
    """

    n_types: int
    n_cups: int
    seed: int
    scene: SceneOptions
    crop_size: int = 128
    val_fraction: float = 0.1
    real_root: Path | None = None
    cache_dir: Path | None = None
    first_index: int = 0
    real_backgrounds: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` with a clear message for an impossible configuration."""
        if self.n_types < 2:
            raise ValueError(f"need at least 2 coin types, got {self.n_types}")
        if self.n_cups < 0:
            raise ValueError(f"the number of cups must be >= 0, got {self.n_cups}")
        if self.n_cups > MAX_CUPS:
            raise ValueError(
                f"the number of cups must be at most {MAX_CUPS} (cup ids have six digits), got {self.n_cups}"
            )
        if self.first_index < 0:
            raise ValueError(f"first index must be >= 0, got {self.first_index}")
        if self.first_index + self.n_cups > MAX_CUPS:
            raise ValueError(
                f"first index {self.first_index} is too large for {self.n_cups} cups: the last cup id would be "
                f"{self.first_index + self.n_cups - 1}, past {MAX_CUPS - 1} (cup ids have six digits); the first index "
                f"can be at most {MAX_CUPS - self.n_cups}"
            )
        if not 64 <= self.scene.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image size must be from 64 to {MAX_IMAGE_SIZE}, got {self.scene.image_size}")
        if not 8 <= self.crop_size <= MAX_IMAGE_SIZE:
            raise ValueError(
                f"crop size must be from 8 to {MAX_IMAGE_SIZE} (a crop larger than the largest cup photo only "
                f"enlarges its coin, and asks for more memory than a station has), got {self.crop_size}"
            )
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"val fraction must be in [0, 1], got {self.val_fraction}")
        if not 0.0 <= self.scene.real_fraction <= 1.0:
            raise ValueError(f"real fraction must be in [0, 1], got {self.scene.real_fraction}")
        if not 0.0 <= self.scene.reverse_share <= 1.0:
            raise ValueError(f"reverse share must be in [0, 1], got {self.scene.reverse_share}")
        if self.scene.max_coins < 1:
            raise ValueError(f"max coins must be >= 1, got {self.scene.max_coins}")
        contaminated = self.scene.kind_weights.get(CupKind.CONTAMINATED, 0.0) > 0
        if contaminated and self.scene.max_coins < MIN_CONTAMINATED_COINS:
            raise ValueError(
                f"max coins {self.scene.max_coins} is too few for contaminated cups, which hold at least "
                f"{MIN_CONTAMINATED_COINS} coins (two of the expected type beside the intruder): allow at least "
                f"{MIN_CONTAMINATED_COINS}, or leave contaminated cups out of the kinds"
            )
        if self.real_backgrounds and (self.real_root is None or not self.real_root.is_dir()):
            raise ValueError(f"real backgrounds need the real data folder, and {self.real_root} is not one")
        drawable_kinds(self.scene.kind_weights, shares_an_obverse(generate_mint(self.n_types, self.seed)))


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_dataset` produced.

    Attributes:
        n_cups: images written.
        n_instances: visible instances over all cups.
        n_crops: rows of the crops index.
        kinds: cups per kind.
        seconds: wall time of the rendering loop (with one worker, building the assets before it is not counted).
        real_types: how many real denominations were available.
        real_coin_photos: the real photos whose coin crops were pasted into cups (:func:`real_photos`).
        real_background_photos: the real photos tables and cup floors were cut from.
    """

    n_cups: int
    n_instances: int
    n_crops: int
    kinds: dict[str, int]
    seconds: float
    real_types: int
    real_coin_photos: tuple[str, ...] = ()
    real_background_photos: tuple[str, ...] = ()

    @property
    def images_per_second(self) -> float:
        """Rendering throughput: cups per second of :attr:`seconds`."""
        return self.n_cups / self.seconds if self.seconds > 0 else float("inf")


def is_val(index: int, fraction: float) -> bool:
    """Whether cup ``index`` is in the validation split: exactly ``fraction`` of cups, spread evenly."""
    return int((index + 1) * fraction) > int(index * fraction)


def cup_crop(scene: CupScene, inst: SceneInstance, size: int) -> UInt8Array:
    """A square crop around the instance's true circle, pixels outside its visible mask black.

    Args:
        scene: the rendered cup.
        inst: one of its instances.
        size: output side.

    Returns:
        ``(size, size, 3)`` uint8 BGR.
    """
    cx, cy = inst.center
    side = max(inst.diameter_px, 2.0)
    h, w = scene.labels.shape
    x0, y0 = max(0, int(np.floor(cx - side / 2)) - 1), max(0, int(np.floor(cy - side / 2)) - 1)
    x1, y1 = min(w, int(np.ceil(cx + side / 2)) + 2), min(h, int(np.ceil(cy + side / 2)) + 2)
    roi = scene.image[y0:y1, x0:x1].copy()
    roi[scene.labels[y0:y1, x0:x1] != inst.label] = 0
    sc = size / side
    m = np.array([[sc, 0, -(cx - side / 2 - x0) * sc], [0, sc, -(cy - side / 2 - y0) * sc]], np.float32)
    crop = cv2.warpAffine(roi, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return np.asarray(crop, np.uint8)


def yolo_lines(scene: CupScene) -> list[str]:
    """YOLO-seg label lines: ``class x y x y ...`` normalized; class 0 coin, 1 foreign object."""
    h, w = scene.labels.shape
    lines = []
    for inst in scene.instances:
        poly = inst.polygon
        if len(poly) < 3:
            continue
        coords = " ".join(f"{x / w:.5f} {y / h:.5f}" for x, y in poly.tolist())
        lines.append(f"{0 if inst.is_coin else 1} {coords}")
    return lines


def _tray_record(tray: CupRoi) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in tray.to_dict().items()}


def _instance_record(inst: SceneInstance) -> dict[str, Any]:
    return {
        "type_id": inst.type_id,
        "side": inst.side,
        "design_id": inst.design_id,
        "family": inst.family,
        "source": inst.source,
        "is_coin": inst.is_coin,
        "bbox": list(inst.bbox),
        "center": [round(inst.center[0], 2), round(inst.center[1], 2)],
        "diameter_mm": round(inst.diameter_mm, 3),
        "diameter_px": round(inst.diameter_px, 2),
        "occlusion": inst.occlusion,
        "partial": inst.partial,
        "polygon": inst.polygon.tolist(),
    }


# Per-process state for the workers (built once per process by _init).
_STATE: dict[str, Any] = {}


def _init(config: SynthConfig, out: Path, single_thread: bool = False) -> None:
    if single_thread:
        cv2.setNumThreads(1)  # one process per core: no oversubscription
    mint = generate_mint(config.n_types, config.seed)
    real_root = config.real_root
    real = list_real_types(real_root) if config.scene.real_fraction > 0 else ()
    patches = load_patch_bank(real_root, config.cache_dir) if config.real_backgrounds else None
    _STATE.update(config=config, out=out, assets=SceneAssets(mint, real, patches))


def _work(index: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config: SynthConfig = _STATE["config"]
    out: Path = _STATE["out"]
    scene = render_cup(_STATE["assets"], config.seed, index, config.scene)
    split = "val" if is_val(index, config.val_fraction) else "train"
    cup_id = f"{index:06d}"
    img_rel = f"yolo/images/{split}/{cup_id}.jpg"
    (out / img_rel).write_bytes(scene.jpeg)
    (out / "yolo" / "labels" / split / f"{cup_id}.txt").write_text("".join(f"{ln}\n" for ln in yolo_lines(scene)))
    empty_rel = None
    if scene.empty_jpeg is not None:
        empty_rel = f"empty/{cup_id}.jpg"
        (out / empty_rel).write_bytes(scene.empty_jpeg)
    rows = []
    for k, inst in enumerate(scene.instances):
        if not inst.is_coin or inst.occlusion > MAX_CROP_OCCLUSION:
            continue
        rel = f"crops/images/{cup_id}_{k:02d}.png"
        crop = cup_crop(scene, inst, config.crop_size)
        cv2.imwrite(str(out / rel), crop, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        rows.append(
            {
                "path": rel,
                "type_id": inst.type_id,
                "design_id": inst.design_id,
                "side": inst.side,
                "family": inst.family,
                "cup_id": cup_id,
                "split": split,
                "partial": int(inst.partial),
                "occlusion": f"{inst.occlusion:.4f}",
                "source": "real" if inst.source == "real" else "synthetic",
            }
        )
    record: dict[str, Any] = {
        "id": cup_id,
        "image": img_rel,
        "split": split,
        "kind": scene.kind.value,
        "expected_type": scene.expected_type,
        "contaminant": scene.contaminant,
        "px_per_mm": round(scene.px_per_mm, 5),
        "cup_diameter_mm": round(scene.cup_diameter_mm, 2),
        "tray": None if scene.tray is None else _tray_record(scene.tray),
        "instances": [_instance_record(i) for i in scene.instances],
    }
    if empty_rel is not None:
        record["empty"] = empty_rel
    if scene.real_crops:
        record["real_crops"] = [_real_rel(f, config.real_root) for f in scene.real_crops]
    if scene.real_backgrounds:
        record["real_backgrounds"] = list(scene.real_backgrounds)
    return record, rows


def _real_rel(path: str, real_root: Path | None) -> str:
    """A real file's path below the real data folder (as it is when it lies elsewhere)."""
    try:
        return Path(path).relative_to(real_root).as_posix() if real_root is not None else path
    except ValueError:
        return path


def real_photos(cups: list[dict[str, Any]], real_root: Path | None) -> dict[str, list[str]]:
    """Every real photo the cups drew from, sorted: ``coins`` (the photos their pasted crops were cut from, as
    :func:`~models.synth.real_coins.crop_source_photo` names them) and ``backgrounds`` (the photo files, below the
    real data folder, their tables and floors were cut from)."""
    root = real_root or Path("/")
    coins = {crop_source_photo(root / f, real_root) for c in cups for f in c.get("real_crops", ())}
    backgrounds = {b for c in cups for b in c.get("real_backgrounds", ()) if b}
    return {"coins": sorted(coins), "backgrounds": sorted(backgrounds)}


def _results(config: SynthConfig, out: Path, workers: int) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each cup's manifest record and crop rows, in index order.

    With one worker the assets (the mint, the real types, the surface patch bank, minutes to build from the real
    photos) are built here, before the first cup is asked for, so that the rendering clock started after this call
    times the cups alone.
    """
    indices = range(config.first_index, config.first_index + config.n_cups)
    if workers <= 1:
        _init(config, out)
        return (_work(i) for i in indices)
    return _pooled(config, out, workers, indices)


def _pooled(
    config: SynthConfig, out: Path, workers: int, indices: range
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The cups rendered by a pool of ``workers`` processes, each building its own assets."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(config, out, True)) as pool:
        yield from pool.imap(_work, indices, chunksize=4)


DATA_YAML = (
    "# no 'path': ultralytics then reads the images beside this file, wherever the data set is copied or moved\n"
    "train: images/train\nval: images/val\nnames:\n  0: coin\n  1: object\n"
)
"""``yolo/data.yaml``. A relative ``path`` (even ``.``) would be taken from the working folder, an absolute one
would keep naming the folder the set was written in."""


def write_mint_json(path: Path, config: SynthConfig) -> None:
    """Write the catalogue: ``n_types`` and ``seed`` (enough to rebuild it), every type, and the real types."""
    mint = generate_mint(config.n_types, config.seed)
    real = list_real_types(config.real_root) if config.scene.real_fraction > 0 else ()
    doc = {
        "n_types": config.n_types,
        "seed": config.seed,
        "types": [dataclasses.asdict(t) for t in mint.types],
        "real_types": [{"id": t.id, "family": t.currency, "diameter_mm": t.diameter_mm} for t in real],
    }
    path.write_text(json.dumps(doc, indent=1))


def write_dataset(config: SynthConfig, out: Path, *, workers: int = 1, progress: bool = True) -> SynthSummary:
    """Render ``config.n_cups`` cups and write the data sets under ``out``.

    Everything is written into a hidden folder in ``out`` first and moved into place once the last file is written;
    when rendering fails (or is interrupted) that folder is removed, so ``out`` is left as it was.

    Args:
        config: what to render.
        out: the output folder (created).
        workers: processes; the output is identical for any value.
        progress: show a tqdm bar on stderr.

    Returns:
        Counts and timing.

    Raises:
        ValueError: for an impossible configuration.
        OSError: when ``out`` cannot be written, or already holds a part of a data set.
    """
    config.validate()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".synth-partial-", dir=out))
    try:
        summary = _write_into(config, work, workers, progress)
        for part in sorted(p.name for p in work.iterdir()):
            if (out / part).exists():
                raise FileExistsError(f"{out / part} already exists: write the data set into another folder")
        for part in sorted(p.name for p in work.iterdir()):
            (work / part).replace(out / part)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _write_into(config: SynthConfig, out: Path, workers: int, progress: bool) -> SynthSummary:
    """:func:`write_dataset` into the empty folder ``out``."""
    for split in ("train", "val"):
        (out / "yolo" / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "yolo" / "labels" / split).mkdir(parents=True, exist_ok=True)
    (out / "crops" / "images").mkdir(parents=True, exist_ok=True)
    if config.scene.empty_reference:
        (out / "empty").mkdir(exist_ok=True)
    if config.real_backgrounds and workers > 1:
        load_patch_bank(config.real_root, config.cache_dir)  # build the cache once, before the workers
    write_mint_json(out / "mint.json", config)
    (out / "yolo" / "data.yaml").write_text(DATA_YAML)
    cups: list[dict[str, Any]] = []
    crop_rows: list[dict[str, Any]] = []
    results = _results(config, out, workers)  # the assets first: the clock times the rendering alone
    t0 = time.perf_counter()
    bar = tqdm(total=config.n_cups, desc="synth", unit="cup", disable=not progress)
    for record, rows in results:
        cups.append(record)
        crop_rows += rows
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t0
    photos = real_photos(cups, config.real_root)
    manifest = {
        "seed": config.seed,
        "image_size": config.scene.image_size,
        "n_types": config.n_types,
        "real_photos": photos,
        "cups": cups,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, separators=(",", ":")))
    with (out / "crops" / "index.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CROP_COLUMNS))
        writer.writeheader()
        writer.writerows(crop_rows)
    kinds = Counter(c["kind"] for c in cups)
    return SynthSummary(
        n_cups=len(cups),
        n_instances=sum(len(c["instances"]) for c in cups),
        n_crops=len(crop_rows),
        kinds=dict(sorted(kinds.items())),
        seconds=seconds,
        real_types=len(list_real_types(config.real_root)) if config.scene.real_fraction > 0 else 0,
        real_coin_photos=tuple(photos["coins"]),
        real_background_photos=tuple(photos["backgrounds"]),
    )
