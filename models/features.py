"""Class-agnostic features of a (cup, candidate type) pair for the voter.

Every feature is measured *relative to the candidate* (its similarity, its margin over the best other type, the
sides and designs its references show, its catalogue diameter) and never names a type, so a type enrolled after
the voter was trained is scored exactly like the types it was trained on.

The gallery is viewed densely (:class:`models.gallery_view.GalleryView`): every reference vector sorted by type,
so one matrix product gives each coin's best similarity to every type and side. A gallery of a few hundred types
and ten references each is a few thousand vectors, a product of microseconds per coin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from models.gallery import TEMPLATE_WEIGHT
from models.gallery_view import NEG, GalleryView
from models.pooling import SetPooler, attention_pool, gem_pool, mean_pool
from models.template import correlate, spectra
from models.types import BoolArray, FloatArray, UInt8Array

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


COIN_FEATURES: tuple[str, ...] = (
    "sim",
    "margin",
    "dmargin",
    "top_is_cand",
    "shared",
    "reverse",
    "partial",
    "visible",
    "confidence",
    "diam_err",
    "diam_known",
    "loo_sim",
)
"""Per-coin features relative to the candidate (the set pooler's input), in column order."""

BASE_FEATURES: tuple[str, ...] = (
    "n_coins",
    "n_objects",
    "partial_share",
    "visible_min",
    "sim_min",
    "sim_q10",
    "sim_q25",
    "sim_med",
    "sim_mean",
    "sim_max",
    "margin_min",
    "margin_q10",
    "margin_med",
    "margin_mean",
    "top_share",
    "n_not_top",
    "dmargin_min",
    "dmargin_q10",
    "dmargin_mean",
    "n_informative",
    "informative_share",
    "informative_sim_min",
    "informative_margin_min",
    "n_proof",
    "proof_share",
    "proof_margin_min",
    "n_unproven",
    "n_obverse",
    "n_reverse",
    "cand_obverse_shared",
    "diam_err_med",
    "diam_err_max",
    "conf_min",
    "conf_mean",
    "focus_min",
    "focus_med",
    "outlier_min",
    "outlier_gap",
    "outlier_sim",
    "cand_confusion",
    "cand_gap",
    "cand_lookalike",
    "cand_declared_lookalike",
)
"""Features of the per-coin evidence alone (no set pooling)."""

POOLED_FEATURES: tuple[str, ...] = (
    "mean_sim",
    "mean_margin",
    "mean_dmargin",
    "gem_sim",
    "gem_margin",
    "att_sim",
    "att_margin",
    "mil_score",
    "att_max",
    "att_entropy",
)
"""Features of the pooled cup embeddings (mean, GeM, gated attention)."""

TEMPLATE_FEATURES: tuple[str, ...] = (
    "tsim_min",
    "tsim_q10",
    "tsim_med",
    "tsim_mean",
    "tmargin_min",
    "tmargin_q10",
    "tmargin_med",
    "tmargin_mean",
    "ttop_share",
    "n_tnot_top",
    "n_tinformative",
    "tinformative_margin_min",
    "n_tproof",
    "tproof_share",
    "n_both_proof",
    "cmargin_min",
    "cmargin_q10",
    "cmargin_med",
    "cmargin_mean",
    "ctop_share",
    "n_cproof",
)
"""Features of the polar template match (:mod:`models.template`) of each coin against the candidate's distinguishing
references and against its rivals' (the types among each coin's :data:`SHORTLIST` best embedding matches, on the
designs the candidate does not show); the ``c*`` features rank by cosine + template, as
:meth:`models.gallery.Gallery.search` does. ``nan`` when the gallery or the cup carries no signatures. What they
measure is feature set :data:`models.bundle.FEATURE_SET` (see :func:`template_features`)."""

SHORTLIST = 5
"""Each coin's best types by embedding whose references the template also compares it with."""

EMBEDDING_FEATURES: tuple[str, ...] = BASE_FEATURES + POOLED_FEATURES
"""Every feature but the template's: what a voter uses when the references carry no signatures."""

FEATURES: tuple[str, ...] = EMBEDDING_FEATURES + TEMPLATE_FEATURES
"""Every feature :func:`pair_evidence` measures, in column order."""


@dataclass(frozen=True)
class CupCoins:
    """What a cup shows, coin by coin (the coins only; non-coin objects are counted).

    Attributes:
        embeddings: ``(n, d)`` float32 unit rows, one per coin.
        confidence: ``(n,)`` float32 detector scores.
        partial: ``(n,)`` bool, cut by the image edge or the cup rim.
        visible: ``(n,)`` float32, visible share of the coin's disc (``1`` unoccluded).
        diameter_mm: ``(n,)`` float32 measured diameters, ``nan`` when the camera is not calibrated.
        focus: ``(n,)`` float32 focus measure (:func:`focus_measure`).
        n_objects: foreign objects found beside the coins (with what differs from the empty tray unexplained).
        signatures: ``(n, *models.template.SIG_SHAPE)`` float32 template signatures, or ``None``.
    """

    embeddings: FloatArray
    confidence: FloatArray
    partial: BoolArray
    visible: FloatArray
    diameter_mm: FloatArray
    focus: FloatArray
    n_objects: int = 0
    signatures: FloatArray | None = None

    @property
    def n(self) -> int:
        """Number of coins."""
        return int(self.embeddings.shape[0])


def focus_measure(image: UInt8Array, mask: BoolArray | None = None) -> float:
    """Sharpness of a crop: ``log1p`` of the variance of its Laplacian inside the (eroded) coin mask.

    Args:
        image: ``(S, S, 3)`` uint8 BGR crop.
        mask: ``(S, S)`` bool coin pixels; ``None`` uses the non-black pixels.

    Returns:
        The measure (``0`` for an empty mask); sharp synthetic crops score about 5-7, blurred ones below 3.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    m = (gray > 0) if mask is None else mask
    inner = cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if inner.sum() < 16:
        return 0.0
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=3)
    return float(math.log1p(float(lap[inner].var())))


def visible_share(mask: BoolArray) -> float:
    """Visible share of a crop's inscribed disc: ``mask`` pixels over the disc's area, clipped to ``[0, 1]``."""
    s = mask.shape[0]
    return float(min(1.0, mask.sum() / (math.pi * s * s / 4.0)))


@dataclass(frozen=True)
class CoinScores:
    """Per-coin evidence for one candidate (arrays of length ``n``).

    Attributes:
        sim: best cosine to the candidate's references.
        margin: ``sim`` minus the best other type's cosine.
        dmargin: ``sim`` minus the best cosine among types that do not share the matched design.
        top_type: index of each coin's best type.
        top_score: its cosine.
        rival_type: index of the best type not sharing the matched design (``-1`` when none).
        rival_score: its cosine.
        side: ``0`` obverse / ``1`` reverse of the candidate's best reference.
        shared: the matched design is shown by other types too.
        loo_sim: cosine of each coin to the mean of the other coins (``1`` for a single coin).
        features: ``(n, len(COIN_FEATURES))`` float32 per-coin feature matrix.
    """

    sim: FloatArray
    margin: FloatArray
    dmargin: FloatArray
    top_type: IntArray
    top_score: FloatArray
    rival_type: IntArray
    rival_score: FloatArray
    side: IntArray
    shared: BoolArray
    loo_sim: FloatArray
    features: FloatArray


def leave_one_out_similarity(embeddings: FloatArray) -> FloatArray:
    """``(n,)`` cosine of each unit row to the (normalised) mean of the other rows; ``1`` when ``n < 2``."""
    n = embeddings.shape[0]
    if n < 2:
        return np.ones(n, np.float32)
    total = embeddings.sum(axis=0, keepdims=True)
    others = total - embeddings
    others /= np.linalg.norm(others, axis=1, keepdims=True).clip(min=1e-12)
    return np.asarray((embeddings * others).sum(axis=1), np.float32)


def coin_scores(
    view: GalleryView,
    coins: CupCoins,
    candidate: int,
    type_best: FloatArray | None = None,
    type_arg: IntArray | None = None,
) -> CoinScores:
    """Score every coin of a cup against one candidate type.

    Args:
        view: the gallery view.
        coins: the cup's coins.
        candidate: the candidate's index in ``view.types``.
        type_best: optional precomputed ``view.type_scores(coins.embeddings)[0]`` (``(n, T)``).
        type_arg: its second element.

    Returns:
        The per-coin evidence.
    """
    if type_best is None or type_arg is None:
        type_best, type_arg = view.type_scores(coins.embeddings)
    n = coins.n
    sim = type_best[:, candidate] if n else np.zeros(0, np.float32)
    others = type_best.copy()
    if n:
        others[:, candidate] = NEG
    best_other = others.max(axis=1) if view.n_types > 1 and n else np.full(n, NEG, np.float32)
    ref = type_arg[:, candidate] if n else np.zeros(0, np.int64)
    side = view.ref_side[ref]
    shared = view.ref_shared[ref]
    sharing = view.design_types[view.ref_design[ref]]  # (n, T): types showing the matched design
    rivals = np.where(sharing, NEG, others)
    if n and view.n_types > 1:
        rival_type = rivals.argmax(axis=1)
        rival_score = rivals[np.arange(n), rival_type]
        rival_type = np.where(rival_score > NEG, rival_type, -1)
    else:
        rival_type = np.full(n, -1, np.int64)
        rival_score = np.full(n, NEG, np.float32)
    top_type = type_best.argmax(axis=1) if n else np.zeros(0, np.int64)
    top_score = type_best.max(axis=1) if n else np.zeros(0, np.float32)
    margin = sim - best_other
    dmargin = sim - rival_score
    loo = leave_one_out_similarity(coins.embeddings)
    cat = view.diameter[candidate]
    known = np.isfinite(coins.diameter_mm) & np.isfinite(cat)
    diam_err = np.zeros(n, np.float32)
    if known.any():
        diam_err[known] = np.abs(coins.diameter_mm[known] - cat) / max(float(cat), 1e-6)
    top_is = (top_type == candidate) | (sharing[np.arange(n), top_type] if n else np.zeros(0, bool))
    feats = (
        np.stack(
            [
                sim,
                np.clip(margin, -2, 2),
                np.clip(dmargin, -2, 2),
                top_is.astype(np.float32),
                shared.astype(np.float32),
                side.astype(np.float32),
                coins.partial.astype(np.float32),
                coins.visible,
                coins.confidence,
                np.clip(diam_err, 0, 1),
                known.astype(np.float32),
                loo,
            ],
            axis=1,
        ).astype(np.float32)
        if n
        else np.zeros((0, len(COIN_FEATURES)), np.float32)
    )
    return CoinScores(
        sim=sim.astype(np.float32),
        margin=margin.astype(np.float32),
        dmargin=dmargin.astype(np.float32),
        top_type=top_type.astype(np.int64),
        top_score=top_score.astype(np.float32),
        rival_type=rival_type.astype(np.int64),
        rival_score=rival_score.astype(np.float32),
        side=side.astype(np.int64),
        shared=shared.astype(bool),
        loo_sim=loo,
        features=feats,
    )


def _q(x: npt.ArrayLike, q: float) -> float:
    a = np.asarray(x, np.float64)
    return float(np.quantile(a, q)) if a.size else math.nan


def _stat(x: npt.ArrayLike, fn: str) -> float:
    a = np.asarray(x, np.float64)
    if a.size == 0:
        return math.nan
    return float(getattr(np, fn)(a))


def _nanstat(x: npt.ArrayLike, fn: str) -> float:
    """``_stat`` over the finite values (``nan`` when none is)."""
    a = np.asarray(x, np.float64)
    return _stat(a[np.isfinite(a)], fn)


def _nanq(x: npt.ArrayLike, q: float) -> float:
    a = np.asarray(x, np.float64)
    return _q(a[np.isfinite(a)], q)


def base_features(view: GalleryView, coins: CupCoins, candidate: int, scores: CoinScores) -> dict[str, float]:
    """The :data:`BASE_FEATURES` of a pair from its per-coin evidence."""
    n = coins.n
    informative = ~scores.shared
    # A coin proves the candidate when its best match overall is the candidate, on a design no other type shows.
    proof = informative & (scores.top_type == candidate)
    cat = view.diameter[candidate]
    known = np.isfinite(coins.diameter_mm) & np.isfinite(cat)
    diam_err = np.abs(coins.diameter_mm[known] - cat) / max(float(cat), 1e-6) if known.any() else np.zeros(0)
    top = scores.features[:, COIN_FEATURES.index("top_is_cand")] if n else np.zeros(0)
    loo = scores.loo_sim
    worst = int(np.argmin(loo)) if n else -1
    f = {
        "n_coins": float(n),
        "n_objects": float(coins.n_objects),
        "partial_share": _stat(coins.partial, "mean"),
        "visible_min": _stat(coins.visible, "min"),
        "sim_min": _stat(scores.sim, "min"),
        "sim_q10": _q(scores.sim, 0.1),
        "sim_q25": _q(scores.sim, 0.25),
        "sim_med": _stat(scores.sim, "median"),
        "sim_mean": _stat(scores.sim, "mean"),
        "sim_max": _stat(scores.sim, "max"),
        "margin_min": _stat(scores.margin, "min"),
        "margin_q10": _q(scores.margin, 0.1),
        "margin_med": _stat(scores.margin, "median"),
        "margin_mean": _stat(scores.margin, "mean"),
        "top_share": _stat(top, "mean"),
        "n_not_top": float(n - top.sum()) if n else math.nan,
        "dmargin_min": _stat(scores.dmargin, "min"),
        "dmargin_q10": _q(scores.dmargin, 0.1),
        "dmargin_mean": _stat(scores.dmargin, "mean"),
        "n_informative": float(informative.sum()),
        "informative_share": _stat(informative, "mean"),
        "informative_sim_min": _stat(scores.sim[informative], "min"),
        "informative_margin_min": _stat(scores.margin[informative], "min"),
        "n_proof": float(proof.sum()),
        "proof_share": _stat(proof, "mean"),
        "proof_margin_min": _stat(scores.margin[proof], "min"),
        "n_unproven": float(n - proof.sum()),
        "n_obverse": float((scores.side == 0).sum()),
        "n_reverse": float((scores.side == 1).sum()),
        "cand_obverse_shared": float(view.obverse_shared[candidate]),
        "diam_err_med": _stat(diam_err, "median"),
        "diam_err_max": _stat(diam_err, "max"),
        "conf_min": _stat(coins.confidence, "min"),
        "conf_mean": _stat(coins.confidence, "mean"),
        "focus_min": _stat(coins.focus, "min"),
        "focus_med": _stat(coins.focus, "median"),
        "outlier_min": _stat(loo, "min"),
        "outlier_gap": _stat(loo, "median") - _stat(loo, "min") if n else math.nan,
        "outlier_sim": float(scores.sim[worst]) if n else math.nan,
        "cand_confusion": float(view.confusion[candidate]),
        "cand_gap": float(view.self_similarity[candidate] - view.confusion[candidate]),
        "cand_lookalike": float(view.lookalike_rate[candidate]),
        "cand_declared_lookalike": float(view.declared_lookalike[candidate] >= 0),
    }
    return f


class TemplateScorer:
    """Template correlations of one cup's coins with the references of the types asked for, computed once each.

    Args:
        view: the gallery view (with :attr:`GalleryView.ref_spectra`).
        coins: the cup's coins (with ``signatures``).
    """

    def __init__(self, view: GalleryView, coins: CupCoins) -> None:
        if view.ref_spectra is None or coins.signatures is None:
            raise ValueError("template scores need signatures in both the gallery and the cup")
        self.view = view
        self._q = spectra(coins.signatures)
        self._emb = np.asarray(coins.embeddings, np.float32)
        self._ref_spectra = view.ref_spectra
        self._blocks: dict[int, tuple[FloatArray, FloatArray]] = {}

    @classmethod
    def for_cup(cls, view: GalleryView, coins: CupCoins) -> TemplateScorer | None:
        """A scorer for the cup, or ``None`` when the gallery or the cup carries no signatures."""
        return cls(view, coins) if view.has_templates and coins.signatures is not None else None

    def best(self, types: Sequence[int]) -> tuple[FloatArray, IntArray]:
        """``(n, len(types))`` best correlation of each coin with each type's references, and which reference.

        A type without references scores :data:`NEG` (reference index ``-1``). Uses the cached :meth:`blocks`.
        """
        n = self._q.shape[0]
        if not types:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        blocks = self.blocks(types)
        best = np.full((n, len(types)), NEG, np.float32)
        arg = np.full((n, len(types)), -1, np.int64)
        for col, t in enumerate(int(t) for t in types):
            cc = blocks[t][0]
            if cc.shape[1] and n:
                j = cc.argmax(axis=1)
                best[:, col] = cc[np.arange(n), j]
                arg[:, col] = self.view.starts[t] + j
        return best, arg

    def blocks(self, types: Sequence[int]) -> dict[int, tuple[FloatArray, FloatArray]]:
        """Per type, ``(n, r)`` template correlation and ``(n, r)`` embedding cosine of each coin with each of its
        ``r`` references (in :attr:`GalleryView.refs` order), computed once each."""
        todo = [t for t in dict.fromkeys(int(t) for t in types) if t not in self._blocks]
        if todo:
            view = self.view
            rows = [view.type_rows(t) for t in todo]
            flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
            cc = correlate(self._q, self._ref_spectra[flat]).astype(np.float32)
            cos = (self._emb @ view.refs[flat].T).astype(np.float32)
            a = 0
            for t, r in zip(todo, rows, strict=True):
                self._blocks[t] = (cc[:, a : a + r.size], cos[:, a : a + r.size])
                a += r.size
        return {int(t): self._blocks[int(t)] for t in types}


def _masked_max(block: FloatArray, keep: BoolArray) -> FloatArray:
    """``(n,)`` row maxima of ``block`` over the columns in ``keep`` (``-inf`` when none is kept)."""
    if not keep.any():
        return np.full(block.shape[0], -np.inf, np.float32)
    return np.asarray(block[:, keep].max(axis=1), np.float32)


def template_features(
    view: GalleryView, candidate: int, scores: CoinScores, type_best: FloatArray, scorer: TemplateScorer
) -> dict[str, float]:
    """The :data:`TEMPLATE_FEATURES` of a pair.

    Each coin is compared by template with the candidate's *distinguishing* references (designs no other enrolled
    type shows; all of them when it has none) and with its *rivals*: the types among its :data:`SHORTLIST` best
    embedding matches, each on its references of designs the candidate does not show. A design both show (a
    family's obverse) is evidence for neither, so it is left out on both sides: a reverse coin whose template
    happens to fit the family obverse best cannot prove the candidate by it, nor hide a family member behind it.
    ``c*`` features add the embedding cosine to the same references (cosine + template, as
    :meth:`models.gallery.Gallery.search` ranks). A coin with no rival in its shortlist has margin ``nan``.

    Args:
        view: the gallery view.
        candidate: the candidate's index.
        scores: the pair's per-coin embedding evidence (:func:`coin_scores`).
        type_best: ``(n, T)`` best embedding cosine per coin and type.
        scorer: the cup's :class:`TemplateScorer`.
    """
    n = type_best.shape[0]
    if n == 0:
        return {k: math.nan for k in TEMPLATE_FEATURES}
    k = min(SHORTLIST, view.n_types)
    short = np.argpartition(-type_best, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((n, 0), np.int64)
    rivals = sorted(set(short.ravel().tolist()) - {int(candidate)})
    blocks = scorer.blocks([int(candidate), *rivals])
    own = view.type_rows(candidate)
    own_cc, own_cos = blocks[int(candidate)]
    distinct = ~view.ref_shared[own]
    keep = distinct if distinct.any() else np.ones(own.size, bool)
    tsim = _masked_max(own_cc, keep)
    csim = _masked_max(own_cos, keep) + TEMPLATE_WEIGHT * tsim
    # which design the template matches best among all the candidate's references: a reverse coin whose best
    # template match is a shared design disagrees with the embedding
    informative = ~view.ref_shared[own[own_cc.argmax(axis=1)]] if own.size else np.zeros(n, bool)
    own_designs = np.unique(view.ref_design[own])
    t_rival = np.full(n, -np.inf, np.float32)
    c_rival = np.full(n, -np.inf, np.float32)
    for t in rivals:
        other = ~np.isin(view.ref_design[view.type_rows(t)], own_designs)
        cc, cos = blocks[t]
        listed = (short == t).any(axis=1)
        t_best = _masked_max(cc, other)
        c_best = _masked_max(cos, other) + TEMPLATE_WEIGHT * t_best
        t_rival = np.where(listed, np.maximum(t_rival, t_best), t_rival)
        c_rival = np.where(listed, np.maximum(c_rival, c_best), c_rival)
    has_rival = np.isfinite(t_rival)
    tmargin = np.where(has_rival, tsim - t_rival, np.nan).astype(np.float32)
    cmargin = np.where(np.isfinite(c_rival), csim - c_rival, np.nan).astype(np.float32)
    ttop = ~(tmargin < 0)  # nan (no rival) counts as the candidate's
    ctop = ~(cmargin < 0)
    tproof = informative & (tmargin > 0)
    eproof = ~scores.shared & (scores.top_type == candidate)
    return {
        "tsim_min": _stat(tsim, "min"),
        "tsim_q10": _q(tsim, 0.1),
        "tsim_med": _stat(tsim, "median"),
        "tsim_mean": _stat(tsim, "mean"),
        "tmargin_min": _nanstat(tmargin, "min"),
        "tmargin_q10": _nanq(tmargin, 0.1),
        "tmargin_med": _nanstat(tmargin, "median"),
        "tmargin_mean": _nanstat(tmargin, "mean"),
        "ttop_share": _stat(ttop, "mean"),
        "n_tnot_top": float(n - ttop.sum()),
        "n_tinformative": float(informative.sum()),
        "tinformative_margin_min": _nanstat(tmargin[informative], "min"),
        "n_tproof": float(tproof.sum()),
        "tproof_share": _stat(tproof, "mean"),
        "n_both_proof": float((tproof & eproof).sum()),
        "cmargin_min": _nanstat(cmargin, "min"),
        "cmargin_q10": _nanq(cmargin, 0.1),
        "cmargin_med": _nanstat(cmargin, "median"),
        "cmargin_mean": _nanstat(cmargin, "mean"),
        "ctop_share": _stat(ctop, "mean"),
        "n_cproof": float((informative & (cmargin > 0)).sum()),
    }


def pooled_type_features(view: GalleryView, pooled: FloatArray, candidate: int) -> tuple[float, float, float]:
    """Similarity of a pooled cup embedding to the candidate, its margin, and its margin over non-sharing types.

    Args:
        view: the gallery view.
        pooled: ``(d,)`` cup embedding (normalised here).
        candidate: the candidate's index.
    """
    z = pooled.astype(np.float32).reshape(1, -1)
    norm = float(np.linalg.norm(z))
    if view.n_types == 0 or not np.isfinite(norm) or norm < 1e-9:
        return math.nan, math.nan, math.nan
    best, arg = view.type_scores(z / norm)
    sim = float(best[0, candidate])
    other = best[0].copy()
    other[candidate] = NEG
    sharing = view.design_types[view.ref_design[arg[0, candidate]]]
    rival = np.where(sharing, NEG, other)
    return sim, sim - float(other.max()), sim - float(rival.max())


def feature_vector(values: Mapping[str, float], names: Sequence[str] = FEATURES) -> F64:
    """``(len(names),)`` float64 in ``names`` order (missing → ``nan``)."""
    return np.array([float(values.get(k, math.nan)) for k in names], np.float64)


@dataclass(frozen=True)
class PairEvidence:
    """Everything measured for one (cup, candidate) pair.

    Attributes:
        features: feature name → value (:data:`FEATURES`).
        scores: the per-coin evidence.
        attention: ``(n,)`` float32 set-pooler attention per coin (uniform without a pooler).
    """

    features: dict[str, float]
    scores: CoinScores
    attention: FloatArray


def pair_evidence(
    view: GalleryView,
    coins: CupCoins,
    candidate: int,
    pooler: SetPooler | None,
    *,
    gem_p: float = 3.0,
    type_best: FloatArray | None = None,
    type_arg: IntArray | None = None,
    templates: TemplateScorer | None = None,
) -> PairEvidence:
    """Measure one (cup, candidate) pair: per-coin evidence, base features and pooled features.

    Args:
        view: the gallery view.
        coins: the cup's coins.
        candidate: the candidate's index in ``view.types``.
        pooler: the trained set pooler (``None``: attention features are ``nan`` and attention uniform).
        gem_p: GeM exponent.
        type_best: optional precomputed ``view.type_scores(coins.embeddings)`` first element.
        type_arg: its second element.
        templates: the cup's :class:`TemplateScorer` to share between candidates; made here when ``None`` and
            both the gallery and the cup carry signatures (else the template features are ``nan``).
    """
    if type_best is None or type_arg is None:
        type_best, type_arg = view.type_scores(coins.embeddings)
    scores = coin_scores(view, coins, candidate, type_best, type_arg)
    feats = base_features(view, coins, candidate, scores)
    n = coins.n
    if templates is None:
        templates = TemplateScorer.for_cup(view, coins)
    if templates is not None and n:
        feats.update(template_features(view, candidate, scores, type_best, templates))
    else:
        feats.update({k: math.nan for k in TEMPLATE_FEATURES})
    if n == 0:
        feats.update({k: math.nan for k in POOLED_FEATURES})
        return PairEvidence(feats, scores, np.zeros(0, np.float32))
    m_sim, m_margin, m_dmargin = pooled_type_features(view, mean_pool(coins.embeddings), candidate)
    g_sim, g_margin, _ = pooled_type_features(view, gem_pool(coins.embeddings, gem_p), candidate)
    feats.update(mean_sim=m_sim, mean_margin=m_margin, mean_dmargin=m_dmargin, gem_sim=g_sim, gem_margin=g_margin)
    if pooler is not None:
        out = pooler(scores.features)
        attention = out.attention
        a_sim, a_margin, _ = pooled_type_features(view, attention_pool(coins.embeddings, attention), candidate)
        ent = float(-(attention * np.log(attention.clip(min=1e-12))).sum() / math.log(n)) if n > 1 else 1.0
        feats.update(
            att_sim=a_sim, att_margin=a_margin, mil_score=out.score, att_max=float(attention.max()), att_entropy=ent
        )
    else:
        attention = np.full(n, 1.0 / n, np.float32)
        feats.update({k: math.nan for k in ("att_sim", "att_margin", "mil_score", "att_max", "att_entropy")})
    return PairEvidence(feats, scores, attention)
