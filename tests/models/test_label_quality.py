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
    one_class = rank_label_issues([1, 2], [True, True], [0.9, 0.1])
    assert [i.cup_id for i in one_class] == [2, 1] and not any(i.flagged for i in one_class)
    with pytest.raises(ValueError, match="differ in length"):
        rank_label_issues([1], [True, False], [0.5, 0.5])
