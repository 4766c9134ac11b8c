"""The voter: a LightGBM model that scores a (cup, candidate type) pair with the probability that the cup is pure.

Its inputs are the class-agnostic features of :mod:`models.features` (similarities, margins, sides, shared
designs, diameters, pooled cup embeddings, the set pooler's opinion), so it never needs retraining when a type is
enrolled. Its output ``p_correct`` is the booster's probability; the acceptance threshold with a precision
guarantee is chosen on separate calibration cups by :mod:`calibration.risk`.

Before the booster, four hard rules (:func:`passable`) give ``p_correct = 0`` to pairs no evidence can prove: a
cup with no coin (or fewer than the voter's ``min_coins``, which its bundle records), a cup with a foreign
object, a cup with a coin whose match to the candidate is a design
other enrolled types show too (a shared obverse: that coin may be any member of the family, so the cup is flagged
with "turn it over" whatever the other coins say), and a candidate the catalogue declares a lookalike of (a
near-twin differing only in a date digit or a mint mark: a person checks it), enrolled or not: a twin not enrolled
yet has no photos in the gallery to lose to, so its coins would match the candidate best. The threshold is then
certified on what the rules let through.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

REQUIRED_RULE_FEATURES: tuple[str, ...] = ("n_coins", "n_objects", "n_informative")
"""The rule features every cupcheck voter carries: coins found, foreign objects, coins on a design only the
candidate shows."""

LOOKALIKE_RULE_FEATURE = "cand_declared_lookalike"
"""Whether the catalogue declares a lookalike of the candidate, enrolled or not (applied where the features carry
it)."""

RULE_FEATURES: tuple[str, ...] = (*REQUIRED_RULE_FEATURES, LOOKALIKE_RULE_FEATURE)
"""Every feature :func:`passable` reads."""

WEAKEST_COIN_RISES: frozenset[str] = frozenset(
    {
        "sim_min",
        "sim_q10",
        "margin_min",
        "margin_q10",
        "dmargin_min",
        "dmargin_q10",
        "informative_sim_min",
        "informative_margin_min",
        "proof_margin_min",
        "top_share",
        "proof_share",
        "outlier_min",
        "outlier_sim",
        "mil_score",
        "tsim_min",
        "tsim_q10",
        "tmargin_min",
        "tmargin_q10",
        "ttop_share",
        "tinformative_margin_min",
        "tproof_share",
        "cmargin_min",
        "cmargin_q10",
        "ctop_share",
    }
)
"""Features that grow as the cup's least convincing coin looks more like the candidate (its similarity and
margins, the share of coins whose best match is the candidate, the set pooler's score): a cup must never look
more surely pure because one of its coins looks less like the candidate (:func:`monotone_constraints`)."""

WEAKEST_COIN_FALLS: frozenset[str] = frozenset({"n_not_top", "n_tnot_top", "n_unproven", "outlier_gap", "diam_err_max"})
"""Features that grow as some coin looks less like the candidate: coins whose best match is another type or that
prove nothing, the gap between the typical coin and the least similar one, the worst diameter error."""


def monotone_constraints(names: Sequence[str]) -> list[int]:
    """LightGBM ``monotone_constraints`` for feature columns ``names``: ``1`` for :data:`WEAKEST_COIN_RISES`,
    ``-1`` for :data:`WEAKEST_COIN_FALLS`, ``0`` (free) for the rest."""
    return [1 if n in WEAKEST_COIN_RISES else -1 if n in WEAKEST_COIN_FALLS else 0 for n in names]


def has_rules(feature_names: Sequence[str]) -> bool:
    """Whether a feature list carries the columns of the hard rules (every cupcheck voter's does)."""
    return set(REQUIRED_RULE_FEATURES) <= set(feature_names)


def check_min_coins(min_coins: int) -> None:
    """Raise ``ValueError`` unless ``min_coins`` (the hard rules' fewest coins of a passing cup) is at least 1."""
    if min_coins < 1:
        raise ValueError(f"min_coins must be >= 1, got {min_coins}")


def passable(features: npt.ArrayLike, feature_names: Sequence[str], min_coins: int = 1) -> npt.NDArray[np.bool_]:
    """``(n,)`` bool: the pairs the hard rules allow to pass.

    A pair may pass only when the cup holds at least ``min_coins`` coins (and at least one), no foreign object,
    every coin matches the candidate on a design no other enrolled type shows (``n_informative == n_coins``), and
    the catalogue declares no lookalike of the candidate, enrolled or not (``cand_declared_lookalike``; a pair
    without that column is not refused by it).

    Args:
        features: ``(n, F)`` pair features.
        feature_names: the ``F`` column names; must include :data:`REQUIRED_RULE_FEATURES`.
        min_coins: fewest coins a passing cup shows.

    Raises:
        ValueError: a rule feature is missing, or ``min_coins < 1``.
    """
    check_min_coins(min_coins)
    x = np.asarray(features, np.float64)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    names = list(feature_names)
    missing = [f for f in REQUIRED_RULE_FEATURES if f not in names]
    if missing:
        raise ValueError(f"the hard rules need the features {missing}")
    n, objects, informative = (x[:, names.index(f)] for f in REQUIRED_RULE_FEATURES)
    ok = (n >= min_coins) & (objects == 0) & (informative == n)
    if LOOKALIKE_RULE_FEATURE in names:
        ok &= ~(x[:, names.index(LOOKALIKE_RULE_FEATURE)] > 0)
    return np.asarray(ok, bool)


DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "verbose": -1,
    "deterministic": True,
    "seed": 0,
}


