"""(cup, candidate) pairs: each cup with its expected type, and the wrong candidates a pure cup is tried against."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from models.synth.mint import generate_mint
from models.train.cup_cache import CupCache
from models.train.pairs import Pair, PairTable, make_pairs


def _cache(cups: list[tuple[str, str, str]]) -> CupCache:
    """A cache of one-coin cups, each ``(kind, expected type, split)``."""
    n = len(cups)
    return CupCache(
        offsets=np.arange(n + 1, dtype=np.int64),
        embeddings=np.eye(n, dtype=np.float32),
        confidence=np.ones(n, np.float32),
        partial=np.zeros(n, bool),
        visible=np.ones(n, np.float32),
        diameter_mm=np.full(n, np.nan, np.float32),
        focus=np.ones(n, np.float32),
        true_type=np.array([e for _, e, _ in cups]),
        cup_id=np.array([f"{i:06d}" for i in range(n)]),
        kind=np.array([k for k, _, _ in cups]),
        expected=np.array([e for _, e, _ in cups]),
        contaminant=np.array(["family" if k == "contaminated" else "" for k, _, _ in cups]),
        split=np.array([s for _, _, s in cups]),
        n_objects=np.zeros(n, np.int64),
        embedder_version="toy",
    )


MINT = generate_mint(40, 3)
TWIN = next(t for t in MINT.types if t.twin_of)


def test_every_cup_is_tried_against_its_type_and_only_a_pure_one_is_right() -> None:
    kinds = ["pure", "contaminated", "obverse_only", "foreign_object", "empty"]
    cache = _cache([(k, TWIN.id, "train") for k in kinds])
    pairs = make_pairs(cache, MINT, seed=0)
    true = [p for p in pairs if p.relation == "true"]
    assert [(p.cup, p.candidate, p.correct, p.kind) for p in true] == [
        (i, TWIN.id, k == "pure", k) for i, k in enumerate(kinds)
    ]
    assert true[1].contaminant == "family"
    # only the pure cup is also tried against wrong candidates, and every one of them is wrong
    wrong = [p for p in pairs if p.relation != "true"]
    assert wrong and {p.cup for p in wrong} == {0} and not any(p.correct for p in wrong)


def test_a_pure_cups_wrong_candidates_are_its_twin_a_family_member_and_another_type() -> None:
    cache = _cache([("pure", TWIN.id, "train")])
    fam = MINT.families()[TWIN.family]
    for seed in range(20):
        pairs = make_pairs(cache, MINT, seed=seed)
        by = {p.relation: p.candidate for p in pairs}
        assert by["twin"] == TWIN.twin_of
        assert by["family"] in fam and by["family"] not in (TWIN.id, TWIN.twin_of)
        assert all(p.candidate != TWIN.id for p in pairs if p.relation == "random")
    extra = Counter(p.relation for p in make_pairs(cache, MINT, seed=0, extra_negatives=2))
    assert extra["twin"] == 1 and extra["family"] == min(3, len(fam) - 2) and 1 <= extra["random"] <= 3


def test_splits_and_wrong_candidates_can_be_left_out() -> None:
    cache = _cache([("pure", TWIN.id, "train"), ("pure", TWIN.id, "val"), ("empty", "", "val")])
    assert {p.cup for p in make_pairs(cache, MINT, splits=["val"])} == {1, 2}
    assert [p.relation for p in make_pairs(cache, MINT, wrong_candidates=False)] == ["true"] * 3
    # an empty cup names no type: it is tried against one drawn from the catalogue, and is wrong
    empty = next(p for p in make_pairs(cache, MINT) if p.cup == 2)
    assert empty.candidate in {t.id for t in MINT.types} and not empty.correct


def test_pair_tables_join_in_order_keeping_the_baselines_every_part_has() -> None:
    def table(n: int, extra: dict[str, np.ndarray]) -> PairTable:
        pairs = [Pair(i, "t", i % 2 == 0, "pure", "true") for i in range(n)]
        return PairTable(pairs, np.full((n, 3), float(n)), [np.zeros((1, 2))] * n, extra)

    a = table(2, {"vote_share": np.ones(2), "softmax": np.ones(2)})
    b = table(3, {"vote_share": np.zeros(3)})
    joined = PairTable.concat([a, b])
    assert len(joined.pairs) == 5 and joined.x[:, 0].tolist() == [2, 2, 3, 3, 3]
    assert list(joined.extra) == ["vote_share"] and joined.extra["vote_share"].tolist() == [1, 1, 0, 0, 0]
    assert joined.y.tolist() == [True, False, True, False, True]
    with pytest.raises(ValueError, match="no pair table"):
        PairTable.concat([])
