"""A closed-loop day at the station: synthetic cups under drifted light, an oracle supervisor, the nightly retrain.

Each cycle renders ``cups`` synthetic cups (:func:`models.synth.scene.render_cup`) with a warm colour cast and
brighter light than the mint's references (the drift), runs the real pipeline (detector, embedder, gallery,
voter) on every frame, logs each verdict with its crops, masks and embeddings into the home's real SQLite
verdict log (each cup compared with its tray photographed empty under the same light, as a station with an
empty-tray photo does), lets an oracle supervisor rule on every flagged cup from the scene's ground truth, and runs
:func:`station.retrain_job.run_retrain`. The report shows auto-pass and PASS precision per cycle, beside the share
of clean cups the hard rules let through at all (enough coins, none showing a design other types share, no declared
lookalike): no model can pass more, and a mint whose families share their obverse caps it at the share of cups
lying reverse up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from db.records import VerdictRecord, audit_pick
from db.repository import VerdictRepository
from db.schema import LabelKind, Role
from models.eval_turn import coins_to_turn
from models.pipeline import Observation, Pipeline
from models.registry import current_bundle_path
from models.retrain import RetrainConfig
from models.synth.mint import generate_mint
from models.synth.scene import (
    CupKind,
    CupScene,
    SceneAssets,
    SceneInstance,
    SceneOptions,
    render_cup,
    rules_allow,
)
from models.train.galleries import mint_lookalikes
from models.types import CoinInstance, Decision, Frame, Verdict
from station.retrain_job import RetrainOptions, run_retrain
from station.worker import coin_cuts

SUPERVISOR, SUPERVISOR_PIN = "oracle", "000000"


@dataclass(frozen=True)
class CycleCounts:
    """One cycle's cups as the ground truth sees them.

    Attributes:
        clean: pure cups (every coin the expected type, nothing else in the cup).
        good: cups a PASS would be right for (:attr:`~models.synth.scene.CupScene.holds_only_expected`: the pure
            ones and the obverse-only ones).
        allowed: clean cups the hard rules let through (:func:`~models.synth.scene.rules_allow`).
        passed: PASSes of the model in force.
        wrong: PASSes of cups holding anything but coins of the expected type.
        labelled: cups the oracle ruled on (every FLAG and the PASSes drawn for audit; of a cup checked again after
            turning, the second check alone).
        cups: cups processed.
        audited: PASSes drawn for audit among ``labelled``.
        start_passed: PASSes of the model the day started with, on the same cups.
        start_wrong: its wrong PASSes.
        turned: FLAGged cups checked again after the operator turned the coins it named.
        turned_passed: PASSes among those second checks.
        turned_wrong: the wrong ones among them.
    """

    clean: int = 0
    good: int = 0
    allowed: int = 0
    passed: int = 0
    wrong: int = 0
    labelled: int = 0
    cups: int = 0
    audited: int = 0
    start_passed: int = 0
    start_wrong: int = 0
    turned: int = 0
    turned_passed: int = 0
    turned_wrong: int = 0

    @property
    def auto_pass(self) -> float:
        """Right PASSes over clean cups (obverse-only cups never pass as they lie)."""
        return (self.passed - self.wrong) / self.clean if self.clean else 0.0

    @property
    def start_auto_pass(self) -> float:
        """The same for the model the day started with, on the same cups: the retrains' effect, free of the
        cups' own variation."""
        return (self.start_passed - self.start_wrong) / self.clean if self.clean else 0.0

    @property
    def at_station(self) -> float:
        """Cups rightly passed at the first check or after the operator turned the named coins, over the cups a
        PASS is right for (pure and obverse-only): the good cups no supervisor had to see."""
        right = self.passed - self.wrong + self.turned_passed - self.turned_wrong
        return right / self.good if self.good else 0.0

    @property
    def allowed_share(self) -> float:
        """Clean cups the hard rules let through over clean cups: the most auto-pass can be."""
        return self.allowed / self.clean if self.clean else 0.0

    @property
    def all_passed(self) -> int:
        """Every PASS the station gave: at the first check and after the operator turned the named coins."""
        return self.passed + self.turned_passed

    @property
    def precision(self) -> float:
        """Correct PASSes over every PASS the station gave, after turning too (``nan`` without a PASS): each one
        ships a cup."""
        wrong = self.wrong + self.turned_wrong
        return (self.all_passed - wrong) / self.all_passed if self.all_passed else float("nan")


