"""Train the coin embedder by metric learning (sub-centre ArcFace), validating on held-out designs every epoch.

Classes are designs: a synthetic family's shared obverse is one class for all of its types, and each real
denomination (both sides mixed) is one class. A design is named within its mint (``mint<seed>/t0012-rev``), so
data sets of several mints never merge two coins that only share a catalogue number. Synthetic families picked by
:func:`is_heldout_family` are never trained on; they and the real test crops (split by source photo) give
Recall@1/5 after every epoch.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pytorch_metric_learning import losses, miners
from torch.utils.data import DataLoader, Dataset, Sampler

from models.embedder import (
    Embedder,
    EmbedNet,
    Preprocessing,
    build_network,
    checkpoint_dict,
    prepare_image,
    save_checkpoint,
    to_tensor,
)
from models.train.crops_data import CropRecord, read_mint, read_real_crops, read_synth_crops, split_heldout
from models.train.loop import LoopParts, fit
from models.types import FloatArray, UInt8Array

# ----------------------------------------------------------------------------------------------- augmentation


def _glare(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    sigma = rng.uniform(0.06, 0.25) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return img + blob[..., None] * rng.uniform(60, 200)


def augment_crop(image: UInt8Array, rng: np.random.Generator, size: int) -> UInt8Array:
    """Webcam-like random distortion of one coin crop.

    Rotation by any angle, a little zoom/shift/tilt (detector slack, camera tilt), white balance,
    brightness/contrast/gamma, a glare spot, blur or low resolution, sensor noise and JPEG artefacts.

    Args:
        image: ``(H, W, 3)`` uint8 BGR crop, the coin roughly filling it.
        rng: random source.
        size: output side.

    Returns:
        ``(size, size, 3)`` uint8 BGR.
    """
    src: np.ndarray = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = src.shape[:2]
    scale = size / max(h, w) * rng.uniform(0.92, 1.06)
    m: np.ndarray = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), float(rng.uniform(0, 360)), scale)
    m[:, 2] += np.array([size / 2.0 - w / 2.0, size / 2.0 - h / 2.0]) + rng.normal(0, 0.025 * size, 2)
    if rng.random() < 0.4:  # tilt: squash along a random axis around the centre
        a = rng.uniform(0, np.pi)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        s = r @ np.diag([rng.uniform(0.88, 1.0), 1.0]) @ r.T
        c = np.array([size / 2.0, size / 2.0])
        m = np.hstack([s @ m[:, :2], (s @ (m[:, 2] - c) + c)[:, None]])
    out = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    coin = out.any(axis=2)
    f: np.ndarray = out.astype(np.float32)
    f *= rng.uniform(0.85, 1.15, 3).astype(np.float32)  # white balance
    if rng.random() < 0.1:
        f[:] = f.mean(axis=2, keepdims=True)
    f = f * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)  # contrast, brightness
    f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** rng.uniform(0.75, 1.35)  # gamma
    if rng.random() < 0.3:
        f = _glare(f, rng)
    f = np.clip(f, 0, 255)
    roll = rng.random()
    if roll < 0.3:
        f = cv2.GaussianBlur(f, (0, 0), float(rng.uniform(0.4, 1.4)))
    elif roll < 0.5:
        k = float(rng.uniform(0.4, 0.8))
        small = cv2.resize(f, (max(8, int(size * k)),) * 2, interpolation=cv2.INTER_AREA)
        f = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        f = f + rng.normal(0, rng.uniform(2, 9), f.shape).astype(np.float32)
    u8 = np.clip(f, 0, 255).astype(np.uint8)
    u8[~coin] = 0
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 92))])
        if ok:
            u8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.asarray(u8, np.uint8)


# ----------------------------------------------------------------------------------------------- data


def read_image(path: Path) -> UInt8Array:
    """Read a BGR image or raise ``ValueError`` naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return np.asarray(img, np.uint8)


class CropDataset(Dataset[tuple[torch.Tensor, int]]):
    """Augmented training crops; items are addressed by ``(index, augmentation seed)`` pairs."""

    def __init__(self, records: Sequence[CropRecord], labels: Sequence[int], prep: Preprocessing) -> None:
        self.records = list(records)
        self.labels = list(labels)
        self.prep = prep

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        i, seed = key
        rng = np.random.default_rng(seed)
        img = read_image(self.records[i].path)
        aug = augment_crop(img, rng, self.prep.input_size)
        return to_tensor([prepare_image(aug, self.prep)], self.prep)[0], self.labels[i]


