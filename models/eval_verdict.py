"""Evaluate the cup verdict on held-out synthetic cups: curves, operating point, baselines.

Real photos and cups of real crops are judged in :mod:`models.eval_real`, the latency in :mod:`models.bench_verdict`.

Every method scores the same (cup, expected type) pairs and gets its own threshold, chosen on the same
calibration cups with the same guarantee (:func:`calibration.risk.choose_threshold`), so the table compares
like with like:

* ``majority vote``: share of coins whose nearest type is the expected one;
* ``summed softmax``: mean over coins of a softmax over the gallery's per-type similarities;
* ``mean embedding``: margin of the expected type for the mean cup embedding;
* ``voter, no pooling``: LightGBM on the per-coin aggregate features only (trained here on the same data);
* ``voter (full)``: the bundle's voter (per-coin features + mean/GeM/attention pooling).

The report breaks the full voter down by cup kind (pure auto-pass rate; contaminated FLAG rate by contaminant
relation; obverse-only, foreign-object, empty FLAG rates; wrong candidates for pure cups) for the test types,
which were enrolled after the voter was trained, and for the training data set's validation cups (types seen in
training).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from calibration.reports import plot_precision_coverage, plot_reliability, reliability_bins
from calibration.risk import (
    PASS_FLOOR,
    ThresholdChoice,
    choose_threshold,
    confidence_text,
    passes,
    precision_coverage_curve,
)
from models.adapter import EmbeddingAdapter
from models.bundle import Bundle, load_bundle
from models.embedder import Embedder
from models.eval_real import (
    check_real_limit,
    evaluate_real,
    evaluate_real_cups,
    real_cups_lines,
    real_ranking,
    real_target_table,
)
from models.eval_turn import TURN_CUPS, evaluate_turning, turning_lines
from models.features import BASE_FEATURES, EMBEDDING_FEATURES, FEATURES
from models.pooling import SetPooler
from models.train.pairs import PairTable, make_pairs, pair_group, pair_table
from models.train.voter import TrainConfig, auc, load_split
from models.voter import Voter, passable, train_voter

TARGETS: tuple[float, ...] = (0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
"""Target precisions at which the full voter's operating point is also reported."""

METHODS: tuple[tuple[str, str], ...] = (
    ("vote", "majority vote"),
    ("softmax", "summed softmax"),
    ("mean_nn", "mean embedding"),
    ("voter_base", "voter, no pooling"),
    ("voter_embed", "voter, no templates"),
    ("voter", "voter (full)"),
)


@dataclass(frozen=True)
class EvalConfig:
    """Arguments of :func:`evaluate`.

    Attributes:
        data: synthetic test data set (a seed used neither for training nor calibration).
        out: report folder.
        bundle: bundle JSON (default shipped).
        data_train: training data set (default: the bundle's); its val split is the "seen types" check and its
            train split trains the no-pooling voter.
        data_cal: calibration data set (default: the bundle's).
        cache: cache folder.
        real: real data root (``…/data/real``) or ``None``.
        max_cups: limit per data set.
        real_limit: at most this many real photos of each kind (single, mixed) per currency.
        cut_workers: processes that cut and embed a data set not yet cached (see ``cache_cups_parallel``).
        turn_cups: cups of the test mint checked as they lie and again after the operator turns the coins a FLAG
            asks to turn first (:mod:`models.eval_turn`); 0 skips the check.
    """

    data: Path
    out: Path
    bundle: Path | None = None
    data_train: Path | None = None
    data_cal: Path | None = None
    cache: Path = Path("/tmp/cupcheck-voter-cache")
    real: Path | None = None
    max_cups: int | None = None
    real_limit: int | None = None
    cut_workers: int = 1
    turn_cups: int = TURN_CUPS


@dataclass
class MethodResult:
    """One method on the test pairs at its own certified threshold."""

    name: str
    label: str
    choice: ThresholdChoice
    scores: np.ndarray
    test_precision: float
    test_coverage: float
    test_accepted: int
    test_errors: int
    auc: float
    precision_at: dict[float, float] = field(default_factory=dict)


COVERAGES: tuple[float, ...] = (0.1, 0.3, 0.5)
"""Coverages at which every method's test precision is also reported (no guarantee, for comparison)."""