@dataclass(frozen=True)
class CycleResult:
    """One cycle: the model in force, what its cups gave (from the scenes' ground truth, not from the labels),
    and the nightly retrain that followed."""

    cycle: int
    model: str
    counts: CycleCounts
    retrain_code: int
    retrain_message: str


def drift(image: np.ndarray) -> np.ndarray:
    """The new lighting: brighter, warm (more red, less blue), slightly lower contrast."""
    x = image.astype(np.float32) * np.array([0.82, 1.0, 1.18], np.float32) * 1.1 + 12.0
    return np.asarray(np.clip(x, 0, 255), np.uint8)


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    if not ok:  # pragma: no cover
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def covering_item(scene: CupScene, inst: CoinInstance) -> SceneInstance | None:
    """The scene's coin or object that covers most of a detection's mask (of its box, when the mask is empty),
    counted on the scene's per-pixel instance labels; ``None`` when most of it is background.

    Not the pixel under the box's centre: where coins overlap, that pixel can belong to another coin lying on top,
    and the supervisor would then rule the box that coin's type.
    """
    h, w = scene.labels.shape
    x0, y0 = inst.mask_origin
    ys, xs = np.nonzero(inst.mask)
    ys, xs = ys + y0, xs + x0
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    if inside.any():
        under = scene.labels[ys[inside], xs[inside]]
    else:  # no mask pixel in the image: the box
        x1, y1, x2, y2 = (round(float(v)) for v in inst.bbox[:4])
        under = scene.labels[max(y1, 0) : max(min(y2, h), 0), max(x1, 0) : max(min(x2, w), 0)].ravel()
    if under.size == 0:
        return None
    values, counts = np.unique(under, return_counts=True)
    label = int(values[int(np.argmax(counts))])
    return next((item for item in scene.instances if item.label == label), None)


@dataclass(frozen=True)
class OracleRuling:
    """One ruling the oracle supervisor gives a cup (``coin_index`` ``None``) or one of its boxes.

    Attributes:
        kind: the ruling.
        coin_index: the box's index in the verdict, ``None`` for the whole cup.
        corrected_type: the true type, with ``corrected`` only.
    """

    kind: LabelKind
    coin_index: int | None = None
    corrected_type: str | None = None


def _intruder_type(scene: CupScene) -> str | None:
    """The type of what the cup holds besides coins of the ordered type, by the most visible pixels (a coin of
    another type before an object); ``None`` when it holds nothing else."""
    others = [i for i in scene.instances if not (i.is_coin and i.type_id == scene.expected_type)]
    if not others:
        return None
    best = max(others, key=lambda i: (i.is_coin, int(np.count_nonzero(scene.labels == i.label))))
    return best.type_id


def oracle_rulings(scene: CupScene, instances: Sequence[CoinInstance]) -> tuple[OracleRuling, ...]:
    """The supervisor's rulings on a checked cup from the scene's ground truth: the cup first, then its boxes.

    A cup holding nothing but coins of the ordered type is confirmed, and each box that is not one of them
    corrected: another coin to its type, a box on a foreign object or on nothing ``not_a_coin``, a coin the
    detector took for an object to its type. A cup holding anything else is never confirmed, whatever its boxes
    show (the intruder may lie under others, or be boxed as part of a coin): it is corrected to the intruder's type
    (:func:`_intruder_type`), and every box gets a ruling of its own, a coin of the ordered type ``confirmed``, since
    a box without one takes the cup's. Each box's truth is what covers most of it (:func:`covering_item`).
    """
    intruder = _intruder_type(scene)
    rulings = [
        OracleRuling(LabelKind.CONFIRMED)
        if intruder is None
        else OracleRuling(LabelKind.CORRECTED, corrected_type=intruder)
    ]
    for k, inst in enumerate(instances):
        item = covering_item(scene, inst)  # what lies there, whatever the detector called it
        if item is None or not item.is_coin:
            rulings.append(OracleRuling(LabelKind.NOT_A_COIN, k))
        elif item.type_id != scene.expected_type or not inst.is_coin:  # a coin the detector took for an object, too
            rulings.append(OracleRuling(LabelKind.CORRECTED, k, item.type_id))
        elif intruder is not None:
            rulings.append(OracleRuling(LabelKind.CONFIRMED, k))
    return tuple(rulings)


