"""Which logged labels look wrong: confident-learning scores from cleanlab over the supervisor's rulings.

Each labelled cup's ruling says whether the cup is a clean cup of its expected type; the voter in force gives
``p_correct`` for the same pair. :func:`rank_label_issues` hands both to cleanlab
(:func:`cleanlab.rank.get_label_quality_scores` and :func:`cleanlab.filter.find_label_issues`, self-confidence
ranking) and returns the cups whose rulings most disagree with the model, most suspicious first, so a second
person can look at them before the next retrain learns from them.

cleanlab's pruning estimates how often each ruling is flipped from both rulings seen side by side, so it needs
both (and at least four): on a night whose rulings are all "confirmed" (or all "corrected"), a ruling is flagged
when the model gives it less than :data:`FLAG_BELOW`. Otherwise a cup confirmed by mistake on such a night would
never be a suspect, and its coins could become station references. The cut-off is low on purpose: a clean cup the
voter in force doubted is what the night should learn from, and a suspect's coins are kept out of the station's
references until someone rules on it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FLAG_BELOW = 0.05
"""Where cleanlab's pruning cannot run (one ruling only, or fewer than four), a ruling whose label quality (the
model's probability of that ruling) lies below this is flagged: the model is at least 95 % sure of the other."""


@dataclass(frozen=True)
class LabelIssue:
    """One labelled cup, scored.

    Attributes:
        cup_id: the cup.
        label: the ruling as a bool (the cup is a clean cup of its expected type).
        p_correct: the model's probability for the same.
        quality: cleanlab's label quality in ``[0, 1]`` (low: the label is likely wrong).
        rank: 1 for the most suspicious label.
        flagged: counted among the likely label errors: by cleanlab's pruning, or where that cannot run, by
            ``quality < FLAG_BELOW``.
    """

    cup_id: int
    label: bool
    p_correct: float
    quality: float
    rank: int
    flagged: bool


def rank_label_issues(cup_ids: Sequence[int], labels: npt.ArrayLike, p_correct: npt.ArrayLike) -> list[LabelIssue]:
    """Score every label with cleanlab; most suspicious first.

    Each label is flagged by cleanlab's pruning by noise rate when both rulings are present (and at least four);
    otherwise by the cut-off :data:`FLAG_BELOW` on its quality.

    Args:
        cup_ids: ``(n,)`` the cups.
        labels: ``(n,)`` bool rulings.
        p_correct: ``(n,)`` the model's probabilities, ideally from a model that was not trained on these cups.

    Raises:
        ValueError: mismatched lengths.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(labels, bool).astype(np.int64)
    p = np.clip(np.asarray(p_correct, np.float64), 1e-6, 1 - 1e-6)
    if not (len(cup_ids) == y.size == p.size):
        raise ValueError("cup_ids, labels and p_correct differ in length")
    if y.size == 0:
        return []
    probs = np.stack([1.0 - p, p], axis=1)
    quality = np.asarray(get_label_quality_scores(y, probs, method="self_confidence"), np.float64)
    if y.min() != y.max() and y.size >= 4:  # cleanlab needs both classes to estimate the noise
        flagged = np.asarray(find_label_issues(y, probs, filter_by="prune_by_noise_rate"), bool)
    else:  # one class only, or too few: the model's own view of each ruling, where it is nearly sure
        flagged = quality < FLAG_BELOW
    order = np.argsort(quality, kind="stable")
    return [
        LabelIssue(int(cup_ids[i]), bool(y[i]), float(p[i]), float(quality[i]), r + 1, bool(flagged[i]))
        for r, i in enumerate(order)
    ]