@dataclass(frozen=True)
class Voter:
    """A trained LightGBM booster with the feature names it expects.

    Attributes:
        booster: the LightGBM booster.
        feature_names: the input columns, in order.
        info: training summary (rows, positives, rounds, validation metrics).
        min_coins: the hard rules' fewest coins of a cup that may pass (:func:`passable`). It is not in the
            booster's file: the bundle records it (:meth:`models.bundle.Bundle.load_voter`), because a threshold is
            certified for one set of rules.
    """

    booster: lgb.Booster
    feature_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)
    min_coins: int = 1

    def predict(self, features: npt.ArrayLike) -> F64:
        """``(n,)`` probabilities that each pair is correct, from ``(n, F)`` features in :attr:`feature_names` order.

        Pairs refused by the hard rules (:func:`passable`) score ``0``.
        """
        x = np.asarray(features, np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} features, got {x.shape[1]}")
        if x.shape[0] == 0:
            return np.zeros(0, np.float64)
        p = np.asarray(self.booster.predict(x, num_threads=1), np.float64)
        if not has_rules(self.feature_names):
            return p
        return np.where(passable(x, self.feature_names, self.min_coins), p, 0.0)

    def model_text(self) -> str:
        """The booster as LightGBM's text format."""
        return str(self.booster.model_to_string())

    @property
    def sha256(self) -> str:
        """SHA-256 of :meth:`model_text`."""
        return hashlib.sha256(self.model_text().encode()).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the booster as LightGBM text (``voter.txt``); feature names are part of the file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_text())
        return path

    @classmethod
    def load(cls, path: str | Path, info: dict[str, Any] | None = None, min_coins: int = 1) -> Voter:
        """Read a booster written by :meth:`save`, to be used under the hard rules with ``min_coins``.

        Raises:
            FileNotFoundError: no file.
            ValueError: not a LightGBM model.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"voter model {path} not found")
        try:
            booster = lgb.Booster(model_str=path.read_text())
        except lgb.basic.LightGBMError as err:
            raise ValueError(f"{path} is not a LightGBM model: {err}") from err
        check_min_coins(min_coins)
        return cls(booster, tuple(booster.feature_name()), dict(info or {}), min_coins)

    @property
    def monotone(self) -> bool:
        """Whether the booster was trained under monotone constraints (:func:`monotone_constraints`):
        a continued boosting keeps them."""
        return any(int(c) != 0 for c in self.booster.params.get("monotone_constraints") or ())

    def importance(self) -> dict[str, float]:
        """Gain importance per feature, largest first."""
        gains = self.booster.feature_importance(importance_type="gain")
        pairs = sorted(zip(self.feature_names, gains, strict=True), key=lambda kv: -kv[1])
        return {k: float(v) for k, v in pairs}


def train_voter(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    valid: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    rounds: int = 300,
    params: dict[str, Any] | None = None,
    init_model: Voter | None = None,
    negative_weight: float = 1.0,
    min_coins: int = 1,
    monotone: bool = False,
    weights: npt.ArrayLike | None = None,
) -> Voter:
    """Train the voter on labelled pairs.

    When the features carry the hard rules' columns, only the pairs the rules let through are learnt from (the
    others score ``0`` whatever the booster says).

    Args:
        features: ``(n, F)`` pair features (``nan`` allowed: LightGBM routes missing values).
        labels: ``(n,)`` bool, the pair is correct (pure cup of the candidate type).
        feature_names: the ``F`` column names.
        valid: optional ``(features, labels)`` for early stopping (30 rounds of patience).
        rounds: most boosting rounds.
        params: LightGBM parameters overriding :data:`DEFAULT_PARAMS`.
        init_model: continue boosting from this voter (its trees are kept, ``rounds`` more are fitted to the
            new rows' residuals), so a refit on a few hundred station labels starts from what it knew.
        negative_weight: weight of each wrong pair against ``1`` for a correct one. A wrong PASS costs far more
            than a FLAG, and only the best-scored pairs are ever accepted: a weight above 1 pushes the wrong pairs
            that look right down the ranking, where the threshold is chosen.
        min_coins: the hard rules' fewest coins of a cup that may pass; smaller cups are not learnt from and score
            ``0`` (:func:`passable`).
        monotone: constrain the booster so that ``p_correct`` never rises as the cup's least convincing coin looks
            less like the candidate (:func:`monotone_constraints`); continued boosting from a
            monotone ``init_model`` always is.
        weights: ``(n,)`` weight of each pair (``None``: all ``1``), multiplied by ``negative_weight`` for the
            wrong ones: how much a group of pairs counts beside the others (e.g. real cups beside synthetic ones).

    Returns:
        The trained voter.
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, bool).astype(np.float64)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"need matching non-empty features and labels, got {x.shape} and {y.shape}")
    w = np.ones(y.shape[0]) if weights is None else np.asarray(weights, np.float64)
    if w.shape != y.shape or not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError(f"need one finite weight > 0 per pair, got shape {w.shape}")
    names = [str(n) for n in feature_names]
    if has_rules(names):
        keep = passable(x, names, min_coins)
        x, y, w = x[keep], y[keep], w[keep]
        if valid is not None:
            keep_v = passable(valid[0], names, min_coins)
            valid = (np.asarray(valid[0], np.float64)[keep_v], np.asarray(valid[1], bool)[keep_v])
            if len(set(valid[1].tolist())) < 2:
                valid = None
    if y.size == 0 or y.min() == y.max():
        raise ValueError("the voter needs both correct and wrong pairs to train")
    check_min_coins(min_coins)
    if not (math.isfinite(negative_weight) and negative_weight > 0):
        raise ValueError(f"the negative weight must be > 0, got {negative_weight}")
    p = {**DEFAULT_PARAMS, **(params or {})}
    monotone = monotone or (init_model is not None and init_model.monotone)
    if monotone:
        p["monotone_constraints"] = monotone_constraints(names)
    weight = w * np.where(y > 0, 1.0, negative_weight)
    train = lgb.Dataset(
        x, label=y, weight=None if (weight == 1.0).all() else weight, feature_name=names, free_raw_data=True
    )
    callbacks: list[Any] = []
    valid_sets = []
    if valid is not None:
        xv = np.asarray(valid[0], np.float64)
        yv = np.asarray(valid[1], bool).astype(np.float64)
        valid_sets = [lgb.Dataset(xv, label=yv, reference=train)]
        p["metric"] = "binary_logloss"
        callbacks.append(lgb.early_stopping(30, verbose=False))
    booster = lgb.train(
        p,
        train,
        num_boost_round=rounds,
        valid_sets=valid_sets,
        callbacks=callbacks,
        init_model=None if init_model is None else init_model.booster,
    )
    if valid is not None and booster.best_iteration > 0:
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    info: dict[str, Any] = {"rows": int(x.shape[0]), "positives": int(y.sum()), "rounds": int(booster.num_trees())}
    if negative_weight != 1.0:
        info["negative_weight"] = negative_weight
    if monotone:
        info["monotone"] = True
    return Voter(booster, tuple(names), info, min_coins)