def lookalike_types(assets: SceneAssets) -> frozenset[str]:
    """The mint's near-twin types (the demo catalogue declares each pair lookalikes: always checked by a person)."""
    return frozenset(mint_lookalikes(assets.mint))


def run_cycle(
    home: Path,
    pipeline: Pipeline,
    repo: VerdictRepository,
    assets: SceneAssets,
    opts: SceneOptions,
    seed: int,
    cycle: int,
    n_cups: int,
    audit_share: float = 0.0,
    start: Pipeline | None = None,
    operator_turns: bool = False,
) -> CycleCounts:
    """Process one cycle's cups: the oracle rules on every FLAG and on the PASSes drawn for audit
    (:func:`db.records.audit_pick`, as the review window draws them). ``start`` (the model the day started with,
    same embedder and gallery) judges the same observations too, for the paired comparison. With
    ``operator_turns``, a FLAG that tells the operator to turn the coins it names over first
    (:attr:`~models.types.Verdict.turn_first`) has them turned and the cup checked once more
    (:attr:`models.synth.scene.SceneOptions.turn`); both checks are logged, the second as the first one's
    re-check, and the oracle rules on the second alone, as the review queue shows it."""
    n: Counter[str] = Counter()
    shared, twins = assets.mint.shared_designs(), lookalike_types(assets)
    min_coins = pipeline.fewest_coins
    for i in range(n_cups):
        index = cycle * n_cups + i
        scene = render_cup(assets, seed, index, opts)
        is_clean = scene.kind == CupKind.PURE
        good = scene.holds_only_expected
        n["cups"] += 1
        n["clean"] += is_clean
        n["good"] += good
        n["allowed"] += is_clean and rules_allow(scene, shared, min_coins, twins)
        first = _check(pipeline, repo, scene, f"sim {cycle}/{i}")
        obs, verdict = first.obs, first.verdict
        if verdict.decision == Decision.PASS:
            n["passed"] += 1
            n["wrong"] += not good
        if start is not None and start.decide(start.rescore(obs), scene.expected_type).decision == Decision.PASS:
            n["start_passed"] += 1
            n["start_wrong"] += not good
        turn = coins_to_turn(scene, obs, verdict)
        if operator_turns and verdict.turn_first and turn:
            again = render_cup(assets, seed, index, replace(opts, turn=turn))
            second = _check(pipeline, repo, again, f"sim {cycle}/{i} turned", recheck_of=first.key)
            _review(repo, second, again, audit_share, n)  # the re-check answers the first check
            n["turned"] += 1
            if second.verdict.decision == Decision.PASS:
                n["turned_passed"] += 1
                n["turned_wrong"] += not good
        else:
            _review(repo, first, scene, audit_share, n)
    return CycleCounts(**n)


@dataclass(frozen=True)
class _Checked:
    """One logged check: what the station saw and decided, the verdict's key and its cup's id."""

    obs: Observation
    verdict: Verdict
    key: str
    cup_id: int


