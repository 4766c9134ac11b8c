"""Train the coin detector: YOLO boxes (ultralytics, from scratch, offline) and the mask segmenter (pure torch).

Input is a synthetic data set written by ``cupcheck synth`` (``DIR/yolo/data.yaml`` and ``DIR/manifest.json``).
Both parts train on that folder, wherever it lies now: YOLO is given a copy of its ``data.yaml`` in the run folder
whose ``path`` names the data set's own ``yolo/`` folder. The two parts train independently (they can run in
parallel) and are then packaged into a detector folder: ``yolo.pt`` (optimizer stripped, fp16), ``segmenter.pt``
(fp16 state) and ``detector.json`` (preprocessing, thresholds, class names, version, hashes, provenance), which
records the input size and epochs the weights were trained with, read from the checkpoints themselves.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.detector import SIDECAR, DetectorSettings, offline_ultralytics, yolo_checkpoint, yolo_strip, yolo_train
from models.files import read_torch_checkpoint, sha256_file, write_bytes_atomic
from models.segmenter import Segmenter, TinyUNet, segmenter_input
from models.train.loop import LoopParts, fit, peek_state

YOLO_FILE = "yolo.pt"
SEGMENTER_FILE = "segmenter.pt"
SEGMENTER_STATE = "state.pt"
"""Beside a segmenter run's ``best.pt``: its resumable state (:func:`models.train.loop.save_state`)."""
DEFAULT_MODEL = "yolo26n.yaml"
RUN_DATA_YAML = "yolo_data.yaml"
"""In the run folder: the data set's ``data.yaml`` as YOLO is given it, ``path`` naming the ``--data`` folder."""


@dataclass(frozen=True)
class YoloTrainConfig:
    """Settings of the YOLO box detector run.

    Attributes:
        data: the synthetic data set folder (holds ``yolo/data.yaml``).
        out: run folder (``out/yolo/weights/{last,best}.pt``).
        epochs: training epochs.
        imgsz: input side in pixels.
        batch: images per batch.
        seed: random seed.
        model: ultralytics model ``.yaml`` (built from scratch, never downloaded).
        workers: data loader workers.
        fraction: fraction of the training images used.
        hours: wall-clock budget; when set, ultralytics fits the epoch count and schedule to it.
        init: a previous YOLO checkpoint of this project to start from (``None``: from scratch).
        lr0: initial AdamW learning rate (``None``: ultralytics' automatic choice).
    """

    data: Path
    out: Path
    epochs: int = 30
    imgsz: int = 256
    batch: int = 16
    seed: int = 0
    model: str = DEFAULT_MODEL
    workers: int = 0
    fraction: float = 1.0
    hours: float | None = None
    init: Path | None = None
    lr0: float | None = None


def data_yaml(data: Path) -> Path:
    """The ultralytics data file of a synthetic data set (``DIR/yolo/data.yaml``) or ``data`` itself.

    Raises:
        FileNotFoundError: neither exists.
    """
    for cand in (data / "yolo" / "data.yaml", data / "data.yaml", data):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"no YOLO data set at {data} (expected {data / 'yolo' / 'data.yaml'})")


def run_data_yaml(data: Path, out: Path) -> Path:
    """Write the data set's ultralytics data file into the run folder, its ``path`` naming where the set lies now.

    A ``data.yaml`` written by an older ``cupcheck synth`` names its folder by an absolute ``path``: a copied set
    would train YOLO on the original's images while the segmenter reads the copy's, and a moved one would not
    train at all. The copy in ``out`` (:data:`RUN_DATA_YAML`) keeps every other key.

    Raises:
        FileNotFoundError: the data set has no ``data.yaml``.
        ValueError: the ``data.yaml`` is not a YAML mapping.
    """
    import yaml

    source = data_yaml(data)
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{source} is not readable YAML: {err}") from err
    if not isinstance(doc, dict):
        raise ValueError(f"{source} is not an ultralytics data file (a mapping with train, val and names)")
    doc["path"] = str(source.parent.resolve())
    out.mkdir(parents=True, exist_ok=True)
    target = out / RUN_DATA_YAML
    write_bytes_atomic(target, yaml.safe_dump(doc, sort_keys=False).encode("utf-8"))
    return target


