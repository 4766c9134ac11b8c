"""The pipeline from crops (and from a frame) to a verdict, with a tiny untrained embedder and the toy voter."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.risk import choose_threshold
from models.bundle import Bundle, BundleError, load_bundle
from models.embedder import Embedder
from models.enroll import TypeInfo
from models.features import CoinScores, CupCoins, coin_scores
from models.gallery import Gallery, GalleryEntry
from models.gallery_view import GalleryView
from models.pipeline import (
    Pipeline,
    UnknownTypeError,
    _disc_mask,
    call_coin,
    certifiable_precision,
    uncertifiable_note,
)
from models.reasons import ReasonKind, reason_kinds, score_decimals
from models.synth.scene import SceneAssets, render_cup
from models.types import CoinCrop, CoinInstance, CupKind, Decision, Frame, Side
from station.tray_demo import CUP_SEED, tray_options
from tests.calibration.views import camera
from tests.models.embed_helpers import tiny_checkpoint, write_tiny_checkpoint
from tests.models.tray_world import TrayWorld, true_type
from tests.models.verdict_world import enrolled_gallery, reference_image, write_bundle


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> tuple[Bundle, Gallery, Embedder]:
    folder = tmp_path_factory.mktemp("bundle")
    emb_file = write_tiny_checkpoint(folder / "embedder.pt")
    path, embedder = write_bundle(folder, embedder_file=emb_file)
    return load_bundle(path), enrolled_gallery(embedder), embedder


@pytest.fixture(scope="module")
def pipeline(parts: tuple[Bundle, Gallery, Embedder]) -> Pipeline:
    bundle, gallery, embedder = parts
    return Pipeline.from_parts(bundle, gallery, embedder=embedder)


def _cup(type_id: str, n: int = 6) -> list[np.ndarray]:
    """``n`` crops of one type, every coin reverse up (a shared obverse would keep any cup from passing)."""
    return [reference_image(type_id, Side.REVERSE) for _ in range(n)]


def test_pure_cup_scores_above_a_contaminated_one(pipeline: Pipeline) -> None:
    pure = pipeline.run_crops(_cup("t0000"), "t0000")
    mixed_crops = _cup("t0000")
    mixed_crops[3] = reference_image("t0009", Side.REVERSE)  # another family's reverse
    mixed = pipeline.run_crops(mixed_crops, "t0000")
    assert pure.p_correct > mixed.p_correct
    assert mixed.decision == Decision.FLAG
    assert any(r.startswith("coin 4 looks like t0009") for r in mixed.reasons)
    assert mixed.coins[3].suspicious and not mixed.coins[0].suspicious
    for v in (pure, mixed):
        assert v.n_coins == 6
        assert sum(c.attention for c in v.coins) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= v.p_correct <= 1.0
        assert v.model_version.startswith("verdict-")
        assert {"embed", "search", "pool", "vote", "total"} <= set(v.timings_ms)
    assert pure.coins[1].matches[0].type_id == "t0000"


def test_only_the_shared_obverse_is_flagged_with_a_reason(pipeline: Pipeline) -> None:
    v = pipeline.run_crops([reference_image("t0001", Side.OBVERSE)] * 5, "t0001")
    assert v.decision == Decision.FLAG
    assert "only the shared obverse is visible — turn coins 1, 2, 3, 4, 5 over" in v.reasons


def test_one_coin_on_the_shared_obverse_is_named_and_the_cup_flagged(pipeline: Pipeline) -> None:
    crops = _cup("t0000")
    crops[2] = reference_image("t0000", Side.OBVERSE)
    v = pipeline.run_crops(crops, "t0000")
    assert v.decision == Decision.FLAG
    assert v.p_correct == 0.0
    assert "coin 3 shows the shared obverse — turn it over" in v.reasons
    # turning it may settle the cup: the operator turns it and checks again, the turning reason first
    assert v.turn_first and v.reasons[0] == "coin 3 shows the shared obverse — turn it over"
    # beside a foreign object, which no turning removes, the cup goes to a supervisor as it is
    with_object = pipeline.run_crops(crops, "t0000", n_objects=1)
    assert not with_object.turn_first and with_object.reasons[0] == "object 7 is not a coin"
    assert "coin 3 shows the shared obverse — turn it over" in with_object.reasons
    # nothing to turn: nothing to try first
    mixed = _cup("t0000")
    mixed[3] = reference_image("t0009", Side.REVERSE)
    assert not pipeline.run_crops(mixed, "t0000").turn_first


def test_empty_cup_and_too_few_coins(pipeline: Pipeline) -> None:
    empty = pipeline.run_crops([], "t0000")
    assert empty.decision == Decision.FLAG and empty.reasons[0] == "no coins found" and empty.n_coins == 0
    assert pipeline.voter.min_coins == 1 and pipeline.preprocess.min_coins == 2  # a bundle's setting the rule overrides
    one = pipeline.run_crops([reference_image("t0000", Side.OBVERSE)], "t0000")
    # a single coin may pass: it is flagged for its shared side alone, and told to turn it first
    assert one.decision == Decision.FLAG and "too few coins visible" not in one.reasons and one.turn_first


def test_a_bundle_whose_rule_needs_three_coins_flags_a_two_coin_cup(parts: tuple[Bundle, Gallery, Embedder]) -> None:
    bundle, gallery, embedder = parts
    assert bundle.pass_min_coins == 1
    any_cup = Pipeline.from_parts(bundle, gallery, embedder=embedder)
    three_up = Pipeline.from_parts(replace(bundle, pass_min_coins=3), gallery, embedder=embedder)
    assert three_up.voter.min_coins == 3
    assert any_cup.run_crops(_cup("t0010", 2), "t0010").decision == Decision.PASS
    two = three_up.run_crops(_cup("t0010", 2), "t0010")
    assert two.decision == Decision.FLAG and two.p_correct == 0.0
    assert "too few coins visible" in two.reasons
    assert three_up.run_crops(_cup("t0010", 3), "t0010").decision == Decision.PASS


def test_a_cup_of_another_count_than_the_order_is_flagged_whatever_its_coins(pipeline: Pipeline) -> None:
    cup = _cup("t0000")
    assert pipeline.run_crops(cup, "t0000").decision == Decision.PASS
    right = pipeline.run_crops(cup, "t0000", expected_count=6)
    assert right.decision == Decision.PASS and right.reasons == () and not right.count_is_wrong
    short = pipeline.run_crops(cup, "t0000", expected_count=7)
    assert short.decision == Decision.FLAG and short.count_is_wrong and not short.turn_first
    assert short.reasons == ("6 coins seen, the order is for 7: 1 short, or hidden under others — spread them out",)
    assert short.p_correct == right.p_correct  # the type evidence is the same; only the count stops the cup
    over = pipeline.run_crops(cup, "t0000", expected_count=5, n_objects=1)  # an object is not a coin
    assert over.reasons[0] == "6 coins seen, the order is for 5: 1 too many"
    assert "object 7 is not a coin" in over.reasons
    turned = cup[:]
    turned[2] = reference_image("t0000", Side.OBVERSE)  # a coin to turn: counting comes first, as a new cup
    wrong = pipeline.run_crops(turned, "t0000", expected_count=1)
    assert wrong.reasons[0].startswith("6 coins seen") and not wrong.turn_first
    assert any("shared obverse" in r for r in wrong.reasons)
    with pytest.raises(ValueError, match="at least one coin"):
        pipeline.run_crops(cup, "t0000", expected_count=0)


def test_unknown_type_raises_before_any_work(pipeline: Pipeline) -> None:
    with pytest.raises(UnknownTypeError, match="t9999"):
        pipeline.run_crops(_cup("t0000"), "t9999")
    assert issubclass(UnknownTypeError, ValueError)


class PastedCoins:
    """An instance source for a frame whose coins were pasted at known places (stands in for the detector)."""

    def __init__(self, boxes: list[tuple[int, int, int]], objects: int = 0) -> None:
        self.boxes = boxes
        self.objects = objects

    def detect(self, frame: Frame) -> list[CoinInstance]:
        out = []
        for k, (x, y, s) in enumerate(self.boxes):
            yy, xx = np.mgrid[0:s, 0:s]
            mask = (xx - (s - 1) / 2) ** 2 + (yy - (s - 1) / 2) ** 2 <= (s / 2) ** 2
            out.append(
                CoinInstance(
                    bbox=np.array([x, y, x + s, y + s], np.float32),
                    mask=mask,
                    mask_origin=(x, y),
                    confidence=0.9,
                    center=(x + s / 2, y + s / 2),
                    axes=(float(s), float(s)),
                    diameter_mm=25.0,
                    is_coin=k < len(self.boxes) - self.objects,
                )
            )
        return out


def test_run_on_a_frame_cuts_embeds_and_reports_objects(pipeline: Pipeline) -> None:
    crops = _cup("t0009", 4)
    frame = np.zeros((300, 300, 3), np.uint8)
    boxes = []
    for k, c in enumerate(crops):
        x, y = 10 + 140 * (k % 2), 10 + 140 * (k // 2)
        frame[y : y + 128, x : x + 128] = c
        boxes.append((x, y, 128))
    clean = pipeline.with_threshold(pipeline.threshold)
    clean.detector = PastedCoins(boxes)
    v = clean.run(Frame(image=frame), "t0009")
    assert v.n_coins == 4 and v.coins[2].bbox == (10.0, 150.0, 138.0, 278.0)
    assert {"detect", "crop", "embed"} <= set(v.timings_ms)
    assert all(c.matches[0].type_id in ("t0009", "t0010") for c in v.coins)
    with_object = pipeline.with_threshold(pipeline.threshold)
    with_object.detector = PastedCoins(boxes, objects=1)
    w = with_object.run(Frame(image=frame), "t0009")
    assert w.decision == Decision.FLAG
    assert "object 4 is not a coin" in w.reasons
    assert not w.coins[3].is_coin and w.coins[3].matches == ()
    assert w.n_coins == 3 and len(w.coins) == 4  # the object is shown, and not counted as a coin


def test_what_differs_from_the_empty_tray_where_nothing_was_found_flags_the_cup(pipeline: Pipeline) -> None:
    crops = _cup("t0009", 4)
    rng = np.random.default_rng(5)
    tray = np.clip(rng.normal(90, 4, (300, 300, 3)), 0, 255).astype(np.uint8)
    frame = tray.copy()
    boxes = []
    for k, c in enumerate(crops[:3]):
        x, y = 10 + 140 * (k % 2), 10 + 140 * (k // 2)
        disc = _disc_mask(128, 128)
        frame[y : y + 128, x : x + 128][disc] = c[disc]
        boxes.append((x, y, 128))
    checked = pipeline.with_threshold(pipeline.threshold)
    checked.detector = PastedCoins(boxes)
    checked.empty_tray = tray
    v = checked.run(Frame(image=frame), "t0009")
    assert v.unchecked == () and not any("empty tray" in r for r in v.reasons)
    assert "foreground" in v.timings_ms
    # a fourth coin the detector does not report
    disc = _disc_mask(128, 128)
    frame[150:278, 150:278][disc] = crops[3][disc]
    w = checked.run(Frame(image=frame), "t0009")
    assert len(w.unchecked) == 1, (w.unchecked, w.reasons, w.p_correct)
    assert w.decision == Decision.FLAG
    x1, y1, x2, y2 = w.unchecked[0]
    assert abs((x1 + x2) / 2 - 214) < 20 and abs((y1 + y2) / 2 - 214) < 20
    assert any(r.startswith("something at (21") and "empty tray" in r for r in w.reasons), w.reasons
    # a photo of another size than the empty-tray photo (the camera set up otherwise) is not compared with the
    # tray, and is flagged for it
    other = checked.with_threshold(checked.threshold)
    other.empty_tray = np.ascontiguousarray(tray[:200])
    assert other.camera_size == (300, 200)
    o = other.run(Frame(image=frame), "t0009")
    assert o.unchecked == () and o.decision == Decision.FLAG and not o.turn_first
    assert o.reasons[0].startswith("the photo is 300×300 pixels, not the 300×200 the station's camera was set up at")
    # without the empty-tray photo nothing is compared
    plain = checked.with_threshold(checked.threshold)
    plain.empty_tray = None
    assert plain.run(Frame(image=frame), "t0009").unchecked == ()


def test_threshold_can_be_rechosen_and_files_are_checked(tmp_path) -> None:
    emb_file = write_tiny_checkpoint(tmp_path / "embedder.pt")
    path, _ = write_bundle(tmp_path, embedder_file=emb_file)
    bundle = load_bundle(path)
    looser = bundle.rechoose(0.95)
    assert looser.can_pass and bundle.threshold.can_pass
    assert looser.threshold <= bundle.threshold.threshold
    assert bundle.threshold.target == 0.995 and bundle.threshold.n_calibration == 1500
    (tmp_path / "voter.txt").write_text((tmp_path / "voter.txt").read_text() + "\n")
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(path)


def test_wrong_embedder_is_refused(pipeline: Pipeline, tmp_path) -> None:
    from models.embedder import Embedder

    ckpt = dict(tiny_checkpoint())
    ckpt["state_dict"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    ckpt["version"] = "other-version"
    other = Embedder.from_checkpoint(ckpt)
    emb_file = write_tiny_checkpoint(tmp_path / "embedder.pt")
    path, _ = write_bundle(tmp_path, embedder_file=emb_file)
    with pytest.raises(BundleError, match="retrain the voter"):
        Pipeline.from_parts(load_bundle(path), pipeline.gallery, embedder=other)
    assert math.isfinite(pipeline.threshold.threshold)


def test_a_bundle_trained_on_another_feature_set_is_refused(pipeline: Pipeline, tmp_path) -> None:
    import json

    from models.bundle import FEATURE_SET

    emb_file = write_tiny_checkpoint(tmp_path / "embedder.pt")
    path, embedder = write_bundle(tmp_path, embedder_file=emb_file)
    assert json.loads(path.read_text())["feature_set"] == FEATURE_SET == load_bundle(path).feature_set
    Pipeline.from_parts(load_bundle(path), pipeline.gallery, embedder=embedder, allow_mismatch=True)
    # a bundle written before feature sets were recorded is set 1, whose template features meant something else
    doc = json.loads(path.read_text())
    del doc["feature_set"]
    path.write_text(json.dumps(doc))
    old = load_bundle(path)
    assert old.feature_set == 1
    with pytest.raises(BundleError, match=r"set 1.*train the voter again"):
        Pipeline.from_parts(old, pipeline.gallery, embedder=embedder, allow_mismatch=True)


def test_a_declared_lookalike_keeps_a_pure_cup_from_passing(
    pipeline: Pipeline, parts: tuple[Bundle, Gallery, Embedder]
) -> None:
    bundle, gallery, embedder = parts
    plain = pipeline.run_crops(_cup("t0000"), "t0000")
    catalogue = {"t0000": TypeInfo("t0000", "t0000", None, ("t0010",))}
    twins = Pipeline.from_parts(bundle, gallery, embedder=embedder, catalogue=catalogue)
    v = twins.run_crops(_cup("t0000"), "t0000")
    assert plain.decision == Decision.PASS and not any("lookalike" in r for r in plain.reasons)
    assert v.decision == Decision.FLAG and v.p_correct == 0.0 < plain.p_correct
    assert v.reasons[0] == "the type t0000 has a lookalike (t0010) — check the date and mint mark by eye"
    # the pair counts from both sides
    assert twins.run_crops(_cup("t0010"), "t0010").reasons[0].startswith("the type t0010 has a lookalike (t0000)")


def test_a_declared_lookalike_not_enrolled_yet_keeps_a_pure_cup_from_passing(
    pipeline: Pipeline, parts: tuple[Bundle, Gallery, Embedder]
) -> None:
    # a near-twin the catalogue names but no photo of which is enrolled: its coins match the type best, for the
    # gallery has nothing else to match them to, so only the declaration stops its cups
    bundle, gallery, embedder = parts
    assert "t0005" not in pipeline.view.types
    catalogue = {"t0000": TypeInfo("t0000", "t0000", None, ("t0005",))}
    twins = Pipeline.from_parts(bundle, gallery, embedder=embedder, catalogue=catalogue)
    assert pipeline.run_crops(_cup("t0000"), "t0000").decision == Decision.PASS
    v = twins.run_crops(_cup("t0000"), "t0000")
    assert v.decision == Decision.FLAG and v.p_correct == 0.0
    assert v.reasons == ("the type t0000 has a lookalike (t0005) — check the date and mint mark by eye",)
    assert not v.turn_first
    # an enrolled twin is named before one not enrolled
    both = {"t0000": TypeInfo("t0000", "t0000", None, ("t0005", "t0010"))}
    named = Pipeline.from_parts(bundle, gallery, embedder=embedder, catalogue=both).run_crops(_cup("t0000"), "t0000")
    assert named.reasons[0].startswith("the type t0000 has a lookalike (t0010)")
    # the other enrolled types keep their verdicts
    assert twins.run_crops(_cup("t0010"), "t0010").decision == Decision.PASS


def _mixed() -> list[np.ndarray]:
    """A cup of t0000 with another family's coin in fourth place, every coin reverse up: the voter scores it low
    (0.06) but the hard rules let it through."""
    crops = _cup("t0000", 5)
    crops[3] = reference_image("t0009", Side.REVERSE)
    return crops


def test_a_loose_target_never_passes_a_cup_the_voter_scores_under_one_half(
    pipeline: Pipeline, parts: tuple[Bundle, Gallery, Embedder]
) -> None:
    bundle = parts[0]
    loose = pipeline.with_threshold(bundle.rechoose(0.6))
    assert loose.threshold.threshold < 0.001  # what the 60 % target certifies on the toy calibration pairs
    v = loose.run_crops(_mixed(), "t0000")
    assert loose.threshold.threshold < v.p_correct < 0.5
    assert v.decision == Decision.FLAG and v.threshold == 0.5  # the threshold applied, not the one certified
    assert any(r.startswith("coin 4 looks like t0009") for r in v.reasons)
    pure = loose.run_crops(_cup("t0000"), "t0000")
    assert pure.decision == Decision.PASS and pure.p_correct >= 0.5
    # the bundle's own threshold is above the floor: it is the one applied
    own = pipeline.run_crops(_cup("t0000"), "t0000")
    assert own.threshold == bundle.threshold.threshold > 0.5


def _tiny_home(tmp_path: Path) -> tuple[Path, Path]:
    """A home enrolled with the tiny world's types, and a bundle over its tiny embedder."""
    from models.enroll import CATALOG_FILE, save_catalog
    from tests.models.verdict_world import PIPE_TYPES

    emb_file = write_tiny_checkpoint(tmp_path / "bundle" / "embedder.pt")
    bundle_path, embedder = write_bundle(tmp_path / "bundle", embedder_file=emb_file)
    home = tmp_path / "home"
    enrolled_gallery(embedder).save(home / "gallery")
    save_catalog(home / "gallery" / CATALOG_FILE, [TypeInfo(t, t, 25.0) for t in PIPE_TYPES])
    return home, bundle_path


