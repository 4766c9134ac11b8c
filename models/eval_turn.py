"""Cups checked again after the operator turns the coins a FLAG names: what the station passes without a supervisor.

A coin lying on a design other types share (a family's common obverse) proves nothing about its type, so the hard
rules never pass a cup that shows one; the FLAG names those coins ("coins 1, 3 show the shared obverse — turn them
over"). That asks the operator for a second look at the same cup, not a supervisor's. This renders cups of a test
data set's mint (indices from :data:`TURN_FIRST_INDEX`, so none is one of the data set's own cups), drawn as the
data set's were, runs the station's pipeline on each at the bundle's certified threshold, and for every FLAG that
tells the operator to turn the named coins and check again (:attr:`~models.types.Verdict.turn_first`: nothing
else that turning cannot change stops the cup) renders the same cup with those coins on their other side
(:attr:`models.synth.scene.SceneOptions.turn`) and checks it once more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from models.bundle import Bundle
from models.pipeline import Observation, Pipeline
from models.synth.scene import CupKind, CupScene, SceneAssets, SceneOptions, render_cup, rules_allow
from models.types import Decision, Frame, Verdict

TURN_CUPS = 300
"""Cups rendered for the check by default."""
TURN_FIRST_INDEX = 500_000
"""Index of the first cup rendered: far above any data set's own cups and its enrolment photos (100,000 on)."""
TURN_KIND_WEIGHTS: dict[CupKind, float] = {
    CupKind.PURE: 4.0,
    CupKind.CONTAMINATED: 3.0,
    CupKind.OBVERSE_ONLY: 1.0,
    CupKind.FOREIGN_OBJECT: 1.0,
    CupKind.EMPTY: 1.0,
}
"""The mix of cup kinds, as the test data set's (``--kind-weights 4,3,1,1,1``)."""
TURN_REVERSE_SHARE = 0.9
"""Coins lie reverse up with this chance, as in the test data set (an operator spreading them reverse up)."""
TURN_MAX_COINS = 16
"""The most coins in one cup, as in the test data set."""


@dataclass(frozen=True)
class TurnCheck:
    """One cup checked as it lies and, when its FLAG names coins to turn, once more after turning them.

    Attributes:
        kind: the cup kind (:class:`~models.synth.scene.CupKind` value).
        good: a PASS would be right (:attr:`~models.synth.scene.CupScene.holds_only_expected`).
        allowed: the hard rules let the cup pass as it lies, from its ground truth
            (:func:`~models.synth.scene.rules_allow`; only pure cups can be allowed).
        first: the first check passed.
        turned: coins the first check's FLAG had turned over (0: it passed, named none, or named something
            turning cannot change as well, which goes to a supervisor as it is).
        second: the second check passed (``None``: there was none).
    """

    kind: str
    good: bool
    allowed: bool
    first: bool
    turned: int
    second: bool | None

    @property
    def passed(self) -> bool:
        """Passed at the first check or after turning."""
        return self.first or bool(self.second)


def coins_to_turn(scene: CupScene, obs: Observation, verdict: Verdict) -> frozenset[int]:
    """The scene labels of the coins ``verdict`` names to turn over (coins on a shared side; a detection over no
    coin of the scene is skipped)."""
    return frozenset(
        coin.label
        for c in verdict.coins
        if c.shared and (coin := scene.coin_at(obs.instances[c.index].center)) is not None
    )