def _check(
    pipeline: Pipeline, repo: VerdictRepository, scene: CupScene, source: str, recheck_of: str | None = None
) -> _Checked:
    """Check one cup under the drifted light and log the verdict with its crops (``recheck_of``: the key of the
    check of the same cup this one answers)."""
    frame = Frame(image=drift(scene.image), source=source)
    if scene.empty is not None:  # the station's empty-tray photo, taken under the same light
        pipeline = replace(pipeline, empty_tray=drift(scene.empty))
    obs = pipeline.observe(frame)
    verdict = pipeline.decide(obs, scene.expected_type)
    cuts = coin_cuts(frame, obs, pipeline.preprocess.crop_size)  # logged as the station's worker logs them
    record = VerdictRecord.from_verdict(
        verdict,
        _jpeg(frame.image),
        station="sim",
        operator=SUPERVISOR,
        crops_jpeg=cuts.crops_jpeg,
        masks_png=cuts.masks_png,
        embeddings=cuts.embeddings,
        recheck_of=recheck_of,
    )
    cup_id = repo.cup_of_verdict(repo.log_verdict(record))
    return _Checked(obs, verdict, record.idempotency_key, cup_id)


def _review(repo: VerdictRepository, checked: _Checked, scene: CupScene, audit_share: float, n: Counter[str]) -> None:
    """The supervisor's part for the check that stands for a cup (a re-check answers the first check, which then
    leaves the review queue): the oracle rules on it when it is a FLAG or a PASS drawn for audit (counted in ``n``)."""
    decision = checked.verdict.decision
    audit = decision == Decision.PASS and audit_pick(checked.cup_id, audit_share)
    if decision == Decision.FLAG or audit:
        n["labelled"] += 1
        n["audited"] += audit
        _oracle(repo, checked.cup_id, scene, checked.obs.instances)


def _oracle(repo: VerdictRepository, cup_id: int, scene: CupScene, instances: list[CoinInstance]) -> None:
    """Rule on the cup just logged from the ground truth (:func:`oracle_rulings`).

    The cup is named by its verdict, not found in the review queue: low-margin PASSes wait there unlabelled too,
    and can outrank the newest cup.
    """
    for r in oracle_rulings(scene, instances):
        repo.relabel(
            SUPERVISOR, cup_id, r.kind, coin_index=r.coin_index, corrected_type=r.corrected_type, note="oracle"
        )


def simulate(
    out: Path,
    *,
    cups: int,
    cycles: int,
    n_types: int = 12,
    seed: int = 7,
    reverse_share: float = 0.5,
    audit_share: float = 0.0,
    operator_turns: bool = False,
    config: RetrainConfig | None = None,
    progress: bool = True,
    empty_tray: bool = True,
    photos_per_side: int | None = None,
) -> list[CycleResult]:
    """Run the closed loop and write ``out/report.md`` with ``out/cycles.png``; returns every cycle.

    ``reverse_share`` is the chance that a coin lies reverse up (0.5: tossed into the cup; higher: an operator who
    lays the coins out reverse up, as a FLAG saying "turn them over" asks). ``audit_share`` is the share of PASSes the
    supervisor checks besides every FLAG. ``operator_turns``: the operator turns over the coins a FLAG names as
    lying on a shared side and checks the cup again. ``empty_tray``: the station compares each cup with a photo of
    its empty tray under the same light (:attr:`models.synth.scene.SceneOptions.empty_reference`), as a station
    with an empty-tray photo does. ``photos_per_side``: each type enrolled from this many simulator photos a side
    (default: as many as the verdict model's calibration galleries held; fewer: the few-photo enrolment drift, which
    the station references the nights take from ruled cups can make up for).

    Raises:
        FileExistsError: ``out`` holds an earlier simulation's home (its cups would be learnt again).
    """
    from station.demo import prepare_demo_home

    if (out / "home").exists():  # its cups would be learnt twice, and fall on both sides of the holdout
        raise FileExistsError(
            f"{out / 'home'} holds an earlier simulation: its cups would be learnt again and fall on both sides of "
            "the holdout; give another --out"
        )
    home = prepare_demo_home(
        out / "home", n_types=n_types, seed=seed, progress=progress, photos_per_side=photos_per_side
    )
    repo = VerdictRepository.open(home)
    if repo.verify_operator(SUPERVISOR, SUPERVISOR_PIN) is None:
        repo.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
    assets = SceneAssets(generate_mint(n_types, seed))
    opts = SceneOptions(image_size=480, max_coins=8, reverse_share=reverse_share, empty_reference=empty_tray)
    results: list[CycleResult] = []
    start: Pipeline | None = None
    try:
        for c in range(cycles):
            pipeline = Pipeline.load(home, current_bundle_path(home))
            if start is None:
                start = pipeline
            # a retrain keeps the embedder unless it fine-tunes its output layer
            same = start.embedder.version == pipeline.embedder.version
            k = run_cycle(
                home,
                pipeline,
                repo,
                assets,
                opts,
                seed + 1,
                c,
                cups,
                audit_share,
                start if same else None,
                operator_turns,
            )
            night = RetrainOptions(config=config or RetrainConfig(), progress=progress, audit_share=audit_share)
            outcome = run_retrain(home, night)
            results.append(CycleResult(c + 1, pipeline.model_version, k, outcome.code, outcome.message))
    finally:
        repo.engine.dispose()
    write_report(out, results)
    return results


