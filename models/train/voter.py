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
   Without a calibration data set, the ``val`` split's cups are divided in two (:func:`split_val_cups`): one half
   stops the boosting, the other certifies the threshold, so no cup both chose the voter and certifies it.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.risk import DEFAULT_DELTA, DEFAULT_TARGET, ThresholdChoice, choose_threshold
from models.adapter import EmbeddingAdapter, adapted_gallery
from models.bundle import (
    CAL_MINTS,
    DATA_MINTS,
    ENROL_PER_SIDE,
    MIN_COINS,
    REAL_CUPS,
    REAL_WEIGHT,
    Bundle,
    Preprocess,
)
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
        data_cal: calibration data set (another mint: a different seed); ``None`` certifies on half of the val
            splits' cups, kept apart from the half that stops the boosting early (:func:`split_val_cups`).
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
    data_dir: Path,
    embedder: Embedder,
    cfg: TrainConfig,
    detector: Detector | None,
    progress: bool,
    adapter: EmbeddingAdapter | None = None,
) -> tuple[CupCache, GalleryView, Mint]:
    """Cache a data set's cups and build its gallery view.

    The cache file is named by the data set's manifest hash as well as its folder's name: sets of two seeds are
    both often called ``train``, and one's embeddings must never stand for the other's cups.

    ``adapter`` (a bundle's fine-tuned output layer, :mod:`models.adapter`) maps the cups' embeddings and the
    gallery as the station's pipeline maps them; the cache keeps the bare embedder's, which the layer maps exactly.
    """
    gallery, diameters = dataset_gallery(data_dir, embedder, cfg.cache, cfg.enrol_per_side, progress=progress)
    if adapter is not None:
        gallery = adapted_gallery(gallery, adapter)
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
    if adapter is not None:
        cache = replace(cache, embeddings=adapter.apply(cache.embeddings), embedder_version=adapter.version)
    return cache, view, mint


_SetPairs = tuple[CupCache, GalleryView, list[Pair]]
"""One training data set's cups (with its virtual cups), its gallery view and the pairs drawn from it."""