def check_with_turn(
    pipeline: Pipeline,
    assets: SceneAssets,
    seed: int,
    index: int,
    opts: SceneOptions,
    lookalikes: frozenset[str] = frozenset(),
) -> TurnCheck:
    """Render cup ``index``, check it, and when its FLAG asks for the named coins to be turned over first
    (:attr:`~models.types.Verdict.turn_first`), check it again with them turned, as the operator's banner says.

    Each check compares the cup with its empty-tray photo when ``opts`` renders one (as a station that has one).
    """
    min_coins = pipeline.fewest_coins

    def check(scene: CupScene) -> tuple[Observation, Verdict]:
        pipe = pipeline if scene.empty is None else replace(pipeline, empty_tray=scene.empty, cup_roi=scene.tray)
        obs = pipe.observe(Frame(image=scene.image, source=f"turn-check {index}"))
        return obs, pipe.decide(obs, scene.expected_type)

    scene = render_cup(assets, seed, index, opts)
    obs, first = check(scene)
    allowed = scene.kind == CupKind.PURE and rules_allow(scene, assets.mint.shared_designs(), min_coins, lookalikes)
    passed = first.decision == Decision.PASS
    turn = coins_to_turn(scene, obs, first) if first.turn_first else frozenset()
    second = None
    if turn:
        _, again = check(render_cup(assets, seed, index, replace(opts, turn=turn)))
        second = again.decision == Decision.PASS
    return TurnCheck(scene.kind.value, scene.holds_only_expected, allowed, passed, len(turn), second)


def turn_options(image_size: int) -> SceneOptions:
    """The scene options of the check's cups (the test data set's recipe, with its empty-tray photos)."""
    return SceneOptions(
        image_size=image_size,
        kind_weights=dict(TURN_KIND_WEIGHTS),
        max_coins=TURN_MAX_COINS,
        reverse_share=TURN_REVERSE_SHARE,
        empty_reference=True,
    )


@dataclass(frozen=True)
class TurnStation:
    """A station for a synthetic data set's mint: the bundle's pipeline over the data set's gallery.

    Attributes:
        pipeline: the bundle's pipeline, with the detector, over the data set's enrolment gallery.
        assets: the mint's render assets.
        lookalikes: the types the catalogue declares a lookalike of (the mint's near-twins).
        seed: the data set's seed (its cups are ``render_cup(assets, seed, index, ...)``).
        image_size: the data set's image side.
    """

    pipeline: Pipeline
    assets: SceneAssets
    lookalikes: frozenset[str]
    seed: int
    image_size: int


def turn_station(data: Path, bundle: Bundle, cache: Path, *, progress: bool = True) -> TurnStation:
    """The bundle's pipeline over ``data``'s gallery, as the report's test pairs are judged (the data set's
    enrolment photos, the bundle's photos a side), the catalogue declaring the mint's near-twins lookalikes.

    Raises:
        FileNotFoundError: the data set has no ``mint.json`` or ``manifest.json``, or a model file is missing.
    """
    from models.detector import Detector
    from models.embedder import Embedder
    from models.enroll import TypeInfo
    from models.train.galleries import dataset_gallery, mint_lookalikes, mint_of

    mint = mint_of(data)
    doc = json.loads((data / "manifest.json").read_text())
    embedder = Embedder.load(bundle.path(bundle.embedder_file), threads=1)
    gallery, diameters = dataset_gallery(data, embedder, cache, bundle.enrol_per_side, progress=progress)
    looks = mint_lookalikes(mint)
    catalogue = {t.id: TypeInfo(t.id, t.id, diameters.get(t.id), looks.get(t.id, ())) for t in mint.types}
    detector = Detector.load(bundle.path(bundle.detector_dir))
    pipeline = Pipeline.from_parts(bundle, gallery, embedder=embedder, catalogue=catalogue, detector=detector)
    return TurnStation(pipeline, SceneAssets(mint), frozenset(looks), int(doc["seed"]), int(doc.get("image_size", 640)))


