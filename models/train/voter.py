"""Train the set pooler and the voter on synthetic cups, then choose the threshold on separate calibration cups.

Steps (``cupcheck train voter --data SYNTH --data-cal SYNTH2 --out DIR``):

1. For each synthetic data set, enrol its mint into a gallery from rendered reference faces
   (:func:`models.train.galleries.reference_gallery`: a few renders per side and type under varied light, toning
   and wear) and record each type's diameter. Types sharing an obverse share its design id, as in the mint.
2. Embed every cup's coins once and cache them (:func:`models.train.cup_cache.cache_cups`, an ``.npz`` per data
   set and embedder version). Coins come either from the data set's ground-truth crops (``instances="gt"``) or
   from the real detector run on the cup image (``instances="detector"``).
3. Build (cup, candidate) pairs (:func:`models.train.pairs.make_pairs`): a pure cup with its own type is correct;
   the same cup with its near-twin, a family member sharing its obverse, or a random type is wrong; contaminated,
   obverse-only, foreign-object and empty cups are wrong for their expected type.
4. Train the gated-attention MIL pooler and then LightGBM on the training pairs (the data set's ``val`` split
   for early stopping); score the calibration pairs and choose the threshold with :mod:`calibration.risk`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.risk import DEFAULT_DELTA, DEFAULT_TARGET, ThresholdChoice, choose_threshold
from models.bundle import ENROL_PER_SIDE, MIN_COINS, REAL_CUPS, REAL_WEIGHT, Bundle, Preprocess
from models.embedder import DEFAULT_WEIGHTS as EMBEDDER_DEFAULT
from models.embedder import Embedder
from models.features import BASE_FEATURES, COIN_FEATURES, EMBEDDING_FEATURES, FEATURES, TEMPLATE_FEATURES
from models.files import sha256_file, write_bytes_atomic
from models.gallery_view import GalleryView
from models.pooling import SetPooler, train_pooler
from models.synth.mint import Mint
from models.train.cup_cache import (
    CupCache,
    cache_cups,
    cache_cups_parallel,
    dataset_sha256,
    pure_train_cups,
    virtual_cups,
)
from models.train.galleries import dataset_gallery, mint_lookalikes, mint_of
from models.train.pairs import Pair, PairTable, make_pairs, pair_table
from models.voter import train_voter

if TYPE_CHECKING:
    from models.detector import Detector

DETECTOR_DEFAULT = Path(__file__).resolve().parents[1] / "weights" / "detector"
"""The shipped detector folder (``models.detector.DEFAULT_DIR``; not imported here to keep ultralytics out)."""


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
    """Cache a data set's cups and build its gallery view.

    The cache file is named by the data set's manifest hash as well as its folder's name: sets of two seeds are
    both often called ``train``, and one's embeddings must never stand for the other's cups.
    """
    gallery, diameters = dataset_gallery(data_dir, embedder, cfg.cache, cfg.enrol_per_side, progress=progress)
    mint = mint_of(data_dir)
    view = GalleryView.from_gallery(gallery, diameters, mint_lookalikes(mint))
    cut = cfg.instances if detector is None else f"{cfg.instances}-{detector.version}"
    tag = f"{data_dir.name}-{dataset_sha256(data_dir)[:12]}-{cut}-{embedder.version}"
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


_SetPairs = tuple[CupCache, GalleryView, list[Pair]]
"""One training data set's cups (with its virtual cups), its gallery view and the pairs drawn from it."""


def train_verdict(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Train pooler and voter, choose the threshold, and write the bundle into ``cfg.out``."""
    embedder = Embedder.load(cfg.embedder, threads=1)
    detector = None
    if cfg.instances == "detector":
        from models.detector import Detector

        detector = Detector.load(cfg.detector)
    sets = [load_split(d, embedder, cfg, detector, progress) for d in (cfg.data, *cfg.data_more)]
    pure_train = [pure_train_cups(c) for c, _, _ in sets]
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
        real_info["real_val_auc"] = round(auc(voter.predict(real_va.columns(names)), real_va.y), 5)
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
    val_auc = auc(voter.predict(va.columns(names)), va.y) if va is not None and len(set(va.y)) == 2 else math.nan
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


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
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


auc = auc
BASE_ONLY = BASE_FEATURES
