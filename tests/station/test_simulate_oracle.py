"""The oracle supervisor of ``simulate-day`` rules each box by the coin covering most of it, never by the pixel under
its centre, and never confirms a cup that holds anything but its ordered type: cup 1142 of the seed-7 day (seven
coins, one t0000 in a t0011 order, its box centre lying on a t0011 coin on top) was confirmed, and learnt clean."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from db.repository import VerdictRepository
from db.schema import LabelKind, Role
from models.features import CupCoins
from models.retrain import LabelledCup
from models.synth.mint import generate_mint
from models.synth.scene import CupKind, CupScene, SceneAssets, SceneInstance, SceneOptions, render_cup
from models.types import CoinInstance
from station.retrain_job import holds_unseen
from station.simulate import SUPERVISOR, SUPERVISOR_PIN, OracleRuling, _oracle, covering_item, oracle_rulings
from tests.db.factories import OPERATOR, make_record


def _coins(n: int) -> CupCoins:
    """``n`` whole coins in focus (their embeddings do not matter here)."""
    return CupCoins(
        embeddings=np.zeros((n, 4), np.float32),
        confidence=np.ones(n, np.float32),
        partial=np.zeros(n, bool),
        visible=np.ones(n, np.float32),
        diameter_mm=np.full(n, np.nan, np.float32),
        focus=np.ones(n, np.float32),
    )


@pytest.fixture(scope="module")
def cup1142() -> CupScene:
    """The seed-7 day's cup 1142 (mint of 12 types, seed 7; scenes of seed 8, 90 % reverse up), as rendered there."""
    assets = SceneAssets(generate_mint(12, 7))
    opts = SceneOptions(image_size=480, max_coins=8, reverse_share=0.9, empty_reference=True)
    return render_cup(assets, 8, 1142, opts)


def _box(scene: CupScene, item: SceneInstance, center: tuple[float, float]) -> CoinInstance:
    """A detection of ``item`` as the segmenter gives it: its visible mask in its box, and a centre of our choosing
    (an ellipse fitted to a partly hidden coin can put it on the coin lying on top)."""
    x1, y1, x2, y2 = item.bbox
    mask = scene.mask(item)[y1:y2, x1:x2]
    return CoinInstance(
        bbox=np.array([x1, y1, x2, y2], np.float32),
        mask=mask,
        mask_origin=(x1, y1),
        confidence=0.9,
        center=center,
        axes=(float(x2 - x1), float(y2 - y1)),
    )


def _intruder(scene: CupScene) -> SceneInstance:
    (item,) = [i for i in scene.instances if i.type_id != scene.expected_type]
    return item


def _on_a_coin_on_top(scene: CupScene, item: SceneInstance) -> tuple[float, float]:
    """A pixel of ``item``'s box that another coin covers: where the old oracle read the truth."""
    x1, y1, x2, y2 = item.bbox
    window = scene.labels[y1:y2, x1:x2]
    ys, xs = np.nonzero((window >= 0) & (window != item.label))
    assert len(ys), "no coin lies over the intruder in cup 1142"
    cy, cx = (y1 + y2) / 2, (x1 + x2) / 2
    k = int(np.argmin((ys + y1 - cy) ** 2 + (xs + x1 - cx) ** 2))  # the nearest such pixel to the box centre
    return float(xs[k] + x1), float(ys[k] + y1)


def test_a_box_is_ruled_the_coin_covering_most_of_it_not_the_one_under_its_centre(cup1142: CupScene) -> None:
    scene = cup1142
    assert scene.kind == CupKind.CONTAMINATED and scene.expected_type == "t0011"
    intruder = _intruder(scene)
    assert intruder.type_id == "t0000"
    centre = _on_a_coin_on_top(scene, intruder)
    box = _box(scene, intruder, centre)
    on_top = scene.coin_at(centre)
    assert on_top is not None and on_top.type_id == "t0011"  # what the pixel under the centre says
    covering = covering_item(scene, box)
    assert covering is not None and covering.label == intruder.label
    others = [_box(scene, i, i.center) for i in scene.instances if i is not intruder]
    rulings = oracle_rulings(scene, [*others, box])
    assert rulings[0] == OracleRuling(LabelKind.CORRECTED, None, "t0000")
    assert rulings[-1] == OracleRuling(LabelKind.CORRECTED, len(others), "t0000")
    # every other box is ruled on its own, so none takes the cup's corrected type
    assert rulings[1:-1] == tuple(OracleRuling(LabelKind.CONFIRMED, k) for k in range(len(others)))


def test_a_cup_whose_intruder_no_box_shows_is_ruled_to_hold_it(cup1142: CupScene, tmp_path: Path) -> None:
    """The detector boxed only the t0011 coins: the oracle still says the cup holds t0000 (a wrong cup, as a real
    supervisor who saw the hidden coin would rule it), and every box is t0011."""
    scene = cup1142
    boxes = [_box(scene, i, i.center) for i in scene.instances if i is not _intruder(scene)]
    assert not any(r.kind is LabelKind.CONFIRMED and r.coin_index is None for r in oracle_rulings(scene, boxes))
    repo = VerdictRepository.open(tmp_path)
    try:
        repo.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
        repo.add_operator(OPERATOR, Role.OPERATOR, "1234")
        record = make_record(1, expected=scene.expected_type, top_types=(scene.expected_type,) * len(boxes))
        cup_id = repo.cup_of_verdict(repo.log_verdict(record))
        _oracle(repo, cup_id, scene, boxes)
        export = repo.training_export()
    finally:
        repo.engine.dispose()
    (cup,) = export.cups
    assert cup.label is LabelKind.CORRECTED and cup.true_type == "t0000"
    types = [c.true_type for c in export.coins]
    assert types == [scene.expected_type] * len(boxes)  # each box its own ruling: none inherits t0000
    # the retrain learns it as no clean cup of t0011, though every coin it can see is one
    assert holds_unseen(cup, [t for t in types if t is not None])
    seen = LabelledCup(cup.cup_id, cup.expected_type, _coins(len(boxes)), tuple(types))
    assert seen.correct_for(scene.expected_type)
    assert not dataclasses.replace(seen, holds_unseen=True).correct_for(scene.expected_type)


def test_a_pure_cup_is_still_confirmed(cup1142: CupScene) -> None:
    assets = SceneAssets(generate_mint(12, 7))
    opts = SceneOptions(image_size=256, max_coins=4, kind_weights={CupKind.PURE: 1.0})
    scene = render_cup(assets, 8, 3, opts)
    boxes = [_box(scene, i, i.center) for i in scene.instances]
    assert oracle_rulings(scene, boxes) == (OracleRuling(LabelKind.CONFIRMED),)