def test_loading_with_a_target_whose_threshold_is_under_the_floor_says_so(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    home, bundle_path = _tiny_home(tmp_path)
    heard: list[str] = []
    loose = Pipeline.load(home, bundle_path, with_detector=False, target_precision=0.6, warn=heard.append)
    assert loose.threshold.floored and heard == [loose.threshold.floor_note()]
    assert "precision 60.00%" in heard[0] and "under the floor 0.5" in heard[0]
    # the station gives no listener: its log says it
    with caplog.at_level("WARNING", logger="models.pipeline"):
        Pipeline.load(home, bundle_path, with_detector=False, target_precision=0.6)
    assert [r.getMessage() for r in caplog.records if r.name == "models.pipeline"] == heard
    # a target whose threshold is above the floor: nothing to say
    Pipeline.load(home, bundle_path, with_detector=False, target_precision=0.995, warn=heard.append)
    assert len(heard) == 1


def test_a_coin_cut_by_the_edge_on_the_shared_obverse_is_named_to_turn_and_said_to_be_cut(pipeline: Pipeline) -> None:
    from models.types import CoinCrop

    crops: list[CoinCrop | np.ndarray] = list(_cup("t0000", 5))
    sliver = reference_image("t0000", Side.OBVERSE)  # lying on the family's shared obverse, and cut
    crops[2] = CoinCrop(sliver, _disc_mask(*sliver.shape[:2]), 2, partial=True)
    v = pipeline.run_crops(crops, "t0000")
    assert v.decision == Decision.FLAG and v.coins[2].shared and v.turn_first
    assert v.reasons == (
        "coin 3 shows the shared obverse — turn it over",
        "coin 3 is cut by the edge of the picture or the cup's rim — bring it into view",
    )
    # the same coin whole: turned over, it settles the cup
    whole = pipeline.run_crops([*crops[:2], sliver, *crops[3:]], "t0000")
    assert whole.coins[2].shared and whole.turn_first
    assert whole.reasons == ("coin 3 shows the shared obverse — turn it over",)


def test_coin_evidence_is_reranked_by_template_when_the_gallery_keeps_signatures(
    parts: tuple[Bundle, Gallery, Embedder],
) -> None:
    bundle, _, embedder = parts
    with_sigs = Pipeline.from_parts(bundle, enrolled_gallery(embedder, templates=True), embedder=embedder)
    assert with_sigs.view.has_templates
    crops = [np.rot90(c, k).copy() for k, c in enumerate(_cup("t0000", 4))]  # any rotation
    verdict = with_sigs.run_crops(crops, "t0000")
    for coin in verdict.coins:
        ranked = [m.score + (m.template or 0.0) for m in coin.matches]
        assert all(m.template is not None for m in coin.matches) and ranked == sorted(ranked, reverse=True)
        assert coin.matches[0].type_id == "t0000"  # the tiny untrained embedder alone gets one of them wrong
        assert coin.matches[0].template is not None and coin.matches[0].template > 0.6
    # the same cup without signatures: embedding order, no template values
    plain = Pipeline.from_parts(bundle, enrolled_gallery(embedder), embedder=embedder).run_crops(crops, "t0000")
    assert all(m.template is None for c in plain.coins for m in c.matches)


class _Versioned:
    """A detector that finds nothing, with a version."""

    def __init__(self, version: str) -> None:
        self.version = version

    def detect(self, frame: Frame) -> list[CoinInstance]:
        return []


def test_a_detector_other_than_the_calibration_one_is_named_as_voiding_the_guarantee(
    parts: tuple[Bundle, Gallery, Embedder],
) -> None:
    bundle, gallery, embedder = parts
    certified = replace(bundle, detector_version="det-1")
    assert Pipeline.from_parts(certified, gallery, embedder=embedder, detector=_Versioned("det-1")).uncertified == ""
    other = Pipeline.from_parts(certified, gallery, embedder=embedder, detector=_Versioned("det-2"))
    assert "det-1" in other.uncertified and "det-2" in other.uncertified and "recalibrate" in other.uncertified
    # certified again on det-2's cuts: the guarantee holds for det-2
    recut = replace(certified, train={**certified.train, "calibration_detector": "det-2"})
    assert Pipeline.from_parts(recut, gallery, embedder=embedder, detector=_Versioned("det-2")).uncertified == ""
    # nothing known about the detector: nothing said
    assert Pipeline.from_parts(bundle, gallery, embedder=embedder, detector=_Versioned("det-2")).uncertified == ""


def test_a_bundle_calibrated_on_true_masks_is_named_uncertified_for_a_detectors_cuts(
    parts: tuple[Bundle, Gallery, Embedder],
) -> None:
    """``cupcheck train voter --instances gt`` certifies the threshold on perfect masks, which no detector cuts."""
    bundle, gallery, embedder = parts
    gt = replace(bundle, train={**bundle.train, "instances": "gt"})
    assert gt.calibration_detector == ""
    warning = Pipeline.from_parts(gt, gallery, embedder=embedder, detector=_Versioned("det-2")).uncertified
    assert "true masks" in warning and "det-2" in warning
    assert "cupcheck train recalibrate --instances detector" in warning
    assert Pipeline.from_parts(gt, gallery, embedder=embedder).uncertified == ""  # crops alone: no detector cuts
    # certified again on det-2's cuts: the guarantee holds for det-2
    recut = replace(gt, train={**gt.train, "calibration_instances": "detector", "calibration_detector": "det-2"})
    assert Pipeline.from_parts(recut, gallery, embedder=embedder, detector=_Versioned("det-2")).uncertified == ""
    # recalibrated on true masks again: still not certified for a detector
    again = replace(gt, train={**gt.train, "calibration_instances": "gt", "calibration_detector": ""})
    assert "true masks" in Pipeline.from_parts(again, gallery, embedder=embedder, detector=_Versioned("d")).uncertified
    # a voter trained on det-2's cuts, then recalibrated on true masks: no longer certified for det-2 either
    trained = replace(bundle, detector_version="det-2", train={**bundle.train, "instances": "detector"})
    assert Pipeline.from_parts(trained, gallery, embedder=embedder, detector=_Versioned("det-2")).uncertified == ""
    regt = replace(trained, train={**trained.train, "calibration_instances": "gt", "calibration_detector": ""})
    assert regt.calibration_detector == ""
    warning = Pipeline.from_parts(regt, gallery, embedder=embedder, detector=_Versioned("det-2")).uncertified
    assert "true masks" in warning and "det-2" in warning


def test_a_coin_whose_matches_put_the_expected_type_first_is_not_named_as_another(tray_world: TrayWorld) -> None:
    """The rival a FLAG names is the one the coin's own matches rank first (cosine and template together, as
    ``identify`` ranks them), not a type that wins on cosine alone."""
    cup = tray_world.stray
    verdict = tray_world.pipeline.run(Frame(cup.image), cup.expected_type)
    assert verdict.decision is Decision.FLAG
    named = {int(m[1]) for r in verdict.reasons if (m := re.match(r"coin (\d+) looks like ", r))}
    for coin in verdict.coins:
        centre = ((coin.bbox[0] + coin.bbox[2]) / 2, (coin.bbox[1] + coin.bbox[3]) / 2)
        if coin.matches[0].type_id == cup.expected_type:  # its matches rank the expected type first
            assert coin.index + 1 not in named and not coin.suspicious, (coin, verdict.reasons)
        if true_type(cup, centre) != cup.expected_type:  # the stray itself is still named
            assert coin.index + 1 in named and coin.suspicious
    assert named


def test_a_coin_plainly_like_another_type_sends_the_cup_to_a_supervisor_as_it_lies(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    crops = _cup("t0000")
    crops[2] = reference_image("t0000", Side.OBVERSE)  # to turn over
    crops[4] = reference_image("t0009", Side.REVERSE)  # another family's own reverse
    monkeypatch.setattr("models.pipeline.TURN_MARGIN", 2.0)  # every lookalike counts as near: turn first
    near = pipeline.run_crops(crops, "t0000")
    assert near.turn_first and near.reasons[0] == "coin 3 shows the shared obverse — turn it over"
    assert any(r.startswith("coin 5 looks like t0009") for r in near.reasons)
    monkeypatch.setattr("models.pipeline.TURN_MARGIN", 0.0)  # every lookalike counts as plain
    plain = pipeline.run_crops(crops, "t0000")
    assert not plain.turn_first and plain.reasons[0].startswith("coin 5 looks like t0009")
    assert "coin 3 shows the shared obverse — turn it over" in plain.reasons


def test_a_frame_of_another_size_than_the_calibration_is_judged_without_it_and_flagged(pipeline: Pipeline) -> None:
    from calibration.camera import CameraCalibration, CupRoi
    from models.detector import Detector
    from models.synth.mint import generate_mint
    from models.synth.scene import SceneAssets, SceneOptions, render_cup

    scene = render_cup(SceneAssets(generate_mint(12, 3)), 3, 0, SceneOptions(image_size=320, max_coins=6))
    h, w = scene.image.shape[:2]
    roi = CupRoi(w / 2, h / 2, 0.45 * w)
    cal = CameraCalibration(px_per_mm=scene.px_per_mm, image_width=w, image_height=h, method="manual", roi=roi)
    station = pipeline.with_threshold(pipeline.threshold)
    station.detector = Detector.load().with_calibration(cal)
    assert station.camera_size == (w, h)
    same = station.run(Frame(image=scene.image), "t0000")
    assert not any("pixels, not the" in r for r in same.reasons)
    assert any(c.is_coin for c in same.coins) and all(c.diameter_mm is not None for c in same.coins if c.is_coin)
    # the webcam came back at another resolution: its ROI and px/mm would be placed and scaled wrongly
    small = np.asarray(cv2.resize(scene.image, (w * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA), np.uint8)
    v = station.run(Frame(image=small), "t0000")
    assert v.decision == Decision.FLAG and not v.turn_first
    assert v.reasons[0] == (
        f"the photo is {w * 3 // 4}×{h * 3 // 4} pixels, not the {w}×{h} the station's camera was set up at — set the "
        "camera back, or calibrate again (cupcheck calibrate); its cup region, millimetres and empty tray were not used"
    )
    coins = [c for c in v.coins if c.is_coin]
    assert len(coins) >= len([c for c in same.coins if c.is_coin]) - 1  # still found, without the geometry
    assert all(c.diameter_mm is None for c in coins)


def test_a_camera_moved_since_its_empty_tray_photo_is_named_and_every_cup_flagged(pipeline: Pipeline) -> None:
    from calibration.camera import CameraCalibration
    from models.detector import Detector
    from models.reasons import ReasonKind, reason_kind
    from models.synth.mint import generate_mint
    from models.synth.scene import SceneAssets, SceneOptions, render_cup

    # a cup on a speckled table (the seed is chosen for it): the surroundings tell the camera's position
    opts = SceneOptions(image_size=320, max_coins=6, empty_reference=True)
    scene = render_cup(SceneAssets(generate_mint(12, 3)), 3, 5, opts)
    assert scene.empty is not None
    h, w = scene.image.shape[:2]
    cal = CameraCalibration(px_per_mm=scene.px_per_mm, image_width=w, image_height=h, method="manual")
    station = pipeline.with_threshold(pipeline.threshold)
    station.detector = Detector.load().with_calibration(cal)
    station.empty_tray = scene.empty
    assert station.setup_view is not None and station.setup_view.features >= 100, "the table lost its texture"
    same = station.run(Frame(image=scene.image), "t0000")
    assert not any("camera has moved" in r for r in same.reasons) and "setup" in same.timings_ms
    assert all(c.diameter_mm is not None for c in same.coins if c.is_coin)
    # the camera knocked 9 px to the right: its empty tray, cup region and millimetres no longer fit
    knocked = camera(scene.image, dx=9.0)
    v = station.run(Frame(image=knocked), "t0000")
    assert v.decision == Decision.FLAG and not v.turn_first and v.unchecked == ()
    # (the synthetic empty-tray photo lies up to 1.5 px off the cup's, as a tray put back does)
    assert re.match(r"the camera has moved since it was set up \(the view: (8|9|10) px right", v.reasons[0])
    assert reason_kind(v.reasons[0]) is ReasonKind.CAMERA
    assert all(c.diameter_mm is None for c in v.coins if c.is_coin)
    # a new empty-tray photo is a new view to compare with (made again, not the old one kept)
    station.empty_tray = camera(scene.empty, dx=9.0)
    assert not any("camera has moved" in r for r in station.run(Frame(image=knocked), "t0000").reasons)
    # without an empty-tray photo, the calibration photo (kept in grey) is the view compared with
    station.empty_tray = None
    station.setup_photo = np.asarray(cv2.cvtColor(scene.empty, cv2.COLOR_BGR2GRAY), np.uint8)
    v = station.run(Frame(image=knocked), "t0000")
    assert v.reasons[0].startswith("the camera has moved since it was set up") and v.unchecked == ()
    assert not any("camera has moved" in r for r in station.run(Frame(image=scene.image), "t0000").reasons)


def test_every_reason_the_pipeline_gives_has_a_kind_the_report_counts(pipeline: Pipeline) -> None:
    """models.reasons recognises reasons by their words: the pipeline's words must keep them."""
    crops = _cup("t0000")
    crops[2] = reference_image("t0000", Side.OBVERSE)
    mixed = _cup("t0000")
    mixed[3] = reference_image("t0009", Side.REVERSE)
    verdicts = {
        ReasonKind.LOOKS_LIKE: pipeline.run_crops(mixed, "t0000"),
        ReasonKind.TURN: pipeline.run_crops([reference_image("t0001", Side.OBVERSE)] * 5, "t0001"),
        ReasonKind.OBJECT: pipeline.run_crops(crops, "t0000", n_objects=1),
        ReasonKind.NO_COINS: pipeline.run_crops([], "t0000"),
        ReasonKind.COUNT: pipeline.run_crops(_cup("t0000"), "t0000", expected_count=7),
    }
    for kind, verdict in verdicts.items():
        kinds = reason_kinds(verdict.reasons)
        assert kind in kinds and ReasonKind.OTHER not in kinds, (kind, verdict.reasons)


def _one_coin_scores(view: GalleryView, embedding: np.ndarray, candidate: str) -> tuple[CoinScores, np.ndarray]:
    v = (embedding / np.linalg.norm(embedding)).astype(np.float32).reshape(1, -1)
    cup = CupCoins(
        embeddings=v,
        confidence=np.ones(1, np.float32),
        partial=np.zeros(1, bool),
        visible=np.ones(1, np.float32),
        diameter_mm=np.full(1, np.nan, np.float32),
        focus=np.full(1, 5.0, np.float32),
    )
    type_best, type_arg = view.type_scores(cup.embeddings)
    return coin_scores(view, cup, view.type_index[candidate], type_best, type_arg), type_arg


def test_a_family_members_own_side_is_named_not_sent_to_be_turned() -> None:
    # a and b share one obverse design; c is of another family. Unit axes: shared obverse, a's reverse, b's
    # reverse, c's two sides.
    e = np.eye(5, dtype=np.float32)
    entries = [
        GalleryEntry("a", Side.OBVERSE, "fam-obv"),
        GalleryEntry("a", Side.REVERSE, "a-rev"),
        GalleryEntry("b", Side.OBVERSE, "fam-obv"),
        GalleryEntry("b", Side.REVERSE, "b-rev"),
        GalleryEntry("c", Side.OBVERSE, "c-obv"),
        GalleryEntry("c", Side.REVERSE, "c-rev"),
    ]
    view = GalleryView(np.stack([e[0], e[1], e[0], e[2], e[3], e[4]]), entries)
    a = view.type_index["a"]
    # b's reverse, faintly like the family's obverse: a matches it only through the obverse it shares with b,
    # which once left b out of the rivals and sent the operator to turn the coin
    scores, type_arg = _one_coin_scores(view, e[2] + 0.1 * e[0], "a")
    assert bool(scores.shared[0]) and int(scores.rival_type[0]) == view.type_index["c"]
    call = call_coin(view, scores, type_arg, a, 0)
    assert view.types[call.rival] == "b" and call.rival_score > 0.99
    assert call.suspicious and call.plain and not call.to_turn
    # the shared obverse itself: nothing to hold against a; turn it over
    scores, type_arg = _one_coin_scores(view, e[0], "a")
    call = call_coin(view, scores, type_arg, a, 0)
    assert call.to_turn and not call.suspicious
    # the obverse with b's reverse a little closer than it: within TURN_MARGIN the side it lies on settles it
    scores, type_arg = _one_coin_scores(view, e[0] + 1.1 * e[2], "a")
    call = call_coin(view, scores, type_arg, a, 0)
    assert call.to_turn and not call.plain


def _gallery_without(gallery: Gallery, drop: set[tuple[str, Side]]) -> Gallery:
    """``gallery`` less the references of the ``(type, side)`` pairs in ``drop``."""
    vectors, ids = gallery.vectors()
    entries = gallery.entries
    keep = [k for k, i in enumerate(ids) if (entries[i].type_id, entries[i].side) not in drop]
    out = Gallery(gallery.dim, gallery.embedder_version)
    out.add(vectors[keep], [entries[ids[k]] for k in keep])
    return out


def test_a_declared_family_obverse_proves_nothing_while_one_member_is_enrolled(
    parts: tuple[Bundle, Gallery, Embedder],
) -> None:
    """t0009 and t0010 share the obverse f001-obv. With t0010 not enrolled, t0009 alone shows it, and a cup of
    t0010 lying obverse up was judged as if that face were t0009's own; its catalogue names the design shared."""
    bundle, gallery, embedder = parts
    lone = _gallery_without(gallery, {("t0010", Side.OBVERSE), ("t0010", Side.REVERSE)})
    cup = [reference_image("t0010", Side.OBVERSE)] * 5
    undeclared = Pipeline.from_parts(bundle, lone, embedder=embedder).run_crops(cup, "t0009")
    catalogue = {"t0009": TypeInfo("t0009", "t0009", None, obverse_design="f001-obv")}
    declared = Pipeline.from_parts(bundle, lone, embedder=embedder, catalogue=catalogue)
    v = declared.run_crops(cup, "t0009")
    assert undeclared.p_correct > 0.0  # the face counted as t0009's own: only the voter stood in the way
    assert v.decision == Decision.FLAG and v.p_correct == 0.0
    assert "only the shared obverse is visible — turn coins 1, 2, 3, 4, 5 over" in v.reasons
    assert declared.view.missing_own_side(declared.view.type_index["t0009"]) is None  # its reverse is its own


def test_a_type_enrolled_on_its_shared_side_alone_is_sent_to_be_enrolled_not_turned_again(
    parts: tuple[Bundle, Gallery, Embedder],
) -> None:
    bundle, gallery, embedder = parts
    pipe = Pipeline.from_parts(bundle, _gallery_without(gallery, {("t0001", Side.REVERSE)}), embedder=embedder)
    said = "the type t0001 has no side of its own enrolled, no reverse photos — no coin can prove it: enrol its reverse"
    for side in (Side.REVERSE, Side.OBVERSE):  # turned over or not, nothing can prove it
        v = pipe.run_crops([reference_image("t0001", side)] * 4, "t0001")
        assert v.decision == Decision.FLAG and v.p_correct == 0.0
        assert v.reasons[0] == said and not v.turn_first, v.reasons
        assert not any("turn" in r for r in v.reasons)


def _hidden(crop: np.ndarray, share: float) -> CoinCrop:
    """``crop`` with only the left ``share`` of its disc in view (the rest under another coin)."""
    mask = _disc_mask(*crop.shape[:2])
    mask[:, int(crop.shape[1] * share) :] = False
    return CoinCrop(crop, mask, 0)


def test_a_coin_mostly_hidden_under_others_is_said_to_be_hidden_not_to_look_like_another_type(
    pipeline: Pipeline,
) -> None:
    """What shows of a coin under others matches whatever it resembles: on rendered cups, coins of the expected type
    38-85 % hidden were said to look like other types."""
    crops: list[CoinCrop | np.ndarray] = list(_cup("t0000", 5))
    crops[3] = _hidden(reference_image("t0009", Side.REVERSE), 0.45)
    v = pipeline.run_crops(crops, "t0000")
    assert v.decision == Decision.FLAG and v.coins[3].suspicious
    assert v.reasons[0] == "coin 4 is mostly hidden under others — spread the coins out"
    assert not any("looks like" in r for r in v.reasons)
    assert ReasonKind.CUT in reason_kinds(v.reasons) and ReasonKind.OTHER not in reason_kinds(v.reasons)
    # the same coin in plain view is named, with the type its matches list first
    whole = pipeline.run_crops([*crops[:3], reference_image("t0009", Side.REVERSE), crops[4]], "t0000")
    assert whole.reasons[0] == f"coin 4 looks like t0009 ({whole.coins[3].matches[0].score:.2f})"
    assert whole.p_correct == v.p_correct and whole.turn_first == v.turn_first


def test_a_score_under_the_threshold_is_said_beside_a_cut_coin_when_the_rules_allow_the_cup(
    pipeline: Pipeline,
) -> None:
    """A cut coin is no reason the rules refuse a cup: a FLAG naming it alone would hide what decided it."""
    crops: list[CoinCrop | np.ndarray] = list(_mixed())
    intruder = crops[3]
    assert isinstance(intruder, np.ndarray)
    crops[3] = CoinCrop(intruder, _disc_mask(*intruder.shape[:2]), 3, partial=True)
    v = pipeline.run_crops(crops, "t0000")
    assert v.decision == Decision.FLAG and v.p_correct < v.threshold
    d = score_decimals(v.p_correct, v.threshold)
    assert v.reasons == (
        "coin 4 is cut by the edge of the picture or the cup's rim — bring it into view",
        f"not sure enough: p_correct {v.p_correct:.{d}f} is below the threshold {v.threshold:.{d}f}",
    )
    # where the rules refuse the cup (a coin on the shared obverse), its score decided nothing: not said
    crops[1] = reference_image("t0000", Side.OBVERSE)
    refused = pipeline.run_crops(crops, "t0000")
    assert refused.p_correct == 0.0 and not any(r.startswith("not sure enough") for r in refused.reasons)


def test_a_coin_on_another_familys_shared_obverse_is_said_to_show_it_and_marked_shared(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """t0009 and t0010 share the obverse f001-obv, which t0000 does not show: a coin on it is one of the family,
    whichever member its cosine happens to favour."""
    crops = _cup("t0000", 5)
    crops[4] = reference_image("t0009", Side.OBVERSE)
    monkeypatch.setattr("models.pipeline.TURN_MARGIN", 0.0)  # beaten at all: named, not sent to be turned
    v = pipeline.run_crops(crops, "t0000")
    assert v.decision == Decision.FLAG and not v.turn_first
    assert v.reasons[0] == "coin 5 shows the shared obverse of t0009 and t0010 — not t0000"
    assert reason_kinds(v.reasons) == {ReasonKind.LOOKS_LIKE}
    assert [c.shared for c in v.coins] == [False, False, False, False, True]
    # beside a coin to turn first, only the coins to turn are marked (the station turns the marked coins)
    monkeypatch.setattr("models.pipeline.TURN_MARGIN", 2.0)
    crops[2] = reference_image("t0000", Side.OBVERSE)
    turned = pipeline.run_crops(crops, "t0000")
    assert turned.turn_first and [c.shared for c in turned.coins] == [False, False, True, False, True]


def test_the_type_a_reason_names_is_the_one_the_coins_matches_list_first(tray_world: TrayWorld) -> None:
    """The reason and the coin's listed matches (the JSON's ``match``, the coin strip's caption) come from one
    ranking, cosine and template together: a cup of t0001 with two t0004 coins, the first of which the cosine alone
    put nearer t0008 (0.94)."""
    cup = render_cup(SceneAssets(tray_world.mint), CUP_SEED, 7, tray_options(CupKind.CONTAMINATED, 1.0))
    verdict = tray_world.pipeline.run(Frame(cup.image), cup.expected_type)
    assert cup.expected_type == "t0001" and verdict.decision is Decision.FLAG
    named = [m for r in verdict.reasons if (m := re.match(r"coin (\d+) looks like (\S+) \(([\d.]+)\)$", r))]
    assert len(named) == 2
    for m in named:
        first = verdict.coins[int(m[1]) - 1].matches[0]
        assert (m[2], m[3]) == (first.type_id, f"{first.score:.2f}"), verdict.reasons
    assert named[0][2] == "t0004"


def test_a_target_the_model_cannot_certify_is_warned_of_with_the_highest_it_can(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    home, bundle_path = _tiny_home(tmp_path)
    heard: list[str] = []
    strict = Pipeline.load(home, bundle_path, with_detector=False, target_precision=0.999, warn=heard.append)
    assert not strict.threshold.can_pass  # 1500 calibration pairs cannot show 99.9 %
    (note,) = heard
    m = re.fullmatch(
        r"a PASS precision of 99\.9 % cannot be certified by this model: its 1500 calibration pairs certify at most "
        r"([\d.]+) %, so every cup goes to a person; ask for ([\d.]+) or less",
        note,
    )
    assert m, note
    best = float(m[2])
    assert float(m[1]) == pytest.approx(best * 100)
    bundle = load_bundle(bundle_path)
    assert bundle.rechoose(best).can_pass and not bundle.rechoose(best + 0.0002).can_pass
    v = strict.run_crops(_cup("t0000"), "t0000")
    assert v.decision == Decision.FLAG
    assert v.reasons == ("99.9 % cannot be certified by this model: every cup goes to a person",)
    assert reason_kinds(v.reasons) == {ReasonKind.NO_THRESHOLD}
    # the station gives no listener: its log says it
    with caplog.at_level("WARNING", logger="models.pipeline"):
        Pipeline.load(home, bundle_path, with_detector=False, target_precision=0.999)
    assert [r.getMessage() for r in caplog.records if r.name == "models.pipeline"] == heard


def test_a_target_stopped_by_a_tie_is_told_of_the_stricter_one_that_certifies() -> None:
    # 350 pairs tied at 0.99 holding one error stop 99 %; 99.5 % needs 598 before it can be tested and starts past them
    scores = np.r_[np.full(350, 0.99), np.full(2000, 0.98), np.full(500, 0.01)]
    correct = np.r_[np.arange(350) > 0, np.ones(2000, bool), np.zeros(500, bool)]
    certified = choose_threshold(scores, correct, target=0.995, delta=0.05)
    bundle = replace(load_bundle(), cal_scores=scores, cal_correct=correct, threshold=certified)
    bundle = bundle.with_threshold(bundle.rechoose(0.99))
    assert not bundle.threshold.can_pass and bundle.rechoose(0.995).can_pass
    top = certifiable_precision(bundle)
    assert top is not None and top > 0.995 and bundle.rechoose(top).can_pass
    m = re.fullmatch(
        r"a PASS precision of 99 % cannot be certified by this model: its 2850 calibration pairs certify ([\d.]+) % "
        r"below it and ([\d.]+) % above it \(a stricter target's test starts at a looser threshold, past the pairs "
        r"that stop this one\), so every cup goes to a person; ask for ([\d.]+) or ([\d.]+)",
        uncertifiable_note(bundle),
    )
    assert m, uncertifiable_note(bundle)
    below, above = float(m[3]), float(m[4])
    assert float(m[1]) == pytest.approx(below * 100) and float(m[2]) == pytest.approx(above * 100)
    assert below < 0.99 < 0.995 < above
    assert bundle.rechoose(below).can_pass and bundle.rechoose(above).can_pass
    assert not bundle.rechoose(below + 0.0001).can_pass and not bundle.rechoose(above + 0.0001).can_pass