class ClassBalancedBatches(Sampler[list[tuple[int, int]]]):
    """Batches of ``classes_per_batch`` classes × ``m`` images, deterministic per ``(seed, epoch)``.

    Real classes are drawn ``real_weight`` times as often as a synthetic class.
    """

    def __init__(
        self,
        labels: Sequence[int],
        is_real: Sequence[bool],
        *,
        batch_size: int,
        m: int,
        batches: int,
        seed: int,
        real_weight: float = 4.0,
    ) -> None:
        self.by_class: dict[int, list[int]] = defaultdict(list)
        for i, y in enumerate(labels):
            self.by_class[y].append(i)
        self.classes = np.array(sorted(self.by_class))
        real = {y for y, r in zip(labels, is_real, strict=True) if r}
        w = np.array([real_weight if c in real else 1.0 for c in self.classes])
        self.p = w / w.sum()
        self.m = m
        self.k = max(2, batch_size // m)
        self.n_batches = batches
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        k = min(self.k, len(self.classes))
        for _ in range(self.n_batches):
            batch = []
            for c in rng.choice(self.classes, size=k, replace=False, p=self.p):
                members = self.by_class[int(c)]
                picks = rng.choice(len(members), size=self.m, replace=len(members) < self.m)
                batch += [(members[j], int(rng.integers(1 << 62))) for j in picks]
            yield batch


# ----------------------------------------------------------------------------------------------- metrics


def recall_at_k(
    queries: FloatArray,
    query_labels: Sequence[str],
    refs: FloatArray,
    ref_labels: Sequence[str],
    ks: Sequence[int] = (1, 5),
) -> tuple[dict[int, float], list[list[str]]]:
    """Recall@k of label retrieval with per-label aggregation (a label's score is its best reference).

    Args:
        queries: ``(q, d)`` unit vectors.
        query_labels: ``q`` true labels.
        refs: ``(r, d)`` unit vectors.
        ref_labels: ``r`` labels.
        ks: the ``k`` values.

    Returns:
        ``{k: recall}`` and, per query, the labels ranked best first (at most ``max(ks)``).
    """
    names = sorted(set(ref_labels))
    col = {n: j for j, n in enumerate(names)}
    sims = queries @ refs.T
    per = np.full((len(queries), len(names)), -np.inf, np.float32)
    ref_cols = np.array([col[x] for x in ref_labels])
    for j in range(len(names)):
        sel = ref_cols == j
        if sel.any():
            per[:, j] = sims[:, sel].max(axis=1)
    kmax = min(max(ks), len(names))
    top = np.argsort(-per, axis=1)[:, :kmax]
    ranked = [[names[j] for j in row] for row in top]
    rec = {k: float(np.mean([q in r[:k] for q, r in zip(query_labels, ranked, strict=True)])) for k in ks}
    return rec, ranked


def _spread_over_groups(records: Sequence[CropRecord], n: int) -> list[CropRecord]:
    """Up to ``n`` records taken round-robin over their groups (different cups or photos first)."""
    by_group: dict[str, list[CropRecord]] = defaultdict(list)
    for r in records:
        by_group[r.group].append(r)
    queues = [by_group[g] for g in sorted(by_group)]
    out: list[CropRecord] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in queues):
        out += [q[depth] for q in queues if depth < len(q)][: n - len(out)]
        depth += 1
    return out


def enrol_query_split(
    records: Sequence[CropRecord], per_design: int = 5, max_queries: int | None = None, seed: int = 0
) -> tuple[list[CropRecord], list[CropRecord]]:
    """Open-set split into ``(references, queries)``.

    The references are ``per_design`` whole crops of each ``(type, side)``, from different cups or photos where
    possible; every other crop is a query (a random ``max_queries`` of them when given).
    """
    by_key: dict[tuple[str, str], list[CropRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: str(r.path)):
        by_key[(r.type_id, r.side.value if r.side else "")].append(r)
    refs, queries = [], []
    for _, rs in sorted(by_key.items()):
        whole = [r for r in rs if not r.partial]
        pool = whole if len(whole) >= per_design else rs
        chosen = _spread_over_groups(pool, per_design)
        refs += chosen
        ids = {id(r) for r in chosen}
        queries += [r for r in rs if id(r) not in ids]
    if max_queries is not None and len(queries) > max_queries:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(queries), size=max_queries, replace=False))
        queries = [queries[i] for i in pick]
    return refs, queries