def breakdown_threshold(
    scores: np.ndarray, correct: np.ndarray, choice: ThresholdChoice, delta: float
) -> tuple[float, str]:
    """The threshold the by-kind breakdown is shown at, and how it was chosen.

    The certified threshold when there is one; else the one certified at the highest of :data:`TARGETS` below
    ``choice.target`` that certifies; else the (uncertified) score that passes half of the correct calibration
    pairs the hard rules let through (``p > 0``), so the table still shows where the errors come from. Each is
    raised to :data:`~calibration.risk.PASS_FLOOR` as the station raises it (:attr:`ThresholdChoice.applied`): no
    station passes a cup under it, so neither does the table.
    """
    if choice.can_pass:
        return choice.applied, "certified threshold" + _floor_words(choice.threshold)
    for t in sorted((t for t in TARGETS if t < choice.target), reverse=True):
        lower = choose_threshold(scores, correct, target=t, delta=delta)
        if lower.can_pass:
            label = f"threshold certified at the highest target that certifies, {t:.3g}"
            return lower.applied, label + _floor_words(lower.threshold)
    pos = np.sort(scores[np.asarray(correct, bool) & (scores > 0)])[::-1]
    label = "uncertified threshold passing half of the correct calibration pairs the rules let through"
    if not pos.size:
        return math.inf, label
    half = float(pos[len(pos) // 2])
    return max(half, PASS_FLOOR), label + _floor_words(half)


def _floor_words(threshold: float) -> str:
    """``", 0.0779 raised to the PASS floor 0.5"`` when ``threshold`` lies under the floor (``""``: it does not)."""
    return f", {threshold:.4g} raised to the PASS floor {PASS_FLOOR}" if threshold < PASS_FLOOR else ""


def threshold_text(choice: ThresholdChoice) -> str:
    """A threshold as the report shows it: ``0.9696``; ``0.0779 (0.5 applied)`` under the PASS floor, which is
    what the station holds a cup to; ``never PASS``."""
    if not choice.can_pass:
        return "never PASS"
    return f"{choice.threshold:.4f}" + (f" ({choice.applied:g} applied)" if choice.floored else "")


def precision_at_coverage(scores: np.ndarray, y: np.ndarray, coverage: float) -> float:
    """Test precision of the strictest threshold whose coverage reaches ``coverage`` (``nan`` if no PASS does)."""
    curve = precision_coverage_curve(scores, y).passing()
    idx = np.nonzero(curve.coverage >= coverage)[0]
    return float(curve.precision[idx[0]]) if idx.size else math.nan


@dataclass
class EvalResult:
    """Everything the report shows."""

    methods: list[MethodResult]
    breakdown: dict[str, dict[str, Any]]
    seen_breakdown: dict[str, dict[str, Any]]
    real: dict[str, Any] = field(default_factory=dict)
    real_cups: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    operating_point: str = ""
    turning: dict[str, Any] = field(default_factory=dict)
    held_out: HeldOut = field(default_factory=lambda: HeldOut(False))
    reliability: dict[str, Any] = field(default_factory=dict)


def _method_scores(table: PairTable, voter: Voter, baselines: dict[str, Voter]) -> dict[str, np.ndarray]:
    return {
        "vote": table.extra["vote"],
        "softmax": table.extra["softmax"],
        "mean_nn": table.extra["mean_nn"],
        **{name: v.predict(table.columns(v.feature_names)) for name, v in baselines.items()},
        "voter": voter.predict(table.columns(voter.feature_names)),
    }


PROVABLE = "pure, the hard rules let it pass (every coin on a face only its type shows, enough coins)"
"""The pure cups the hard rules let through (no coin on a shared obverse, enough coins): the auto-pass any method
could reach."""


def breakdown(table: PairTable, accepted: np.ndarray, min_coins: int = 1) -> dict[str, dict[str, Any]]:
    """PASS / FLAG rates per kind of pair (``min_coins``: the voter's hard rule on the fewest coins).

    Returns:
        Group name → ``{"n", "pass", "rate", "what"}`` where ``rate`` is the auto-pass rate for pure cups at
        their own type and the FLAG rate for every other group.
    """
    groups: dict[str, list[int]] = {}
    provable = passable(table.x, FEATURES, min_coins)
    for k, p in enumerate(table.pairs):
        if p.relation == "true" and p.kind == "pure" and provable[k]:
            groups.setdefault(PROVABLE, []).append(k)
        groups.setdefault(pair_group(p), []).append(k)
    out = {}
    for key in sorted(groups):
        idx = np.asarray(groups[key])
        n_pass = int(accepted[idx].sum())
        if key in ("pure", PROVABLE):
            out[key] = {"n": len(idx), "pass": n_pass, "rate": n_pass / len(idx), "what": "auto-pass rate"}
        else:
            out[key] = {"n": len(idx), "pass": n_pass, "rate": 1 - n_pass / len(idx), "what": "flagged rate"}
    return out


def _at_threshold(scores: np.ndarray, y: np.ndarray, choice: ThresholdChoice) -> tuple[float, float, int, int]:
    """Test precision, coverage, PASSes and wrong PASSes at the threshold the station applies for ``choice``."""
    acc = passes(scores, choice.applied) if choice.can_pass else np.zeros(len(scores), bool)
    n_acc = int(acc.sum())
    n_err = int((acc & ~y).sum())
    prec = (n_acc - n_err) / n_acc if n_acc else math.nan
    cov = (n_acc - n_err) / max(1, int(y.sum()))
    return prec, cov, n_acc, n_err


def plot_curves(results: Sequence[MethodResult], y: np.ndarray, path: Path, target: float) -> Path:
    """All methods' test precision against coverage on one figure, with each certified operating point."""
    fig = Figure(figsize=(7.2, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for r in results:
        curve = precision_coverage_curve(r.scores, y).passing()
        used = curve.n_accepted > 0
        (line,) = ax.plot(curve.coverage[used], curve.precision[used], lw=1.4, label=r.label)
        if r.choice.can_pass and not math.isnan(r.test_precision):
            ax.plot([r.test_coverage], [r.test_precision], "o", color=line.get_color())
    ax.axhline(target, color="tab:red", ls=":", lw=1.0, label=f"target {target:g}")
    ax.set_xlabel("coverage (share of pure cups that PASS)")
    ax.set_ylabel("precision of PASS")
    ax.set_xlim(0, 1)
    lows = [target - 0.01]
    for r in results:
        curve = precision_coverage_curve(r.scores, y).passing()
        band = (curve.coverage >= 0.02) & (curve.coverage <= 0.95) & (curve.n_accepted > 0)
        if band.any():
            lows.append(float(np.nanmin(curve.precision[band])))
    ax.set_ylim(max(0.0, min(lows) - 0.02), 1.005)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Test cups: precision against coverage (dots: certified thresholds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def recorded_sets(recorded: object) -> list[Path]:
    """The training or calibration data sets a bundle records: none, one path, or a list (``cupcheck train voter``
    with several ``--data``, ``cupcheck train recalibrate`` with several ``--data-cal``)."""
    if not recorded:
        return []
    if isinstance(recorded, (list, tuple)):
        return [Path(str(d)) for d in recorded]
    return [Path(str(recorded))]


@dataclass(frozen=True)
class MintRecord:
    """What a synthetic data set's ``mint.json`` says of its types.

    Attributes:
        seed: the mint's seed (``None`` when not recorded).
        types: each type of the mint as canonical JSON (its id, designs, metal, size...).
    """

    seed: int | None
    types: frozenset[str]

    def same_mint(self, other: MintRecord) -> bool:
        """The same mint: the same seed whatever the number of types (a mint draws its types one after another
        from its seed, so ``--types 7`` of a seed holds the 6 types of ``--types 6``), or the very same types."""
        same_seed = self.seed is not None and self.seed == other.seed
        return same_seed or self.types == other.types

    def describe(self) -> str:
        """``seed 303, 8 types``."""
        return f"seed {'unknown' if self.seed is None else self.seed}, {len(self.types)} types"


def read_mint(data: Path) -> MintRecord | None:
    """The mint of the synthetic data set ``data`` (its ``mint.json``), or ``None`` when it cannot be read (a data
    set not on this machine, or not a synthetic one)."""
    try:
        doc = json.loads((data / "mint.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    types = doc.get("types") if isinstance(doc, dict) else None
    if not isinstance(types, list):
        return None
    seed = doc.get("seed")
    return MintRecord(
        int(seed) if isinstance(seed, int) else None, frozenset(json.dumps(t, sort_keys=True) for t in types)
    )


@dataclass(frozen=True)
class HeldOut:
    """Whether the test mint is known to be new to the voter, and what is known against it.

    Attributes:
        new_to_voter: every training data set (the bundle's, and ``--data-train``) could be read and shares no type
            with the test mint; only then does the report say every test type is new to the voter.
        warnings: one line per overlap found, or per data set that could not be checked.
    """

    new_to_voter: bool
    warnings: tuple[str, ...] = ()


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_held_out(
    test: Path,
    *,
    trained: Sequence[tuple[str, Path]],
    calibrated: Sequence[Path],
    recorded_cal: Sequence[Path] = (),
) -> HeldOut:
    """Compare the test data set's mint with those of the training and calibration data sets.

    Args:
        test: the test data set.
        trained: ``(what, folder)`` of each data set the voter or the baselines learnt from (``what`` names it in
            the warnings: "the bundle's training set", "--data-train").
        calibrated: the data sets whose cups certify the thresholds of this evaluation.
        recorded_cal: the calibration sets the bundle records, when others certify this evaluation.

    Raises:
        ValueError: the test set is one of ``calibrated`` (the same folder, or the same mint): a threshold scored
            on the cups it was chosen on proves nothing.
    """
    mint = read_mint(test)
    for cal in calibrated:
        other = read_mint(cal)
        if _same_folder(test, cal) or (mint is not None and other is not None and mint.same_mint(other)):
            raise ValueError(
                f"test data {test} is the calibration set {cal}"
                + ("" if mint is None else f" (mint {mint.describe()})")
                + ": the thresholds would be scored on the cups they were chosen on; render a test set with a seed "
                "used for neither training nor calibration (cupcheck synth --seed N)"
            )
    if mint is None:
        return HeldOut(
            False, (f"{test / 'mint.json'} cannot be read: whether the test types are new to the voter is unchecked",)
        )
    warnings: list[str] = []
    known = True
    if not any(what == BUNDLE_TRAIN for what, _ in trained):
        known = False
        warnings.append(
            "the bundle records no training data set: whether the test types are new to its voter is unchecked"
        )
    for what, folder in trained:
        other = read_mint(folder)
        if other is None:
            known = False
            warnings.append(
                f"{what} {folder} has no readable mint.json (not on this machine?): whether the test types are new "
                "to the voter is unchecked"
            )
        elif overlap := _overlap(mint, other):
            known = False
            warnings.append(f"test data {test} {overlap} with {what} {folder}: those types are not new to the voter")
    for folder in [*calibrated, *recorded_cal]:
        other = read_mint(folder)
        if other is None:
            warnings.append(
                f"calibration set {folder} has no readable mint.json: its overlap with the test data is unchecked"
            )
        elif overlap := _overlap(mint, other):
            warnings.append(f"test data {test} {overlap} with calibration set {folder}")
    return HeldOut(known, tuple(warnings))


BUNDLE_TRAIN = "the bundle's training set"
"""How :func:`check_held_out`'s warnings name a data set the bundle's voter was trained on."""


def _overlap(mint: MintRecord, other: MintRecord) -> str:
    """What the test ``mint`` shares with ``other`` (``""``: nothing), as a warning says it."""
    if mint.same_mint(other):
        return f"has the same mint (test {mint.describe()}; other {other.describe()})"
    shared = len(mint.types & other.types)
    return f"shares {shared} of its {len(mint.types)} types (mint {mint.describe()})" if shared else ""


def check_evaluable(bundle: Bundle) -> None:
    """Refuse a bundle whose station references a synthetic test mint cannot be judged with.

    The nightly retrain files coins a supervisor ruled on under the station's own types (``references.npz``); the
    pipeline adds them to the gallery of every type of that name it enrols. A test mint's types are not the
    station's, or are others under the same ids (``t0021``), so its cups would be judged against another gallery
    than the station's, or against the station's coins filed under the wrong type. (A fine-tuned output layer
    alone is applied, :func:`bundle_adapter`.)

    Raises:
        ValueError: the bundle has station references (named, with what to do).
    """
    if not bundle.references_file:
        return
    origin = bundle.train.get("retrained_from")
    raise ValueError(
        f"bundle {bundle.version or bundle.root} carries station references ({bundle.references_file}) from the "
        "nightly retrain: coins of the station's own types, which a synthetic test mint does not hold (or holds "
        "other coins under the same ids), so no report on its cups would describe the model the station runs; "
        f"evaluate the bundle this one was retrained from{f' ({origin})' if origin else ''}, and this one by the "
        "nightly gate on the station's own cups (cupcheck retrain --dry-run)"
    )


def bundle_adapter(bundle: Bundle, embedder: Embedder) -> EmbeddingAdapter | None:
    """The bundle's fine-tuned output layer on ``embedder`` (``None``: it has none), as
    :meth:`models.pipeline.Pipeline.from_parts` puts it on the station's embedder and gallery.

    Raises:
        ValueError: the layer's file is damaged or fine-tunes another embedder.
    """
    path = bundle.path(bundle.adapter_file)
    return None if path is None else EmbeddingAdapter.load(path, embedder.version)


def evaluate(cfg: EvalConfig, *, progress: bool = True) -> EvalResult:
    """Run the evaluation and write ``report.md`` and the plots into ``cfg.out``.

    The cups are embedded as the bundle's pipeline embeds them: through its fine-tuned output layer when it has
    one (:func:`bundle_adapter`), the gallery mapped by the same layer.

    Raises:
        ValueError: the test set is the calibration set (:func:`check_held_out`), ``max_cups`` or ``real_limit`` is
            below 1, the bundle records no training data set and none is given, or it carries station references
            (:func:`check_evaluable`).
    """
    if cfg.max_cups is not None and cfg.max_cups < 1:
        raise ValueError(f"max_cups must be at least 1 (None for every cup), got {cfg.max_cups}")
    check_real_limit(cfg.real_limit)
    bundle = load_bundle(cfg.bundle)
    bundle.check_feature_set()
    check_evaluable(bundle)
    embedder = Embedder.load(bundle.path(bundle.embedder_file), threads=1)
    adapter = bundle_adapter(bundle, embedder)
    pooler = SetPooler.load(bundle.path(bundle.pooler_file))  # type: ignore[arg-type]
    voter = bundle.load_voter()
    train_srcs = [cfg.data_train] if cfg.data_train is not None else recorded_sets(bundle.train.get("data"))
    if not train_srcs:
        raise ValueError(f"bundle {bundle.version} records no training data set: give one (--data-train)")
    cal_srcs = [cfg.data_cal] if cfg.data_cal is not None else recorded_sets(bundle.train.get("data_cal"))
    recorded_train = recorded_sets(bundle.train.get("data"))
    given_train = [
        d for d in train_srcs if cfg.data_train is not None and not any(_same_folder(d, r) for r in recorded_train)
    ]
    held = check_held_out(
        cfg.data,
        trained=[(BUNDLE_TRAIN, d) for d in recorded_train] + [("--data-train", d) for d in given_train],
        calibrated=cal_srcs,
        recorded_cal=[] if cfg.data_cal is None else recorded_sets(bundle.train.get("data_cal")),
    )
    # The cups are cut the way the bundle was trained and calibrated (true masks or the real detector): the
    # guarantee holds only for that pipeline.
    instances = str(bundle.train.get("instances", "gt"))
    tcfg = TrainConfig(
        data=cfg.data,
        out=cfg.out,
        cache=cfg.cache,
        max_cups=cfg.max_cups,
        instances=instances,
        cut_workers=cfg.cut_workers,
        enrol_per_side=bundle.enrol_per_side,
    )
    detector = None
    if instances == "detector":
        from models.detector import Detector

        detector = Detector.load(bundle.path(bundle.detector_dir))

    def table(data: Path, splits: Sequence[str] | None, seed: int, desc: str, extra: int = 0) -> PairTable:
        cache, view, mint = load_split(data, embedder, tcfg, detector, progress, adapter)
        pairs = make_pairs(cache, mint, seed=seed, splits=splits, extra_negatives=extra)
        return pair_table(cache, view, pairs, pooler, gem_p=bundle.preprocess.gem_p, progress=progress, desc=desc)

    extra = int(bundle.train.get("extra_negatives", 2))
    train_t = PairTable.concat([table(d, ("train",), 0, "pairs (train)", extra) for d in train_srcs])
    seen_t = PairTable.concat([table(d, ("val",), 1, "pairs (seen types)") for d in train_srcs])
    cal_t = PairTable.concat([table(d, None, 2, "pairs (cal)") for d in cal_srcs]) if cal_srcs else seen_t
    test_t = table(cfg.data, None, 3, "pairs (test)")
    baselines = {
        name: train_voter(
            train_t.columns(names),
            train_t.y,
            names,
            valid=(seen_t.columns(names), seen_t.y) if len(set(seen_t.y)) == 2 else None,
            min_coins=voter.min_coins,
        )
        for name, names in (("voter_base", BASE_FEATURES), ("voter_embed", EMBEDDING_FEATURES))
    }
    cal_scores = _method_scores(cal_t, voter, baselines)
    test_scores = _method_scores(test_t, voter, baselines)
    target, delta = bundle.threshold.target, bundle.threshold.delta
    results = []
    for name, label in METHODS:
        choice = choose_threshold(cal_scores[name], cal_t.y, target=target, delta=delta)
        prec, cov, n_acc, n_err = _at_threshold(test_scores[name], test_t.y, choice)
        results.append(
            MethodResult(
                name,
                label,
                choice,
                test_scores[name],
                prec,
                cov,
                n_acc,
                n_err,
                auc(test_scores[name], test_t.y),
                {c: precision_at_coverage(test_scores[name], test_t.y, c) for c in COVERAGES},
            )
        )
    full = results[-1]
    op_threshold, op_label = breakdown_threshold(cal_scores["voter"], cal_t.y, full.choice, delta)
    acc_test = passes(test_scores["voter"], op_threshold)
    seen_scores = voter.predict(seen_t.columns(voter.feature_names))
    acc_seen = passes(seen_scores, op_threshold)
    res = EvalResult(
        methods=results,
        held_out=held,
        operating_point=f"{op_label} ({op_threshold:.4f})",
        breakdown=breakdown(test_t, acc_test, voter.min_coins),
        seen_breakdown=breakdown(seen_t, acc_seen, voter.min_coins),
        counts={
            "train_pairs": len(train_t.pairs),
            "cal_pairs": len(cal_t.pairs),
            "cal_positive": int(cal_t.y.sum()),
            "test_pairs": len(test_t.pairs),
            "test_positive": int(test_t.y.sum()),
            "seen_pairs": len(seen_t.pairs),
        },
    )
    for t in TARGETS:
        ch = choose_threshold(cal_scores["voter"], cal_t.y, target=t, delta=delta)
        prec, cov, n_acc, n_err = _at_threshold(test_scores["voter"], test_t.y, ch)
        res.targets.append(
            {
                "target": t,
                "choice": ch,
                "test_precision": prec,
                "test_coverage": cov,
                "accepted": n_acc,
                "errors": n_err,
            }
        )
    cfg.out.mkdir(parents=True, exist_ok=True)
    plot_curves(results, test_t.y, cfg.out / "precision_coverage_methods.png", target)
    plot_precision_coverage(
        precision_coverage_curve(cal_scores["voter"], cal_t.y).passing(),
        full.choice,
        cfg.out / "precision_coverage_voter_cal.png",
        title="Full voter on calibration pairs: precision against coverage",
    )
    res.reliability = reliability_on_passable(test_scores["voter"], test_t.y, cfg.out / "reliability_voter.png")
    if cfg.turn_cups > 0:
        res.turning = evaluate_turning(cfg.data, bundle, cfg.cache, cups=cfg.turn_cups, progress=progress)
    if cfg.real is not None:
        res.real = evaluate_real(cfg.real, bundle, progress=progress, limit=cfg.real_limit)
        res.real_cups = evaluate_real_cups(
            cfg.real, bundle, progress=progress, plot=cfg.out / "precision_coverage_real_cups.png"
        )
    write_report(cfg, bundle, res)
    return res


def reliability_on_passable(scores: np.ndarray, y: np.ndarray, path: Path) -> dict[str, Any]:
    """Draw the voter's reliability diagram on the test pairs its hard rules let through (``p > 0``) and say how
    many refused pairs (``p = 0``) were left out.

    A refused pair never passes whatever its score, and half of them are correct cups showing a shared obverse:
    counted in the lowest bin they would make a well-calibrated voter look poorly calibrated there.

    Returns:
        ``{"pairs", "refused", "refused_correct", "ece"}``: the pairs drawn, those left out (of them correct), and
        the expected calibration error over the pairs drawn (``nan``, and no diagram, when no pair has ``p > 0``).
    """
    scores, y = np.asarray(scores, float), np.asarray(y, bool)
    kept = scores > 0
    refused, refused_correct = int((~kept).sum()), int(y[~kept].sum())
    ece = math.nan
    if kept.any():
        note = f"{refused} pairs the hard rules refused (p = 0, {refused_correct} of them correct) left out"
        plot_reliability(scores[kept], y[kept], path, title="Voter p_correct, pairs with p > 0", note=note)
        ece = reliability_bins(scores[kept], y[kept]).expected_calibration_error
    return {"pairs": int(kept.sum()), "refused": refused, "refused_correct": refused_correct, "ece": ece}


def reliability_line(rel: dict[str, Any]) -> str:
    """The report's line on ``reliability_voter.png`` (:func:`reliability_on_passable`)."""
    left_out = f"the {rel['refused']} pairs the hard rules refused (p = 0, {rel['refused_correct']} of them correct)"
    if not rel["pairs"]:
        return f"- `reliability_voter.png`: not drawn: no test pair has p > 0 ({left_out})."
    return (
        f"- `reliability_voter.png`: reliability of the voter's p_correct on the {rel['pairs']} test pairs the hard "
        f"rules let through (p > 0; ECE {rel['ece']:.3f}); {left_out} are left out."
    )


# ----------------------------------------------------------------------------------------------- report


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def write_report(cfg: EvalConfig, bundle: Bundle, res: EvalResult) -> Path:
    """Write ``report.md`` (and ``results.json``)."""
    b = bundle.threshold
    held = res.held_out
    lines = [
        "# Cup verdict evaluation",
        "",
        f"Bundle `{bundle.version}`, embedder `{bundle.embedder_version}`"
        + (
            f" with the bundle's fine-tuned output layer (`{bundle.adapter_file}`, embeddings "
            f"`{bundle.embedding_version}`), on every cup and gallery as the station applies it"
            if bundle.adapter_file
            else ""
        )
        + f"; test data `{cfg.data}` "
        + (
            "(its mint shares no type with the voter's training data sets: every test type is new to the voter). "
            if held.new_to_voter
            else "(not known to be new to the voter: see the warnings below). "
        )
        + f"Every mint's gallery holds {bundle.enrol_per_side} enrolment photos a side; "
        + (
            f"a cup of fewer than {bundle.pass_min_coins} coins never passes."
            if bundle.pass_min_coins > 1
            else "any cup with a coin may pass."
        ),
        "",
        *[f"- warning: {w}" for w in held.warnings],
        *([""] if held.warnings else []),
        f"Target precision {b.target} with probability {confidence_text(b.delta)} (delta {b.delta}). Pairs: "
        + ", ".join(f"{k} {v}" for k, v in res.counts.items())
        + ".",
        "",
        f"Bundle threshold: {b.summary()}",
        "",
        "## Methods on the same test pairs (each with its own threshold certified on the calibration pairs)",
        "",
        "| method | threshold | cal accepted / errors | cal precision (lower bound) | test precision | test coverage"
        " | test accepted / errors | AUC | test precision at coverage 10% / 30% / 50% |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res.methods:
        c = r.choice
        lines.append(
            f"| {r.label} | {threshold_text(c)} | {c.n_accepted} / {c.n_errors} | {_pct(c.precision or math.nan)} "
            f"({_pct(c.precision_lower_bound)}) | {_pct(r.test_precision)} | {_pct(r.test_coverage)} | "
            f"{r.test_accepted} / {r.test_errors} | {r.auc:.4f} | "
            + " / ".join(_pct(r.precision_at.get(c, math.nan)) for c in COVERAGES)
            + " |"
        )
    lines += [
        "",
        f"## Full voter at other target precisions (delta {b.delta}; thresholds from the calibration pairs)",
        "",
        f"A threshold certified under the PASS floor {PASS_FLOOR} is shown with the floor beside it: the station "
        "never passes a cup under the floor, so the test columns count PASSes at the threshold applied.",
        "",
        "| target | threshold | cal accepted / errors | cal lower bound | test precision | test coverage"
        " | test accepted / errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in res.targets:
        c = row["choice"]
        lines.append(
            f"| {row['target']} | {threshold_text(c)} | {c.n_accepted} / {c.n_errors} | "
            f"{_pct(c.precision_lower_bound)} | "
            f"{_pct(row['test_precision'])} | {_pct(row['test_coverage'])} | {row['accepted']} / {row['errors']} |"
        )
    for title, bd in (
        (
            "Full voter by kind: test types"
            + (" (enrolled after training)" if held.new_to_voter else " (not known to be new to the voter)"),
            res.breakdown,
        ),
        ("Full voter by kind: types seen in training (val cups)", res.seen_breakdown),
    ):
        lines += ["", f"## {title}", "", f"At the {res.operating_point}.", ""]
        lines += ["| group | pairs | PASS | rate |", "|---|---|---|---|"]
        for key, v in bd.items():
            lines.append(f"| {key} | {v['n']} | {v['pass']} | {v['what']} {_pct(v['rate'])} |")
    if res.turning:
        lines += ["", "## Cups checked again after the operator turns the coins a FLAG names", ""]
        lines += turning_lines(res.turning)
    if res.real:
        lines += ["", "## Real photos", ""]
        for name, r in res.real.items():
            lines.append(
                f"- {name}: {r['photos']} photos; single-denomination {r['single']}: PASS for the true denomination "
                f"{r['single_pass_true']}, PASS for a wrong denomination {r['single_pass_wrong']} (must be 0); "
                f"mixed {r['mixed']}: PASS {r['mixed_pass']} (must be 0). {real_ranking(r)}"
            )
            lines += real_target_table(r)
    if res.real_cups:
        lines += ["", "## Real coins in drawn cups", "", *real_cups_lines(res.real_cups)]
    lines += [
        "",
        "## Plots",
        "",
        "- `precision_coverage_methods.png`: every method on the test pairs, dots at the certified thresholds.",
        "- `precision_coverage_voter_cal.png`: the full voter on the calibration pairs with the chosen point and"
        " its Clopper-Pearson lower bound.",
        *([reliability_line(res.reliability)] if res.reliability else []),
        "",
    ]
    path = cfg.out / "report.md"
    path.write_text("\n".join(lines))
    doc = {
        "methods": [
            {
                "name": r.name,
                "threshold": r.choice.to_dict(),
                "test_precision": r.test_precision,
                "test_coverage": r.test_coverage,
                "test_accepted": r.test_accepted,
                "test_errors": r.test_errors,
                "auc": r.auc,
                "precision_at_coverage": {str(k): v for k, v in r.precision_at.items()},
            }
            for r in res.methods
        ],
        "operating_point": res.operating_point,
        "breakdown": res.breakdown,
        "seen_breakdown": res.seen_breakdown,
        "counts": res.counts,
        "targets": [{**r, "choice": r["choice"].to_dict()} for r in res.targets],
        "real": {k: {kk: vv for kk, vv in v.items() if kk != "rows"} for k, v in res.real.items()},
        "real_cups": res.real_cups,
        "turning": res.turning,
        "held_out": {"new_to_voter": res.held_out.new_to_voter, "warnings": list(res.held_out.warnings)},
        "reliability": res.reliability,
    }
    (cfg.out / "results.json").write_text(json.dumps(doc, indent=1, default=float))
    if res.real:
        (cfg.out / "real_rows.json").write_text(json.dumps(res.real, indent=1, default=float))
    return path
