"""Label-error ranking with cleanlab: flipped rulings rank first."""

from __future__ import annotations

import numpy as np
import pytest

from models.label_quality import rank_label_issues


def test_flipped_labels_rank_first() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(200) < 0.5
    p = np.where(truth, rng.uniform(0.75, 0.99, 200), rng.uniform(0.01, 0.25, 200))
    labels = truth.copy()
    flipped = [3, 50, 120]
    labels[flipped] = ~labels[flipped]
    issues = rank_label_issues(list(range(200)), labels, p)
    assert {i.cup_id for i in issues[:3]} == set(flipped)
    assert [i.rank for i in issues[:3]] == [1, 2, 3]
    flagged = {i.cup_id for i in issues if i.flagged}
    assert len(flagged) >= 2 and flagged <= set(flipped)  # cleanlab's pruning flags the clearest ones only
    assert issues[0].quality < issues[-1].quality


def test_edge_cases() -> None:
    assert rank_label_issues([], [], []) == []
    one_class = rank_label_issues([1, 2, 3], [True, True, True], [0.9, 0.02, 0.1])
    assert [i.cup_id for i in one_class] == [2, 3, 1] and [i.flagged for i in one_class] == [True, False, False]
    with pytest.raises(ValueError, match="differ in length"):
        rank_label_issues([1], [True, False], [0.5, 0.5])


@pytest.mark.parametrize("ruling", [True, False])
def test_a_wrong_ruling_is_flagged_on_a_night_of_one_ruling_only(ruling: bool) -> None:
    """Every ruling "confirmed" (or every one "corrected"): cleanlab cannot prune without both, and flagged nothing,
    so a contaminated cup confirmed by mistake (p 0.001) ranked first but never became a suspect."""
    rng = np.random.default_rng(1)
    p_label = rng.uniform(0.95, 0.999, 40)  # the model's probability of each cup's own ruling
    p_label[7] = 0.001  # cup 7: ruled by mistake, the model is sure of the other ruling
    p = p_label if ruling else 1.0 - p_label
    issues = rank_label_issues(list(range(40)), np.full(40, ruling), p)
    assert issues[0].cup_id == 7 and issues[0].quality == pytest.approx(0.001)
    assert [i.cup_id for i in issues if i.flagged] == [7]  # the cut-off: the model is nearly sure of the other


def test_where_cleanlab_cannot_prune_only_a_ruling_the_model_is_nearly_sure_is_wrong_is_flagged() -> None:
    """Both rulings present, yet too few to estimate the noise from (three): the cut-off stands in, and a clean cup
    the voter merely doubted (p 0.2) is what the night learns from, not a suspect."""
    issues = rank_label_issues([1, 2, 3], [True, True, False], [0.01, 0.2, 0.1])
    assert [(i.cup_id, i.flagged) for i in issues] == [(1, True), (2, False), (3, False)]