class ImageCache:
    """Prepared (resized, masked) validation images, read once."""

    def __init__(self, prep: Preprocessing) -> None:
        self.prep = prep
        self._cache: dict[Path, UInt8Array] = {}

    def get(self, path: Path) -> UInt8Array:
        """The crop at ``path`` resized to the input size (BGR)."""
        if path not in self._cache:
            img = read_image(path)
            s = self.prep.input_size
            self._cache[path] = np.asarray(cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA), np.uint8)
        return self._cache[path]


def embed_records(embedder: Embedder, records: Sequence[CropRecord], cache: ImageCache | None = None) -> FloatArray:
    """Embed crop files: ``(n, d)`` float32."""
    images = [cache.get(r.path) if cache is not None else read_image(r.path) for r in records]
    return embedder.embed(images, batch_size=64)


# ----------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class EmbedTrainConfig:
    """Everything that determines an embedder training run (saved into the checkpoint)."""

    data: tuple[str, ...] = ()
    real: str | None = None
    init: str | None = None
    out: str = "embedder.pt"
    arch: str = "mobilenetv2_100"
    embed_dim: int = 128
    input_size: int = 128
    rotations: int = 4
    epochs: int = 6
    batches_per_epoch: int = 100
    batch_size: int = 64
    m_per_class: int = 4
    real_weight: float = 4.0
    lr: float = 2e-3
    backbone_lr: float = 5e-4
    weight_decay: float = 1e-4
    margin: float = 0.25
    scale: float = 30.0
    sub_centers: int = 3
    triplet_weight: float = 0.0
    freeze_blocks: int = 3
    holdout_fraction: float = 0.2
    val_queries: int = 500
    val_real: int = 400
    seed: int = 0
    threads: int = 1
    workers: int = 1
    max_minutes: float | None = None

    def state_file(self) -> Path:
        """The resumable state written after every epoch, beside ``out``."""
        out = Path(self.out)
        return out.with_name(out.stem + ".state")


@dataclass
class TrainData:
    """Records of one run: training crops with class indices, and the validation sets."""

    train: list[CropRecord]
    labels: list[int]
    label_names: list[str]
    val_synth: list[CropRecord] = field(default_factory=list)
    val_real_refs: list[CropRecord] = field(default_factory=list)
    val_real_queries: list[CropRecord] = field(default_factory=list)
    mint_seeds: list[int] = field(default_factory=list)


def _subsample(records: list[CropRecord], n: int, seed: int) -> list[CropRecord]:
    if len(records) <= n:
        return records
    rng = np.random.default_rng(seed)
    return [records[i] for i in np.sort(rng.choice(len(records), size=n, replace=False))]


def load_train_data(cfg: EmbedTrainConfig) -> TrainData:
    """Read every data source named by ``cfg`` and split it into training and validation sets.

    Raises:
        FileNotFoundError: a data folder is missing.
        ValueError: no training crops at all.
    """
    train: list[CropRecord] = []
    val_synth: list[CropRecord] = []
    seeds = []
    for folder in cfg.data:
        mint = read_mint(folder)
        if "seed" in mint:
            seeds.append(int(mint["seed"]))
        # design ids ("t0012-rev", "f003-obv") are numbered within a mint: another mint's t0012 is another coin
        mint_key = f"mint{int(mint['seed'])}" if "seed" in mint else str(Path(folder).resolve())
        recs = [replace(r, label=f"{mint_key}/{r.label}") for r in read_synth_crops(folder)]
        tr, held = split_heldout(recs, cfg.holdout_fraction)
        train += tr
        val_synth += held
    real_refs: list[CropRecord] = []
    real_queries: list[CropRecord] = []
    if cfg.real is not None:
        real_train = read_real_crops(cfg.real, "train")
        train += real_train
        real_refs = _subsample([r for r in real_train if r.family in ("euro", "won")], cfg.val_real, cfg.seed)
        real_queries = _subsample(
            [r for r in read_real_crops(cfg.real, "test") if r.family in ("euro", "won")], cfg.val_real, cfg.seed + 1
        )
    if not train:
        raise ValueError("no training crops: give --data with a synthetic data set and/or --real")
    names = sorted({r.label for r in train})
    index = {n: i for i, n in enumerate(names)}
    return TrainData(
        train=train,
        labels=[index[r.label] for r in train],
        label_names=names,
        val_synth=val_synth,
        val_real_refs=real_refs,
        val_real_queries=real_queries,
        mint_seeds=seeds,
    )


