"""(cup, candidate type) pairs, their truth, and the voter's feature table over them.

A pure cup with its own type is correct; the same cup with its near-twin, a family member sharing its obverse, or a
random type is wrong; contaminated, obverse-only, foreign-object and empty cups are wrong for their expected type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from models.features import FEATURES, TEMPLATE_FEATURES, TemplateScorer, feature_vector, pair_evidence
from models.gallery_view import GalleryView
from models.pooling import SetPooler
from models.synth.mint import Mint
from models.train.cup_cache import CupCache

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Pair:
    """One (cup, candidate) pair.

    Attributes:
        cup: cup index in the cache.
        candidate: candidate type id.
        correct: the cup is pure and of the candidate type.
        kind: the cup's kind.
        relation: ``"true"`` (the cup's expected type), ``"twin"``, ``"family"`` or ``"random"`` (a wrong
            candidate for a pure cup); for contaminated cups the contaminant relation is in ``contaminant``.
        contaminant: the manifest's contaminant relation (contaminated cups), else ``""``.
    """

    cup: int
    candidate: str
    correct: bool
    kind: str
    relation: str
    contaminant: str = ""


def pair_group(p: Pair) -> str:
    """The kind of pair a report counts ``p`` under: ``pure``, ``contaminated (<intruder>)``, another cup kind, or
    ``pure, wrong candidate (<relation>)``."""
    if p.relation != "true":
        return f"pure, wrong candidate ({p.relation})"
    if p.kind == "contaminated":
        return f"contaminated ({p.contaminant or 'unknown'})"
    return p.kind


def make_pairs(
    cache: CupCache,
    mint: Mint,
    *,
    seed: int = 0,
    wrong_candidates: bool = True,
    splits: Sequence[str] | None = None,
    extra_negatives: int = 0,
) -> list[Pair]:
    """Every cup with its expected type, plus wrong candidates (twin, family member, random) for pure cups.

    Args:
        cache: the cups.
        mint: their catalogue.
        seed: seed of the random choices.
        wrong_candidates: add the wrong candidates of pure cups.
        splits: only cups of these splits (``None``: all).
        extra_negatives: for training: this many more family members and random types per pure cup.
    """
    rng = np.random.default_rng(seed)
    ids = [t.id for t in mint.types]
    fam = mint.families()
    pairs: list[Pair] = []
    for i in range(cache.n_cups):
        if splits is not None and str(cache.split[i]) not in splits:
            continue
        kind = str(cache.kind[i])
        exp = str(cache.expected[i]) or ids[int(rng.integers(len(ids)))]
        pairs.append(Pair(i, exp, kind == "pure", kind, "true", str(cache.contaminant[i])))
        if not wrong_candidates or kind != "pure":
            continue
        coin = mint.by_id(exp)
        if coin.twin_of:
            pairs.append(Pair(i, coin.twin_of, False, kind, "twin"))
        members = [t for t in fam.get(coin.family, ()) if t not in (exp, coin.twin_of)]
        if members:
            picks = rng.permutation(len(members))[: 1 + extra_negatives]
            pairs.extend(Pair(i, members[int(k)], False, kind, "family") for k in picks)
        for _ in range(1 + extra_negatives):
            other = ids[int(rng.integers(len(ids)))]
            if other != exp:
                pairs.append(Pair(i, other, False, kind, "random"))
    return pairs


@dataclass
class PairTable:
    """Features of many pairs.

    Attributes:
        pairs: the pairs.
        x: ``(n, len(FEATURES))`` float64.
        bags: per-pair ``(n_i, len(COIN_FEATURES))`` per-coin features (the pooler's input).
        extra: per-pair per-coin arrays for the baselines: ``type_best`` rows are not kept; instead
            ``vote_share``, ``softmax``, ``mean_nn`` scores (see :func:`baseline_scores`).
    """

    pairs: list[Pair]
    x: np.ndarray
    bags: list[np.ndarray]
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        """``(n,)`` bool truth."""
        return np.array([p.correct for p in self.pairs], bool)

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """``(n, len(names))`` the named feature columns of :attr:`x` (whose columns are :data:`FEATURES`)."""
        return self.x[:, [FEATURES.index(f) for f in names]]

    @property
    def has_templates(self) -> bool:
        """Whether the template features were measured (some pair has a finite one)."""
        t = self.columns(TEMPLATE_FEATURES)
        return bool(t.size) and bool(np.isfinite(t).any())

    @classmethod
    def concat(cls, parts: Sequence[PairTable]) -> PairTable:
        """One table of every part's pairs, in order (baseline scores kept where every part has them).

        Raises:
            ValueError: no part.
        """
        if not parts:
            raise ValueError("no pair table to join")
        keys = set.intersection(*(set(p.extra) for p in parts))
        return cls(
            pairs=[q for p in parts for q in p.pairs],
            x=np.concatenate([p.x for p in parts]),
            bags=[b for p in parts for b in p.bags],
            extra={k: np.concatenate([p.extra[k] for p in parts]) for k in sorted(keys)},
        )


SOFTMAX_TEMPERATURE = 0.05


def baseline_scores(type_best: np.ndarray, view: GalleryView, cand: int, embeddings: np.ndarray) -> dict[str, float]:
    """Scores of the simple baselines for one pair (higher = more surely the candidate).

    * ``vote``: share of coins whose top type is the candidate (per-crop majority vote);
    * ``softmax``: mean over coins of a softmax over the gallery's per-type similarities (temperature 0.05),
      the candidate's share of the summed softmax;
    * ``mean_nn``: margin of the candidate over the best other type for the mean cup embedding.
    """
    n = type_best.shape[0]
    if n == 0:
        return {"vote": 0.0, "softmax": 0.0, "mean_nn": -2.0}
    top = type_best.argmax(axis=1)
    z = (type_best - type_best.max(axis=1, keepdims=True)) / SOFTMAX_TEMPERATURE
    sm = np.exp(z)
    sm /= sm.sum(axis=1, keepdims=True)
    mean = embeddings.mean(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    mb, _ = view.type_scores(mean.reshape(1, -1).astype(np.float32))
    other = mb[0].copy()
    other[cand] = -4.0
    return {
        "vote": float((top == cand).mean()),
        "softmax": float(sm[:, cand].mean()),
        "mean_nn": float(mb[0, cand] - other.max()) if view.n_types > 1 else float(mb[0, cand]),
    }


def pair_table(
    cache: CupCache,
    view: GalleryView,
    pairs: Sequence[Pair],
    pooler: SetPooler | None,
    *,
    gem_p: float = 3.0,
    progress: bool = True,
    desc: str = "features",
) -> PairTable:
    """Compute the features (and baseline scores) of every pair."""
    rows = []
    bags = []
    extra: dict[str, list[float]] = {"vote": [], "softmax": [], "mean_nn": []}
    by_cup: dict[int, list[int]] = {}
    for k, p in enumerate(pairs):
        by_cup.setdefault(p.cup, []).append(k)
    out_rows: list[np.ndarray | None] = [None] * len(pairs)
    out_bags: list[np.ndarray | None] = [None] * len(pairs)
    out_extra: list[dict[str, float] | None] = [None] * len(pairs)
    for cup, ks in tqdm(by_cup.items(), desc=desc, unit="cup", disable=not progress):
        coins = cache.coins(cup)
        tb, ta = view.type_scores(coins.embeddings)
        templates = TemplateScorer.for_cup(view, coins)
        for k in ks:
            cand = view.type_index.get(pairs[k].candidate)
            if cand is None:
                raise KeyError(f"candidate {pairs[k].candidate} is not in the gallery")
            ev = pair_evidence(view, coins, cand, pooler, gem_p=gem_p, type_best=tb, type_arg=ta, templates=templates)
            out_rows[k] = feature_vector(ev.features)
            out_bags[k] = ev.scores.features
            out_extra[k] = baseline_scores(tb, view, cand, coins.embeddings)
    for k in range(len(pairs)):
        r, b, e = out_rows[k], out_bags[k], out_extra[k]
        assert r is not None and b is not None and e is not None
        rows.append(r)
        bags.append(b)
        for name in extra:
            extra[name].append(e[name])
    x = np.stack(rows) if rows else np.zeros((0, len(FEATURES)))
    return PairTable(list(pairs), x, bags, {k: np.asarray(v) for k, v in extra.items()})


def iter_pair_batches(pairs: Sequence[Pair], size: int) -> Iterator[Sequence[Pair]]:
    """Consecutive slices of ``pairs``."""
    for s in range(0, len(pairs), size):
        yield pairs[s : s + size]