def write_report(out: Path, results: list[CycleResult]) -> Path:
    """``report.md`` and ``cycles.png`` (auto-pass and precision per cycle)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    xs = [r.cycle for r in results]
    counts = [r.counts for r in results]
    ax.plot(xs, [100 * k.auto_pass for k in counts], "o-", label="auto-pass %")
    ax.plot(xs, [100 * k.start_auto_pass for k in counts], "x--", label="auto-pass % of the first model")
    if any(k.turned for k in counts):
        ax.plot(xs, [100 * k.at_station for k in counts], "d-", label="passed at the station % (turned)")
    ax.plot(xs, [100 * k.allowed_share for k in counts], "k:", label="the hard rules allow %")
    ax.plot(xs, [100 * k.precision if k.all_passed else np.nan for k in counts], "s-", label="PASS precision %")
    ax.set_xlabel("cycle")
    ax.set_xticks(xs)  # whole cycles, not 1.2, 1.4 ...
    ax.set_ylabel("% of the cycle's cups")
    ax.set_ylim(-2, 102)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")  # beside the lines, never on them
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(out / "cycles.png"))
    lines = [
        "# simulate-day",
        "",
        "Auto-pass: clean cups passed over clean cups. Rules allow: clean cups with enough coins, none showing a "
        "design other types share and no declared lookalike, over clean cups (the most auto-pass can be). "
        "Labelled: every FLAG (of a cup checked again after turning, the re-check's FLAG alone: a re-check that "
        "passes needs no one) and the PASSes drawn for audit (in brackets). First model: the model the day "
        "started with, judging the same cups (the retrains' own effect is the difference). Turned: FLAGs that named "
        "coins on a shared side, checked again after the operator turned them (with --operator-turns); passed at "
        "the station: cups rightly passed at the first check or after turning, over the cups holding only the "
        "expected type (pure and obverse-only). A PASS is wrong when the cup holds anything else; precision counts "
        "every PASS the station gave, after turning too.",
        "",
        "| cycle | model | cups | clean | rules allow | PASS | wrong PASS | auto-pass | first model | precision "
        "| turned: PASS (wrong) | passed at the station | labelled | retrain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        k = r.counts
        prec = f"{k.precision:.1%}" if k.all_passed else "—"
        lines.append(
            f"| {r.cycle} | {r.model} | {k.cups} | {k.clean} | {k.allowed} ({k.allowed_share:.1%}) | {k.passed} | "
            f"{k.wrong} | {k.auto_pass:.1%} | {k.start_auto_pass:.1%} ({k.start_wrong} wrong) | {prec} | "
            f"{k.turned}: {k.turned_passed} ({k.turned_wrong}) | {k.at_station:.1%} | "
            f"{k.labelled} ({k.audited}) | {r.retrain_code}: "
            f"{r.retrain_message.replace('|', '/')} |"
        )
    lines += ["", "![cycles](cycles.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