def evaluate_turning(
    data: Path,
    bundle: Bundle,
    cache: Path,
    *,
    cups: int = TURN_CUPS,
    first_index: int = TURN_FIRST_INDEX,
    progress: bool = True,
) -> dict[str, Any]:
    """Check ``cups`` cups of ``data``'s mint as they lie and after one turn, at the bundle's threshold
    (:func:`turn_station`, :func:`check_with_turn`).

    Returns:
        :func:`turn_summary` of the checks, with ``"threshold"`` and ``"first_index"``.

    Raises:
        ValueError: ``cups < 1``.
        FileNotFoundError: see :func:`turn_station`.
    """
    if cups < 1:
        raise ValueError(f"cups must be >= 1, got {cups}")
    st = turn_station(data, bundle, cache, progress=progress)
    opts = turn_options(st.image_size)
    checks = [
        check_with_turn(st.pipeline, st.assets, st.seed, first_index + i, opts, st.lookalikes)
        for i in tqdm(range(cups), desc="cups checked, turned", unit="cup", disable=not progress)
    ]
    return {**turn_summary(checks), "threshold": bundle.threshold.threshold, "first_index": first_index}


def turn_summary(checks: Sequence[TurnCheck]) -> dict[str, Any]:
    """Counts per cup kind: ``{"kinds": {kind: {"cups", "allowed", "first", "first_wrong", "turned", "second",
    "second_wrong", "passed", "good"}}, "cups": n}``; a PASS is wrong when the cup is not ``good``."""
    kinds: dict[str, dict[str, int]] = {}
    for c in checks:
        k = kinds.setdefault(
            c.kind,
            dict.fromkeys(
                ("cups", "good", "allowed", "first", "first_wrong", "turned", "second", "second_wrong", "passed"), 0
            ),
        )
        k["cups"] += 1
        k["good"] += c.good
        k["allowed"] += c.allowed
        k["first"] += c.first
        k["first_wrong"] += c.first and not c.good
        k["turned"] += c.second is not None
        k["second"] += bool(c.second)
        k["second_wrong"] += bool(c.second) and not c.good
        k["passed"] += c.passed
    order = [k.value for k in CupKind]
    return {"cups": len(checks), "kinds": {k: kinds[k] for k in order if k in kinds}}


def turning_lines(r: dict[str, Any]) -> list[str]:
    """The report's section on cups checked again after turning (Markdown lines, no heading)."""
    kinds = r["kinds"]
    pure = kinds.get(CupKind.PURE.value)
    lines = [
        f"{r['cups']} cups of the test mint drawn as its own (indices from {r['first_index']}), each checked by the "
        f"station's pipeline at the bundle's threshold ({r['threshold']:.4f}); a FLAG that tells the operator to turn "
        "the coins it names on a shared side over and check again (nothing else that turning cannot change stops the "
        "cup) has them turned, and the same cup is checked once more.",
        "",
        "| kind | cups | the hard rules allow as it lies | PASS at the first check (wrong) | checked again after"
        " turning | PASS after turning (wrong) | passed in all |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, k in kinds.items():
        share = f"{k['passed']} ({k['passed'] / k['cups']:.1%})" if k["cups"] else "0"
        lines.append(
            f"| {name} | {k['cups']} | {k['allowed']} | {k['first']} ({k['first_wrong']}) | {k['turned']} | "
            f"{k['second']} ({k['second_wrong']}) | {share} |"
        )
    total = {f: sum(k[f] for k in kinds.values()) for f in ("cups", "first", "turned", "second", "passed")}
    unlinked = total["cups"] - total["first"] + total["turned"] - total["second"]  # every FLAG of either check
    lines += [
        "",
        f"A supervisor sees {total['cups'] - total['passed']} of the {total['cups']} cups, each flagged at its last "
        "check; the station logs a re-check as the answer to its first check, which then leaves the review queue "
        f"(both checks of every turned cup would make {unlinked} queue entries).",
    ]
    if pure and pure["cups"]:
        lines += [
            "",
            f"Pure cups passed at the first check {pure['first'] / pure['cups']:.1%}, after one turn "
            f"{pure['passed'] / pure['cups']:.1%}. Wrong PASSes in all: "
            f"{sum(k['first_wrong'] + k['second_wrong'] for k in kinds.values())}.",
        ]
    return lines