def mint_identity(data: Path) -> dict[str, Any]:
    """What a synthetic data set's mint is, as a bundle records it: ``{"path", "seed", "n_types", "sha256"}``
    (the data set's folder, ``mint.json``'s seed and number of types, and that file's sha256).

    Two data sets rendered from one mint hold the same coin types: cups of one certify nothing about a voter that
    learnt from the other.

    Raises:
        FileNotFoundError: the data set has no readable ``mint.json``.
    """
    file = data / "mint.json"
    try:
        doc = json.loads(file.read_text())
        seed, n_types = int(doc["seed"]), int(doc["n_types"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FileNotFoundError(
            f"{file} is missing or unreadable ({err}); render the data set with cupcheck synth"
        ) from err
    return {"path": str(data), "seed": seed, "n_types": n_types, "sha256": sha256_file(file)}


def same_mint(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two recorded mints (:func:`mint_identity`) are one: the same ``mint.json``, or the same seed whatever
    the number of types.

    A mint draws its types one after another from its seed, so ``--types 8`` and ``--types 9`` of one seed share
    eight types (seed 103: 139 of the 140 designs of 120 and 121 types): cups of one show the coins of the other.
    """
    if a.get("sha256") and a.get("sha256") == b.get("sha256"):
        return True
    return a.get("seed") is not None and a.get("seed") == b.get("seed")


def _mint_words(cal: dict[str, Any], train: dict[str, Any]) -> str:
    """``seed 41, 6 types``; ``seed 3, 9 and 8 types`` when the two renderings drew another number of types."""
    if cal.get("n_types") == train.get("n_types"):
        return f"seed {cal.get('seed')}, {cal.get('n_types')} types"
    return f"seed {cal.get('seed')}, {cal.get('n_types')} and {train.get('n_types')} types"


def check_calibration_apart(trained: Sequence[dict[str, Any]], calibration: Sequence[dict[str, Any]]) -> None:
    """Refuse calibration data rendered from the mint of a training data set.

    Raises:
        ValueError: a calibration set shares its mint with a training set (named, with the mint).
    """
    for cal in calibration:
        for train in trained:
            if same_mint(cal, train):
                raise ValueError(
                    f"the calibration data {cal['path']} was rendered from the same mint as the training data "
                    f"{train.get('path', 'recorded in the bundle')} ({_mint_words(cal, train)}): its cups would "
                    "certify the threshold on coin types the voter learnt (one seed draws the same types whatever "
                    "--types says); render calibration cups with another --seed (cupcheck synth)"
                )


def split_val_cups(pairs: Sequence[Pair], seed: int) -> tuple[list[Pair], list[Pair]]:
    """Divide a data set's val pairs by cup: ``(stop, calibration)``, every pair of a cup on one side.

    A threshold certified on the cups that chose the number of boosting rounds is certified on cups the voter was
    fitted to; the half kept apart for calibration was seen by nothing. The halves are drawn at random (``seed``),
    the calibration half the smaller when the cups are odd.
    """
    cups = sorted({p.cup for p in pairs})
    rng = np.random.default_rng([seed, 3])
    held = {int(c) for c in rng.permutation(cups)[: len(cups) // 2]}
    return [p for p in pairs if p.cup not in held], [p for p in pairs if p.cup in held]


def train_verdict(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Train pooler and voter, choose the threshold, and write the bundle into ``cfg.out``.

    Raises:
        FileNotFoundError: a data set lacks its ``mint.json``, or a model file is missing.
        ValueError: the calibration data set was rendered from a training data set's mint, or there are no
            calibration cups.
    """
    trained_mints = [mint_identity(d) for d in (cfg.data, *cfg.data_more)]
    cal_mints = [] if cfg.data_cal is None else [mint_identity(cfg.data_cal)]
    check_calibration_apart(trained_mints, cal_mints)
    embedder = Embedder.load(cfg.embedder, threads=1)
    detector = None
    if cfg.instances == "detector":
        from models.detector import Detector

        detector = Detector.load(cfg.detector)
    sets = [load_split(d, embedder, cfg, detector, progress) for d in (cfg.data, *cfg.data_more)]
    pure_train = [pure_train_cups(c) for c, _, _ in sets]
    train_parts: list[_SetPairs] = []
    val_parts: list[_SetPairs] = []
    held_parts: list[_SetPairs] = []  # without --data-cal: the val cups kept apart to certify the threshold
    n_train_pairs = n_virtual_pairs = 0
    for k, (cache, view, mint) in enumerate(sets):
        val_pairs = make_pairs(cache, mint, seed=cfg.seed + 1, splits=("val",))
        if cfg.data_cal is None:
            val_pairs, held = split_val_cups(val_pairs, cfg.seed + k)
            held_parts.append((cache, view, held))
        val_parts.append((cache, view, val_pairs))
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
        if not any(pairs for _, _, pairs in held_parts):
            raise ValueError(
                "no calibration data: give --data-cal, or a data set whose val split holds at least two cups "
                "(half stops the boosting, half certifies the threshold)"
            )
        cal = table_of(held_parts, pooler, "features (cal)")
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
        "cal_source": calibration_source(cfg, val_parts, held_parts),
        DATA_MINTS: trained_mints,
        CAL_MINTS: cal_mints,
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


def calibration_source(cfg: TrainConfig, stop_parts: Sequence[_SetPairs], held_parts: Sequence[_SetPairs]) -> str:
    """Where the calibration cups came from, in words (printed by ``cupcheck train voter`` and kept in the
    bundle's training summary as ``cal_source``)."""
    if cfg.data_cal is not None:
        return f"the calibration data set {cfg.data_cal} (its own mint)"
    held = sum(len({p.cup for p in pairs}) for _, _, pairs in held_parts)
    stop = sum(len({p.cup for p in pairs}) for _, _, pairs in stop_parts)
    return (
        f"no --data-cal: {held} cups of the training data's val split, kept apart from the {stop} val cups that "
        "stopped the boosting early; they share the training mint, so the guarantee holds for its coin types only"
    )


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
    instances: str | None = None,
) -> TrainResult:
    """Certify a bundle's threshold again on calibration cups cut by the pipeline as it runs now.

    The guarantee holds for the pipeline that cut the calibration cups. When the detector or the cutting changes
    (weights, thresholds, the auto-scale pass) but the voter does not, the voter's scores on the stored pairs no
    longer describe the station: this re-cuts the calibration data set, re-scores it with the bundle's own pooler
    and voter (nothing is refit), chooses the threshold for the bundle's target and delta, and writes a new bundle
    (new version) with the new calibration pairs. The same holds for a change of the hard rules: ``min_coins``
    certifies the voter again under another fewest number of coins a passing cup shows, with no refit.

    Calibration cups of a mint the voter learnt are refused; where the bundle's training mints cannot be checked
    (recorded folders not on this machine and no mint recorded, as for the shipped bundle), the new bundle's summary
    says so under :data:`UNCHECKED_MINTS`, which the command prints as a warning.

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
        instances: how the calibration cups are cut: ``"detector"`` (the bundle's detector, as a station cuts
            them) or ``"gt"`` (their true masks); ``None``: as the bundle's calibration cups were. A bundle
            calibrated on true masks is certified for a station's detector only by ``"detector"``.

    Raises:
        FileNotFoundError: the data set or a model file is missing.
        ValueError: the data set lacks the template signatures the voter needs, it was rendered from a training
            mint of the bundle, ``min_coins < 1``, ``delta`` outside ``(0, 1)``, ``instances`` is neither cut, or
            the bundle carries a station's fine-tuned embedder layer or station references (from the nightly
            retrain, whose calibration cups were the station's own: recalibrate the bundle it was retrained from).
        BundleError: the bundle was trained on another feature set (train the voter again instead).
    """
    import shutil

    from models.bundle import load_bundle
    from models.voter import check_min_coins

    if min_coins is not None:
        check_min_coins(min_coins)
    if delta is not None and not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if instances is not None and instances not in ("gt", "detector"):
        raise ValueError(f"instances must be 'gt' or 'detector', got {instances!r}")
    bundle = load_bundle(bundle_path)
    bundle.check_feature_set()
    check_recalibratable(bundle)
    sets = [Path(data_cal)] if isinstance(data_cal, (str, Path)) else [Path(d) for d in data_cal]
    if not sets:
        raise FileNotFoundError("no calibration data set given")
    cal_mints = [mint_identity(d) for d in sets]
    trained = recorded_training_mints(bundle.train)
    check_calibration_apart(trained.mints, cal_mints)
    emb_file = bundle.path(bundle.embedder_file)
    embedder = Embedder.load(emb_file if emb_file is not None else EMBEDDER_DEFAULT, threads=1)
    if instances is None:
        instances = calibration_instances(bundle.train)
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
        "cal_source": f"recalibrated on {', '.join(map(str, sets))} (cut: {instances})",
        CAL_MINTS: cal_mints,
        "recalibrated_from": previous,
        "calibration_instances": instances,
        "calibration_detector": detector.version if detector is not None else "",
    }
    # the caveat travels with the certificate it weakens (and a stale one from the bundle recalibrated goes)
    summary.pop(UNCHECKED_MINTS, None)
    if warning := trained.warning(bundle.version or str(bundle.root)):
        summary[UNCHECKED_MINTS] = warning
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


def check_recalibratable(bundle: Bundle) -> None:
    """Refuse a bundle whose station parts synthetic calibration cups cannot stand for.

    The nightly retrain puts a fine-tuned output layer on the embedder (``adapter.npz``) and station references
    (``references.npz``) into its bundle, and certifies it on the station's own labelled cups. Synthetic cups cut
    and scored without those parts would certify another pipeline than the station runs, and their types are not
    the station's, whom the references belong to.

    Raises:
        ValueError: the bundle has an adapter or station references (named, with what to do).
    """
    parts = [
        f"{what} ({name})"
        for what, name in (
            ("a fine-tuned embedder layer", bundle.adapter_file),
            ("station references", bundle.references_file),
        )
        if name
    ]
    if parts:
        origin = bundle.train.get("retrained_from")
        raise ValueError(
            f"bundle {bundle.version or bundle.root} carries {' and '.join(parts)} from the nightly retrain, "
            "certified on the station's own cups, which synthetic calibration cups cannot stand for; recalibrate "
            f"the bundle this one was retrained from{f' ({origin})' if origin else ''}, then retrain "
            "(cupcheck retrain)"
        )


def calibration_instances(train: dict[str, Any]) -> str:
    """How a bundle's calibration cups were cut (``"gt"``: their true masks, ``"detector"``), from its training
    summary: as the last recalibration cut them, else as the voter was trained."""
    recorded = train.get("calibration_instances")
    if recorded in ("gt", "detector"):
        return str(recorded)
    if train.get("calibration_detector"):
        return "detector"
    return str(train.get("instances", "gt"))


@dataclass(frozen=True)
class TrainingMints:
    """What a bundle tells of the mints its voter learnt from (:func:`recorded_training_mints`).

    Attributes:
        mints: each training mint known (:func:`mint_identity` records): recorded in the bundle, or read from a
            recorded training folder found on this machine.
        unchecked: the recorded training folders whose mint is neither recorded nor readable here.
    """

    mints: tuple[dict[str, Any], ...]
    unchecked: tuple[str, ...] = ()

    def warning(self, bundle: str) -> str:
        """Why calibration cups cannot be told apart from the training mints of ``bundle`` (``""``: they can)."""
        if self.unchecked:
            return (
                f"bundle {bundle} was trained on {', '.join(self.unchecked)}, which cannot be read here and whose "
                "mint it does not record: calibration cups of that mint (the same --seed, whatever --types) would "
                "certify the threshold on coin types the voter learnt, and nothing here can tell; recalibrate where "
                "those folders are, or with cups of a seed you know it was not trained on"
            )
        if not self.mints:
            return (
                f"bundle {bundle} records no training data set nor mint: whether the calibration cups show coin "
                "types its voter learnt is unchecked; use cups of a seed you know it was not trained on"
            )
        return ""


def recorded_training_mints(train: dict[str, Any]) -> TrainingMints:
    """The training mints a bundle's summary records (:data:`DATA_MINTS`, also where a recalibration or retrain
    kept its source's summary under another key), and those of its recorded training data sets still readable
    here (a bundle from before the key); a recorded folder with neither is named as unchecked."""
    recorded = [dict(m) for m in _recorded_mint_lists(train) if isinstance(m, dict)]
    data = train.get("data")
    folders = data if isinstance(data, list) else [data] if data else []
    unchecked = []
    for folder in map(str, folders):
        try:
            recorded.append(mint_identity(Path(folder)))
        except FileNotFoundError:
            if not any(m.get("path") == folder and m.get("seed") is not None for m in recorded):
                unchecked.append(folder)
    return TrainingMints(tuple(recorded), tuple(unchecked))


def _recorded_mint_lists(doc: Any) -> list[Any]:
    """Every entry of a :data:`DATA_MINTS` list anywhere in a bundle's training summary (nested summaries too)."""
    if isinstance(doc, dict):
        found = list(doc.get(DATA_MINTS) or []) if isinstance(doc.get(DATA_MINTS), list) else []
        return found + [m for k, v in doc.items() if k != DATA_MINTS for m in _recorded_mint_lists(v)]
    if isinstance(doc, list):
        return [m for v in doc for m in _recorded_mint_lists(v)]
    return []


UNCHECKED_MINTS = "training_mints_unchecked"
"""Key of a recalibrated bundle's training summary: why its calibration cups could not be checked against the
voter's training mints (absent when they were); ``cupcheck train recalibrate`` prints it as a warning."""


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