def validate_embedder(
    embedder: Embedder, data: TrainData, cfg: EmbedTrainConfig, cache: ImageCache
) -> dict[str, float]:
    """Recall@1/5 on held-out synthetic designs (design-level) and on real test crops (denomination)."""
    out: dict[str, float] = {}
    if data.val_synth:
        refs, queries = enrol_query_split(data.val_synth, 5, cfg.val_queries, cfg.seed)
        if refs and queries:
            rec, _ = recall_at_k(
                embed_records(embedder, queries, cache),
                [r.label for r in queries],
                embed_records(embedder, refs, cache),
                [r.label for r in refs],
            )
            out["synth_R@1"], out["synth_R@5"] = rec[1], rec[5]
    for cur in ("euro", "won"):
        refs = [r for r in data.val_real_refs if r.family == cur]
        queries = [r for r in data.val_real_queries if r.family == cur]
        if refs and queries:
            rec, _ = recall_at_k(
                embed_records(embedder, queries, cache),
                [r.label for r in queries],
                embed_records(embedder, refs, cache),
                [r.label for r in refs],
            )
            out[f"{cur}_R@1"] = rec[1]
    return out


def _freeze(net: EmbedNet, n_blocks: int, frozen_bn: bool) -> list[torch.nn.Module]:
    """Freeze the stem and the first ``n_blocks`` blocks; return the modules to keep in eval mode."""
    keep_eval: list[torch.nn.Module] = []
    b = net.backbone
    early: list[torch.nn.Module] = [m for m in (getattr(b, "conv_stem", None), getattr(b, "bn1", None)) if m]
    blocks = getattr(b, "blocks", None)
    if n_blocks > 0 and blocks is not None:
        early += list(blocks[:n_blocks])
        for mod in early:
            for p in mod.parameters():
                p.requires_grad_(False)
        keep_eval += early
    if frozen_bn:
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eval()
                for p in mod.parameters():
                    p.requires_grad_(False)
                keep_eval.append(mod)
    return keep_eval