def _run_yolo(model: str | Path, *, resume: bool = False, **train_args: Any) -> None:
    """:func:`yolo_train`, with ultralytics' own failures (a data set or checkpoint it cannot use: ``RuntimeError``,
    ``AssertionError``) raised as ``ValueError``, the error a command reports in a line."""
    try:
        yolo_train(model, resume=resume, **train_args)
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"YOLO training stopped: {type(err).__name__}: {err}") from err


def train_yolo(config: YoloTrainConfig, *, resume: bool = False) -> Path:
    """Train (or resume) the YOLO box detector; returns the best weights file.

    With ``resume``, a run whose ``last.pt`` is finished (ultralytics strips the optimizer when the last epoch is
    done) is left as it is: only the other part was cut short, and ultralytics would start a new run with its own
    defaults (another data set, 100 epochs) instead of resuming it.

    Raises:
        FileNotFoundError: no data set, or ``resume`` without a ``last.pt``.
        ValueError: a checkpoint or data set ultralytics cannot use.
    """
    offline_ultralytics()
    run = config.out / "yolo"
    last = run / "weights" / "last.pt"
    data = run_data_yaml(config.data, config.out).resolve()
    if resume:
        if not last.is_file():
            raise FileNotFoundError(f"cannot resume: {last} does not exist")
        if yolo_checkpoint(last).resumable:
            _run_yolo(last, resume=True, data=str(data), save_dir=str(run.resolve()))
        else:
            print(f"YOLO part already finished ({last} holds no optimizer state): kept as it is", file=sys.stderr)
    else:
        extra: dict[str, Any] = {"time": config.hours} if config.hours else {}
        if config.lr0 is not None:
            extra.update(optimizer="AdamW", lr0=config.lr0)
        if config.init is not None:
            if not config.init.is_file():
                raise FileNotFoundError(f"no YOLO checkpoint at {config.init}")
            yolo_checkpoint(config.init)  # a clear error for a file that is not one, before ultralytics' own
            extra["pretrained"] = str(config.init)  # a local file of this project; nothing is downloaded
        _run_yolo(
            config.init if config.init is not None else config.model,
            data=str(data),
            epochs=config.epochs,
            imgsz=config.imgsz,
            batch=config.batch,
            workers=config.workers,
            project=str(config.out.resolve()),
            name="yolo",
            exist_ok=True,
            seed=config.seed,
            deterministic=True,
            fraction=config.fraction,
            **extra,
            warmup_epochs=0 if config.init is not None else 1,
            close_mosaic=max(1, config.epochs // 10),
            flipud=0.5,
            verbose=False,
        )
    best = run / "weights" / "best.pt"
    return best if best.is_file() else last


# ------------------------------------------------------------------------------------------------ segmenter


@dataclass(frozen=True)
class SegmenterTrainConfig:
    """Settings of the segmenter run.

    Attributes:
        data: the synthetic data set folder (holds ``manifest.json``).
        out: run folder (``out/segmenter/state.pt`` resumable, ``out/segmenter/best.pt``).
        epochs: training epochs.
        size: network input side.
        widths: U-Net channels per level.
        batch: samples per batch.
        lr: peak learning rate (AdamW, cosine decay).
        seed: random seed.
        jitter: standard deviation of each box edge's shift, as a fraction of the box side (detector noise).
        max_cups: use at most this many training cups (``None``: all).
        init: a segmenter checkpoint to start from (``None``: random initialisation).
        max_minutes: stop, resumably, after the first epoch that ends past this budget (``None``: run every epoch).
    """

    data: Path
    out: Path
    epochs: int = 8
    size: int = 64
    widths: tuple[int, int, int, int] = (16, 32, 48, 64)
    batch: int = 32
    lr: float = 3e-3
    seed: int = 0
    jitter: float = 0.04
    max_cups: int | None = None
    init: Path | None = None
    max_minutes: float | None = None


@dataclass(frozen=True)
class SegSamples:
    """Precomputed segmenter samples.

    Attributes:
        x: ``(n, 4, S, S)`` float16 inputs.
        y: ``(n, 1, S, S)`` float16 soft targets in ``[0, 1]``.
    """

    x: np.ndarray
    y: np.ndarray


def load_manifest(data: Path) -> dict[str, Any]:
    """Read ``DIR/manifest.json``.

    Raises:
        FileNotFoundError: missing.
    """
    path = data / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest at {path}")
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def instance_mask(inst: dict[str, Any], width: int, height: int) -> np.ndarray:
    """Rasterize a manifest instance's visible polygon: ``(height, width)`` uint8 in ``{0, 1}``."""
    mask = np.zeros((height, width), dtype=np.uint8)
    poly = np.asarray(inst["polygon"], dtype=np.int32).reshape(-1, 1, 2)
    if len(poly) >= 3:
        cv2.fillPoly(mask, [poly], 1)
    return mask


def _jitter_box(box: tuple[float, float, float, float], rng: np.random.Generator, amount: float) -> tuple[float, ...]:
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1)
    d = rng.normal(0.0, amount * side, size=4)
    nx1, ny1, nx2, ny2 = x1 + d[0], y1 + d[1], x2 + d[2], y2 + d[3]
    if nx2 - nx1 < 4 or ny2 - ny1 < 4:
        return box
    return (nx1, ny1, nx2, ny2)


def build_samples(
    data: Path,
    split: str,
    size: int,
    *,
    seed: int,
    jitter: float,
    copies: int = 1,
    max_cups: int | None = None,
    progress: bool = True,
) -> SegSamples:
    """Cut segmenter samples from every instance of ``split`` (``"train"`` or ``"val"``) of a synthetic set.

    Args:
        data: the data set folder.
        split: which cups.
        size: network input side.
        seed: jitter seed.
        jitter: box edge noise (fraction of the side).
        copies: jittered samples per instance.
        max_cups: use at most this many cups.
        progress: tqdm bar on stderr.
    """
    manifest = load_manifest(data)
    cups = [c for c in manifest["cups"] if c["split"] == split]
    if max_cups is not None:
        cups = cups[:max_cups]
    rng = np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for cup in tqdm(cups, desc=f"segmenter samples ({split})", disable=not progress):
        image = cv2.imread(str(data / cup["image"]), cv2.IMREAD_COLOR)
        if image is None:
            continue
        h, w = image.shape[:2]
        for inst in cup["instances"]:
            x1, y1, x2, y2 = (float(v) for v in inst["bbox"])
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            target = instance_mask(inst, w, h)
            for _ in range(copies):
                box = _jitter_box((x1, y1, x2, y2), rng, jitter)
                x, window = segmenter_input(image, box, size)  # type: ignore[arg-type]
                t = cv2.resize(window.cut(target).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
                xs.append(x.astype(np.float16))
                ys.append(t[None].astype(np.float16))
    if not xs:
        raise ValueError(f"no instances in the {split} split of {data}")
    return SegSamples(np.stack(xs), np.stack(ys))


def _augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips, 90-degree turns and brightness/contrast on a batch (same per sample for x and y)."""
    k = int(torch.randint(0, 4, (1,), generator=gen))
    x, y = torch.rot90(x, k, (2, 3)), torch.rot90(y, k, (2, 3))
    if bool(torch.randint(0, 2, (1,), generator=gen)):
        x, y = torch.flip(x, (3,)), torch.flip(y, (3,))
    n = x.shape[0]
    gain = 0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    bias = 0.1 * (torch.rand(n, 1, 1, 1, generator=gen) - 0.5)
    rgb = (x[:, :3] * gain + bias).clamp(0, 1)
    return torch.cat([rgb, x[:, 3:]], 1), y


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft BCE plus soft Dice, averaged over the batch."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def sample_iou(net: TinyUNet, samples: SegSamples, batch: int = 128) -> float:
    """Mean IoU of thresholded logits against thresholded targets at the network's resolution."""
    net.eval()
    ious: list[float] = []
    with torch.inference_mode():
        for s in range(0, len(samples.x), batch):
            x = torch.from_numpy(samples.x[s : s + batch].astype(np.float32))
            t = torch.from_numpy(samples.y[s : s + batch].astype(np.float32)) > 0.5
            p = net(x) > 0
            inter = (p & t).sum((1, 2, 3)).float()
            union = (p | t).sum((1, 2, 3)).float().clamp(min=1)
            ious.extend((inter / union).tolist())
    return float(np.mean(ious))


def _segmenter_state(path: Path) -> dict[str, Any]:
    """The segmenter state (:meth:`Segmenter.state`) in a checkpoint: a ``best.pt`` of a run, or a packaged
    ``segmenter.pt``.

    Raises:
        ValueError: the file is not a readable torch checkpoint, or holds no segmenter.
    """
    state = read_torch_checkpoint(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a segmenter checkpoint (it holds a {type(state).__name__})")
    inner = state.get("segmenter", state)
    if not isinstance(inner, dict) or "state_dict" not in inner:
        raise ValueError(f"{path} is not a segmenter checkpoint (no segmenter state in it)")
    return dict(inner)


def train_segmenter(config: SegmenterTrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) the segmenter; returns the best checkpoint (by validation IoU).

    A resumable state is saved after every epoch (``out/segmenter/state.pt``): the networks, optimizer, schedule,
    every random state (the augmentation's generator too, so a resumed run ends where an uninterrupted one does)
    and the epochs the run was set to (:func:`segmenter_epochs`).

    Raises:
        FileNotFoundError: no manifest.
        ValueError: no instances in a split, or ``init`` is not a segmenter checkpoint of these widths.
    """
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    run = config.out / "segmenter"
    run.mkdir(parents=True, exist_ok=True)
    train = build_samples(
        config.data,
        "train",
        config.size,
        seed=config.seed,
        jitter=config.jitter,
        copies=1,
        max_cups=config.max_cups,
        progress=progress,
    )
    val = build_samples(config.data, "val", config.size, seed=config.seed + 1, jitter=config.jitter, progress=progress)
    net = TinyUNet(config.widths)
    if config.init is not None:
        start = Segmenter.from_state(_segmenter_state(config.init))
        if start.net.widths != net.widths:
            raise ValueError(f"{config.init}: widths {start.net.widths} differ from the configured {net.widths}")
        # a U-Net is fully convolutional: a checkpoint trained at another input side is a valid start
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in start.net.state_dict().items()})
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train.x) / config.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.1
    )
    gen = torch.Generator().manual_seed(config.seed)
    parts = LoopParts(modules={"net": net}, optimizer=opt, scheduler=sched, generators={"augment": gen})
    best_file = run / "best.pt"
    best_iou = -1.0
    if resume and best_file.is_file():
        best_iou = float(read_torch_checkpoint(best_file).get("val_iou", -1.0))

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = np.random.default_rng(config.seed * 1000 + epoch).permutation(len(train.x))
        for s in range(0, len(order), config.batch):
            idx = np.sort(order[s : s + config.batch])
            x = torch.from_numpy(train.x[idx].astype(np.float32))
            y = torch.from_numpy(train.y[idx].astype(np.float32))
            yield _augment(x, y, gen)

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return seg_loss(net(batch[0]), batch[1])

    def validate(epoch: int) -> dict[str, float]:
        return {"val_iou": sample_iou(net, val)}

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        nonlocal best_iou
        tqdm.write(f"segmenter epoch {epoch + 1}: loss {metrics['loss']:.4f} val IoU {metrics['val_iou']:.4f}")
        if metrics["val_iou"] > best_iou:
            best_iou = metrics["val_iou"]
            seg = Segmenter(net, config.size)
            doc = {"segmenter": seg.state(), "val_iou": best_iou, "epoch": epoch + 1, "epochs": config.epochs}
            torch.save(doc, best_file)

    fit(
        parts,
        batches,
        step,
        epochs=config.epochs,
        state_file=run / SEGMENTER_STATE,
        resume=resume,
        validate=validate,
        on_epoch_end=on_epoch_end,
        max_seconds=None if config.max_minutes is None else 60.0 * config.max_minutes,
        extra={"epochs": config.epochs, "size": config.size},
        progress=progress,
    )
    return best_file


def segmenter_epochs(checkpoint: Path) -> int | None:
    """The epochs a segmenter run was set to, from what it saved.

    Its ``best.pt`` says (``epochs``; the file may be missing before a first epoch improved), else the
    :data:`SEGMENTER_STATE` beside it (the ``epochs`` it was run with, or, for a run older than that key, the epochs
    it finished); ``None`` when neither says (a packaged ``segmenter.pt`` copied in as ``best.pt``).

    Raises:
        ValueError: a file that is there is not a readable torch checkpoint.
    """
    doc = read_torch_checkpoint(checkpoint) if checkpoint.is_file() else None
    if isinstance(doc, dict) and doc.get("epochs") is not None:
        return int(doc["epochs"])
    state = checkpoint.parent / SEGMENTER_STATE
    if not state.is_file():
        return None
    done, extra = peek_state(state)
    return int(extra.get("epochs", done.epoch))


# ---------------------------------------------------------------------------------------------------- package


@dataclass(frozen=True)
class TrainedWith:
    """The settings finished weights were trained with, read from their own files (``None``: not recorded there).

    Attributes:
        imgsz: YOLO's input side (its checkpoint's ``train_args``), the size inference must run at.
        epochs: YOLO's epochs (the same; with a ``--hours`` budget, the count ultralytics fitted to it).
        seed: YOLO's seed.
        seg_epochs: the segmenter run's epochs (:func:`segmenter_epochs`).
    """

    imgsz: int | None = None
    epochs: int | None = None
    seed: int | None = None
    seg_epochs: int | None = None


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is one (``train_args`` may hold ``None`` or a ``[h, w]`` list)."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def trained_with(yolo_weights: Path | None, segmenter_ckpt: Path | None) -> TrainedWith:
    """What the YOLO weights and the segmenter checkpoint say they were trained with (a missing file says nothing).

    Raises:
        ValueError: a file that is there is not a readable checkpoint.
    """
    args: dict[str, Any] = {}
    if yolo_weights is not None and yolo_weights.is_file():
        offline_ultralytics()
        args = yolo_checkpoint(yolo_weights).train_args
    seg = None if segmenter_ckpt is None else segmenter_epochs(segmenter_ckpt)
    return TrainedWith(
        imgsz=_whole(args.get("imgsz")),
        epochs=_whole(args.get("epochs")),
        seed=_whole(args.get("seed")),
        seg_epochs=seg,
    )


def package_detector(
    yolo_weights: Path,
    segmenter_ckpt: Path | None,
    out: Path,
    *,
    imgsz: int,
    conf: float = 0.25,
    iou: float = 0.6,
    version: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a detector folder: stripped fp16 ``yolo.pt``, fp16 ``segmenter.pt`` and ``detector.json``.

    Returns:
        The sidecar path.
    """
    offline_ultralytics()
    out.mkdir(parents=True, exist_ok=True)
    yolo_dst = out / YOLO_FILE
    if yolo_weights.resolve() != yolo_dst.resolve():
        shutil.copyfile(yolo_weights, yolo_dst)
    names = yolo_strip(yolo_dst)
    seg_name: str | None = None
    if segmenter_ckpt is not None:
        seg_state = _segmenter_state(segmenter_ckpt)
        seg_state["state_dict"] = {
            k: v.half() if v.is_floating_point() else v for k, v in dict(seg_state["state_dict"]).items()
        }
        seg_name = SEGMENTER_FILE
        torch.save({"segmenter": seg_state}, out / seg_name)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
    settings = DetectorSettings(
        version=version or f"detector-{stamp}",
        imgsz=imgsz,
        conf=conf,
        iou=iou,
        names=names,
        yolo_file=YOLO_FILE,
        yolo_sha256=sha256_file(yolo_dst),
        segmenter_file=seg_name,
        segmenter_sha256=None if seg_name is None else sha256_file(out / seg_name),
        extra=dict(extra or {}),
    )
    sidecar = out / SIDECAR
    sidecar.write_text(json.dumps(settings.to_dict(), indent=2) + "\n", encoding="utf-8")
    return sidecar