def train_embedder(cfg: EmbedTrainConfig, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train (or continue training) an embedder and write its checkpoint to ``cfg.out`` after every epoch.

    Args:
        cfg: the run's settings.
        resume: continue from ``cfg.state_file()`` when it exists.
        progress: tqdm bars and per-epoch lines on stderr.

    Returns:
        ``{"history": [...per-epoch metrics...], "before": {...}, "out": path, "version": str}``.
    """
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    data = load_train_data(cfg)
    prep = Preprocessing(input_size=cfg.input_size, rotations=cfg.rotations)
    net = build_network(cfg.arch, cfg.embed_dim, cfg.init)
    keep_eval = _freeze(net, cfg.freeze_blocks if cfg.init else 0, frozen_bn=cfg.init is not None)
    n_classes = len(data.label_names)
    loss_fn = losses.SubCenterArcFaceLoss(
        num_classes=n_classes,
        embedding_size=cfg.embed_dim,
        margin=math.degrees(cfg.margin),
        scale=cfg.scale,
        sub_centers=cfg.sub_centers,
    )
    triplet = losses.TripletMarginLoss(margin=0.1) if cfg.triplet_weight > 0 else None
    miner = miners.MultiSimilarityMiner(epsilon=0.1) if triplet is not None else None
    head = [*net.pool.parameters(), *net.proj.parameters()]
    head_ids = {id(p) for p in head}
    backbone = [p for p in net.parameters() if p.requires_grad and id(p) not in head_ids]
    optimizer = torch.optim.AdamW(
        [
            {"params": backbone, "lr": cfg.backbone_lr},
            {"params": head, "lr": cfg.lr},
            {"params": list(loss_fn.parameters()), "lr": cfg.lr * 5, "weight_decay": 0.0},
        ],
        weight_decay=cfg.weight_decay,
    )
    total_steps = cfg.epochs * cfg.batches_per_epoch
    warm = max(1, min(100, total_steps // 10))

    def lr_factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total_steps - warm)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    dataset = CropDataset(data.train, data.labels, prep)
    sampler = ClassBalancedBatches(
        data.labels,
        [r.source == "real" for r in data.train],
        batch_size=cfg.batch_size,
        m=cfg.m_per_class,
        batches=cfg.batches_per_epoch,
        seed=cfg.seed,
        real_weight=cfg.real_weight,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        persistent_workers=False,
        worker_init_fn=_worker_init,
    )

    def batches(epoch: int) -> DataLoader[tuple[torch.Tensor, int]]:
        sampler.epoch = epoch
        return loader

    def train_mode() -> None:
        net.train()
        loss_fn.train()
        for mod in keep_eval:
            mod.eval()

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        emb = net(x)
        loss = loss_fn(emb, y)
        if triplet is not None and miner is not None:
            loss = loss + cfg.triplet_weight * triplet(emb, y, miner(emb, y))
        return torch.as_tensor(loss)

    cache = ImageCache(prep)
    train_args = {
        **asdict(cfg),
        "n_classes": n_classes,
        "n_train_crops": len(data.train),
        "mint_seeds": data.mint_seeds,
        "heldout_rule": "models.train.crops_data.is_heldout_family(family, holdout_fraction)",
    }
    out = Path(cfg.out)

    def current_embedder() -> Embedder:
        ckpt = checkpoint_dict(net, cfg.arch, cfg.embed_dim, prep, train_args)
        return Embedder.from_checkpoint(ckpt)

    def validate(epoch: int) -> dict[str, float]:
        emb = current_embedder()
        net.eval()
        return validate_embedder(emb, data, cfg, cache)

    history_file = out.with_name(out.stem + ".history.json")
    before: dict[str, float] = {}
    if resume and history_file.is_file():
        before = dict(json.loads(history_file.read_text()).get("before", {}))
    elif not (resume and cfg.state_file().is_file()):
        net.eval()
        before = validate(-1)
        if progress:
            print(f"before training: {_fmt(before)}", file=sys.stderr, flush=True)

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        ckpt = checkpoint_dict(net, cfg.arch, cfg.embed_dim, prep, {**train_args, "epochs_done": epoch + 1})
        save_checkpoint(ckpt, out)
        hist = {"before": before, "history": [*state_history, metrics], "version": ckpt["version"]}
        state_history.append(metrics)
        history_file.write_text(json.dumps(hist, indent=1))
        if progress:
            print(f"epoch {epoch + 1}: {_fmt(metrics)} -> {out}", file=sys.stderr, flush=True)

    state_history: list[dict[str, float]] = []
    if resume and history_file.is_file():
        state_history = list(json.loads(history_file.read_text()).get("history", []))
    t0 = time.perf_counter()
    state = fit(
        LoopParts({"net": net, "loss": loss_fn}, optimizer, scheduler, train_mode),
        batches,
        step,
        epochs=cfg.epochs,
        state_file=cfg.state_file(),
        resume=resume,
        validate=validate,
        on_epoch_end=on_epoch_end,
        max_seconds=cfg.max_minutes * 60 if cfg.max_minutes else None,
        extra={"label_names": data.label_names, "config": asdict(cfg)},
        progress=progress,
    )
    final = Embedder.load(out) if out.is_file() else current_embedder()
    return {
        "history": state.history,
        "before": before,
        "out": str(out),
        "version": final.version,
        "seconds": time.perf_counter() - t0,
        "epochs_done": state.epoch,
    }


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def config_from_args(**kwargs: Any) -> EmbedTrainConfig:
    """Build a config from keyword arguments, ignoring ``None`` values (defaults stay)."""
    cfg = EmbedTrainConfig()
    return replace(cfg, **{k: v for k, v in kwargs.items() if v is not None})
